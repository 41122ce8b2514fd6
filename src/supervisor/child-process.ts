import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

/** Path of a TypeScript entry of this project, for forking it with tsx. */
export const entry = (relativeToSrc: string): string => fileURLToPath(new URL(`../${relativeToSrc}`, import.meta.url));

/**
 * Forks an entry (TypeScript through tsx, or a built .mjs) with an IPC channel in its own process
 * group: a Ctrl-C in the terminal reaches only the supervisor, which then stops the children in order.
 */
export function forkTs(path: string, env: NodeJS.ProcessEnv, onOutput?: (line: string) => void): ChildProcess {
  const child = fork(path, [], {
    execArgv: path.endsWith('.ts') ? ['--import', 'tsx'] : ['--enable-source-maps'],
    env: { ...process.env, ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const forward = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      if (stream === 'stderr') lastError.set(child, line);
      onOutput?.(line);
    }
  };
  child.stdout?.on('data', forward('stdout'));
  child.stderr?.on('data', forward('stderr'));
  return child;
}

/** The last line each child wrote to stderr: why it exited, when it says so. */
const lastError = new WeakMap<ChildProcess, string>();

/** A child ended before it said what was awaited; `exitCode` tells why when it chose to exit. */
export class ChildExitedError extends Error {
  constructor(
    message: string,
    readonly exitCode: number | null,
    readonly signal: string | null,
  ) {
    super(message);
    this.name = 'ChildExitedError';
  }
}

/** Resolves with the first IPC message of the given type, or rejects if the child exits first. */
export function waitForMessage<T extends { type: string }>(
  child: ChildProcess,
  type: string,
  timeoutMs: number,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`no "${type}" from child within ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (message: unknown) => {
      if ((message as { type?: string } | null)?.type === type) done(undefined, message as T);
    };
    const onExit = (code: number | null, signal: string | null) => {
      const why = lastError.get(child);
      done(new ChildExitedError(why ?? `child exited (code ${code}, signal ${signal}) before "${type}"`, code, signal));
    };
    const done = (error?: Error, value?: T) => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolve(value as T);
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

export async function waitForExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await once(child, 'exit');
}
