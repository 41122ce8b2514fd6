import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../supervisor/free-port.ts';
import type { BalancePolicy } from '../policies.ts';
import { haproxyConfig } from './haproxy-config.ts';
import { nginxConfig } from './nginx-config.ts';

export interface RunningBalancer {
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

/**
 * Runs the real HAProxy or nginx in front of `servers` as a child of this process, with a config
 * generated here and its files in a temporary folder; `stop()` ends it and removes them.
 */
export async function startExternalBalancer(
  kind: ExternalKind,
  binary: string,
  servers: ReadonlyArray<{ id: string; address: string }>,
  options: { policy?: BalancePolicy; healthIntervalMs?: number; onOutput?: (line: string) => void } = {},
): Promise<RunningBalancer> {
  const dir = await mkdtemp(join(tmpdir(), `statewise-${kind}-`));
  const port = await freePort();
  const base = {
    listen: `127.0.0.1:${port}`,
    policy: options.policy ?? 'round-robin',
    servers,
    healthIntervalMs: options.healthIntervalMs ?? 500,
    // One thread / one worker: on one machine beside the app servers, and the bench's fair match.
    processes: 1,
  };
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
  let output = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    options.onOutput?.(chunk.toString());
  });
  try {
    await listening(port, child, () => output);
  } catch (error) {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
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

/** Resolves once something accepts connections on the port; rejects if the child exits first. */
async function listening(port: number, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the balancer exited (${child.exitCode}): ${output()}`);
    const accepted = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (accepted) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`the balancer did not listen on ${port} within 10 s: ${output()}`);
}
