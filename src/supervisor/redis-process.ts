import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { freePort } from '../kernel/free-port.ts';

export interface RedisProcess {
  url: string;
  port: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts a local redis-server on a free loopback port. With `dir`, it keeps an append-only file
 * there (so `npm start --store redis` keeps sessions across restarts); without, nothing on disk.
 * `port` starts it on a given port (a restart where clients expect it).
 */
export async function startRedisProcess(dir?: string, options: { port?: number } = {}): Promise<RedisProcess> {
  const port = options.port ?? (await freePort());
  const persistence = dir ? ['--dir', dir, '--appendonly', 'yes'] : ['--appendonly', 'no'];
  if (dir) await mkdir(dir, { recursive: true });
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence], {
    stdio: 'ignore',
    detached: true,
  });
  const exited = once(child, 'exit');
  const failed = new Promise<never>((_, reject) =>
    child.once('error', (e) =>
      reject(
        new Error(
          `cannot run redis-server (${e.message}); install it (apt-get install redis-server) or pass --redis-url`,
        ),
      ),
    ),
  );
  const deadline = Date.now() + 10_000;
  while (!(await canConnect(port))) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`redis-server did not start on port ${port}`);
    await Promise.race([delay(20), failed]);
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    process: child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.connect(port, '127.0.0.1');
  });
}
