/**
 * A Redis Cluster of the test's own: three primaries on free loopback ports, slots spread by
 * `redis-cli --cluster create`, files in a temporary folder.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from '../../src/kernel/free-port.ts';
import { waitFor } from './wait.ts';

export interface ClusterSetup {
  /** redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3 */
  url: string;
  stop(): Promise<void>;
}

export async function startRedisCluster(): Promise<ClusterSetup> {
  const dir = await mkdtemp(join(tmpdir(), 'statewise-cluster-'));
  const ports = await Promise.all([1, 2, 3].map(() => freePort()));
  const nodes: ChildProcess[] = ports.map((port) =>
    spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(dir, `nodes-${port}.conf`),
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'no',
      ],
      { stdio: 'ignore' },
    ),
  );
  const stop = async () => {
    for (const node of nodes) if (node.exitCode === null) node.kill('SIGKILL');
    await Promise.all(nodes.map((node) => (node.exitCode === null ? once(node, 'exit') : undefined)));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      await waitFor(
        async () => {
          const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null });
          probe.on('error', () => {});
          const ok = await probe.connect().then(
            () => true,
            () => false,
          );
          probe.disconnect();
          return ok;
        },
        { what: `cluster node ${port} up` },
      );
    }
    const created = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'],
      { encoding: 'utf8', timeout: 30_000 },
    );
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
    await waitFor(
      async () => {
        const node = new Redis({ port: ports[0], host: '127.0.0.1' });
        const info = String(await node.cluster('INFO'));
        node.disconnect();
        return info.includes('cluster_state:ok');
      },
      { what: 'cluster_state:ok', timeoutMs: 20_000 },
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { url: `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`, stop };
}
