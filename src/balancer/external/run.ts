import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../kernel/free-port.ts';
import type { BalancePolicy } from '../policies.ts';
import type { ExternalBalancerConfig } from './config-types.ts';
import { haproxyConfig } from './haproxy-config.ts';
import { nginxConfig } from './nginx-config.ts';

export interface RunningBalancer {
  url: string;
  /**
   * Rewrites the config for this server list (and this policy, when given: a mode switch) and
   * reloads (HAProxy SIGUSR2 in master-worker mode, nginx SIGHUP).
   */
  update(servers: ReadonlyArray<{ id: string; address: string }>, policy?: BalancePolicy): Promise<void>;
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
  options: {
    policy?: BalancePolicy;
    healthIntervalMs?: number;
    /** @default 127.0.0.1 and a free port */
    host?: string;
    port?: number;
    control?: ExternalBalancerConfig['control'];
    onOutput?: (line: string) => void;
  } = {},
): Promise<RunningBalancer> {
  const dir = await mkdtemp(join(tmpdir(), `statewise-${kind}-`));
  const host = options.host ?? '127.0.0.1';
  const port = options.port || (await freePort());
  let base: ExternalBalancerConfig = {
    listen: `${host.includes(':') ? `[${host}]` : host}:${port}`,
    control: options.control,
    policy: options.policy ?? 'round-robin',
    servers,
    healthIntervalMs: options.healthIntervalMs ?? 500,
    // One thread / one worker: on one machine beside the app servers, and the bench's fair match.
    processes: 1,
  };
  const file = join(dir, `${kind}.conf`);
  const write = (servers: ExternalBalancerConfig['servers']) =>
    writeFile(
      file,
      kind === 'haproxy' ? haproxyConfig({ ...base, servers }) : nginxConfig({ ...base, servers, prefix: dir }),
    );
  await mkdir(join(dir, 'logs'));
  await write(servers);
  // HAProxy in master-worker mode (-W): SIGUSR2 makes the master start new workers on the new
  // config while the old ones finish their requests; nginx's master does the same on SIGHUP.
  const child: ChildProcess =
    kind === 'haproxy'
      ? spawn(binary, ['-W', '-db', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn(binary, ['-p', dir, '-c', file, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  /** HAProxy's master says "Loading success" (or failure) once per (re)load. */
  let loads = 0;
  child.stderr?.on('data', (chunk: Buffer) => {
    const text = chunk.toString();
    if (output.length < 65_536) output += text;
    loads += text.match(/Loading (success|failure)/g)?.length ?? 0;
    options.onOutput?.(text);
  });
  try {
    await listening(port, child, () => output);
  } catch (error) {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  // A wildcard address is not somewhere to send requests: name the loopback instead.
  const reachable = host === '0.0.0.0' || host === '::' ? `127.0.0.1:${port}` : base.listen;

  // Reloads run one at a time and the latest list wins: HAProxy's master re-executes itself on
  // SIGUSR2, and a signal that lands meanwhile is lost, so each reload waits for its "Loading".
  let wanted: ExternalBalancerConfig['servers'] | undefined;
  let reloading: Promise<void> | undefined;
  const reloadAll = async () => {
    try {
      while (wanted) {
        const next = wanted;
        wanted = undefined;
        await write(next);
        const before = loads;
        child.kill(kind === 'haproxy' ? 'SIGUSR2' : 'SIGHUP');
        const deadline = Date.now() + 5_000;
        while (kind === 'haproxy' && loads === before && Date.now() < deadline && child.exitCode === null) {
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      }
    } finally {
      reloading = undefined;
    }
  };
  return {
    url: `http://${reachable}`,
    update(next, policy) {
      if (policy) base = { ...base, policy };
      wanted = next;
      reloading ??= reloadAll();
      return reloading;
    },
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
