import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { haproxyConfig } from '../../src/balancer/external/haproxy-config.ts';
import { nginxConfig } from '../../src/balancer/external/nginx-config.ts';
import { freePort } from '../../src/supervisor/free-port.ts';

export interface Running {
  url: string;
  stop(): Promise<void>;
}

export type ExternalKind = 'haproxy' | 'nginx';

const BINARIES: Record<ExternalKind, string> = { haproxy: 'haproxy', nginx: 'nginx' };

/** The binary's path, or undefined when it is not installed. */
export function findBinary(kind: ExternalKind): string | undefined {
  for (const dir of ['/usr/sbin', '/usr/local/sbin', '/usr/bin']) {
    const path = join(dir, BINARIES[kind]);
    if (spawnSync(path, ['-v']).status === 0) return path;
  }
  return undefined;
}

/** Starts HAProxy or nginx (round robin) in front of `servers`, with its files in a temp folder. */
export async function startExternalBalancer(
  kind: ExternalKind,
  binary: string,
  servers: ReadonlyArray<{ id: string; address: string }>,
): Promise<Running> {
  const dir = await mkdtemp(join(tmpdir(), `statewise-${kind}-`));
  const port = await freePort();
  const base = { listen: `127.0.0.1:${port}`, policy: 'round-robin' as const, servers, healthIntervalMs: 500 };
  const file = join(dir, `${kind}.conf`);
  let child: ChildProcess;
  if (kind === 'haproxy') {
    await writeFile(file, haproxyConfig(base));
    child = spawn(binary, ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  } else {
    await mkdir(join(dir, 'logs'));
    await writeFile(file, nginxConfig({ ...base, prefix: dir }));
    child = spawn(binary, ['-p', dir, '-c', file, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  }
  child.stderr?.on('data', (chunk: Buffer) => process.stderr.write(`    [${kind}] ${chunk}`));
  return {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
