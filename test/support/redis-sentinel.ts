/**
 * A Redis Sentinel setup of the test's own on free loopback ports: a primary, a replica and three
 * sentinels (quorum 2, a node is down after 1 s without an answer). Nothing on disk but the
 * sentinels' config files, in a temporary folder removed at stop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from '../../src/kernel/free-port.ts';
import { atExit } from './at-exit.ts';
import { waitFor } from './wait.ts';

export const MASTER_NAME = 'mymaster';

export interface SentinelSetup {
  /** redis+sentinel://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3/mymaster */
  url: string;
  primaryPort: number;
  primary: ChildProcess;
  /** Started with DEBUG allowed from loopback (DEBUG SLEEP makes it lag on purpose). */
  replicaPort: number;
  /** The port the sentinels name as primary now. */
  currentPrimaryPort(): Promise<number>;
  /**
   * Starts a node that died again on its port, as a replica of the current primary (the way to
   * bring a failed node back: started empty as a primary, a later failover could promote nothing).
   */
  restartAsReplica(port: number): Promise<Redis>;
  /** The redis-server running (or last started) on this port. */
  processOn(port: number): ChildProcess;
  stop(): Promise<void>;
}

/** Every node and sentinel started here and still running. */
const running = new Set<ChildProcess>();
// A test that fails before its stop() (or a process that exits without one) must not leave
// sentinels behind: they would go on reconfiguring whatever later takes their nodes' ports.
atExit(() => {
  for (const child of running) child.kill('SIGKILL');
});

function redisServer(args: string[]): ChildProcess {
  const child = spawn('redis-server', args, { stdio: 'ignore' });
  child.on('error', () => undefined);
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

export async function startSentinelSetup(): Promise<SentinelSetup> {
  const dir = await mkdtemp(join(tmpdir(), 'statewise-sentinel-'));
  const children: ChildProcess[] = [];
  const [primaryPort, replicaPort, ...sentinelPorts] = await Promise.all([1, 2, 3, 4, 5].map(() => freePort()));
  // --dir: a replica writes the RDB of its first sync to its working folder; keep it out of the tree.
  const common = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
  /** A replica of `of`, with DEBUG allowed from loopback (DEBUG SLEEP makes it lag on purpose). */
  const replica = (port: number, of: number) =>
    redisServer([
      '--port',
      String(port),
      ...common,
      '--enable-debug-command',
      'local',
      '--replicaof',
      '127.0.0.1',
      String(of),
    ]);
  const primary = redisServer(['--port', String(primaryPort), ...common]);
  const byPort = new Map<number, ChildProcess>([
    [primaryPort, primary],
    [replicaPort, replica(replicaPort, primaryPort)],
  ]);
  children.push(...byPort.values());
  for (const port of sentinelPorts) {
    const file = join(dir, `sentinel-${port}.conf`);
    await writeFile(
      file,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${primaryPort} 2`,
        `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
        `sentinel failover-timeout ${MASTER_NAME} 5000`,
        `sentinel parallel-syncs ${MASTER_NAME} 1`,
      ].join('\n') + '\n',
    );
    children.push(redisServer([file, '--sentinel']));
  }
  const ask = async (port: number, ...args: string[]) => {
    const client = new Redis({
      port,
      host: '127.0.0.1',
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return await client.call(...(args as [string, ...string[]]));
    } finally {
      client.disconnect();
    }
  };
  // Ready when the replica is in sync and every sentinel knows the replica and the other sentinels.
  await waitFor(
    async () => {
      const info = String(await ask(replicaPort, 'INFO', 'replication'));
      if (!/master_link_status:up/.test(info)) return false;
      for (const port of sentinelPorts) {
        const replicas = (await ask(port, 'SENTINEL', 'REPLICAS', MASTER_NAME)) as unknown[];
        const sentinels = (await ask(port, 'SENTINEL', 'SENTINELS', MASTER_NAME)) as unknown[];
        if (replicas.length < 1 || sentinels.length < 2) return false;
      }
      return true;
    },
    { timeoutMs: 30_000, intervalMs: 200, what: 'the sentinels to know the replica and each other' },
  );
  const currentPrimaryPort = async () => {
    const [, port] = (await ask(sentinelPorts[0]!, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME)) as [
      string,
      string,
    ];
    return Number(port);
  };
  return {
    url: `redis+sentinel://${sentinelPorts.map((p) => `127.0.0.1:${p}`).join(',')}/${MASTER_NAME}`,
    primaryPort,
    primary,
    replicaPort,
    currentPrimaryPort,
    async restartAsReplica(port) {
      const node = replica(port, await currentPrimaryPort());
      children.push(node);
      byPort.set(port, node);
      const client = new Redis({ port, host: '127.0.0.1', retryStrategy: () => 50 });
      client.on('error', () => undefined);
      return client;
    },
    processOn: (port) => byPort.get(port)!,
    async stop() {
      await Promise.all(
        children.map(async (child) => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          const exited = once(child, 'exit');
          child.kill('SIGKILL');
          await exited;
        }),
      );
      await rm(dir, { recursive: true, force: true });
    },
  };
}
