import type { ChildProcess } from 'node:child_process';
import { sessionsInMemoryOf } from '../balancer/health-checks.ts';
import { EXIT_PORT_TAKEN } from '../kernel/exit-codes.ts';
import { ChildExitedError, forkTs, waitForExit, waitForMessage } from './child-process.ts';

/** How long a server may take to say how many sessions it holds before its last sample is used. */
const COUNT_TIMEOUT_MS = 500;

export type ServerStatus = 'starting' | 'up' | 'draining' | 'down';

export interface ServerView {
  id: string;
  pid: number | null;
  status: ServerStatus;
  startedAt: string | null;
  port: number | null;
}

/** One app server process under the supervisor: start, kill (SIGKILL), stop (graceful drain). */
export class ManagedServer {
  #child: ChildProcess | undefined;
  #status: ServerStatus = 'down';
  #port: number | null = null;
  #startedAt: Date | null = null;
  #starting: Promise<void> | undefined;
  /**
   * The port it got the first time, asked for again at every restart: a server keeps its address,
   * so a balancer's config (HAProxy, nginx) need not change when it is killed and started again.
   */
  #homePort: number | undefined;

  constructor(
    readonly id: string,
    /** The app server's entry: the bundle, or src/server/main.ts. */
    private readonly entryPath: string,
    private readonly env: () => NodeJS.ProcessEnv,
    private readonly events: {
      onChange: (server: ManagedServer) => void;
      onOutput: (server: ManagedServer, line: string) => void;
    },
  ) {}

  get status(): ServerStatus {
    return this.#status;
  }

  get url(): string | null {
    return this.#port === null ? null : `http://127.0.0.1:${this.#port}`;
  }

  /** host:port where it listens, or listened last and will listen again when started; null before its first start. */
  get homeAddress(): string | null {
    return this.#homePort === undefined ? null : `127.0.0.1:${this.#homePort}`;
  }

  view(): ServerView {
    return {
      id: this.id,
      pid: this.#child?.pid ?? null,
      status: this.#status,
      startedAt: this.#startedAt?.toISOString() ?? null,
      port: this.#port,
    };
  }

  /** Starts the process and resolves once it listens (the balancer's health check then admits it). */
  start(): Promise<void> {
    if (this.#status !== 'down') return this.#starting ?? Promise.resolve();
    this.#setStatus('starting');
    this.#starting = this.#launch(this.#homePort ?? 0).catch((error: unknown) => {
      // Its old port was taken meanwhile: any free one then (the balancer's config follows). Not
      // after any other end: a server killed or stopped while starting stays down.
      const portTaken = error instanceof ChildExitedError && error.exitCode === EXIT_PORT_TAKEN;
      if (!portTaken || this.#homePort === undefined) throw error;
      this.#homePort = undefined;
      this.#setStatus('starting');
      return this.#launch(0);
    });
    return this.#starting;
  }

  #launch(port: number): Promise<void> {
    const child = forkTs(this.entryPath, { ...this.env(), SW_SERVER_ID: this.id, SW_PORT: String(port) }, (line) =>
      this.events.onOutput(this, line),
    );
    this.#child = child;
    child.on('exit', () => {
      if (this.#child !== child) return;
      this.#child = undefined;
      this.#port = null;
      this.#setStatus('down');
    });
    return waitForMessage<{ type: 'listening'; port: number }>(child, 'listening', 30_000).then(
      ({ port }) => {
        this.#port = port;
        this.#homePort = port;
        this.#startedAt = new Date();
        this.#setStatus('up');
      },
      (error: unknown) => {
        child.kill('SIGKILL');
        throw error;
      },
    );
  }

  /** SIGKILL: no goodbye, no drain; whatever lived only in its memory is gone. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    child.kill('SIGKILL');
    await waitForExit(child);
  }

  /** Graceful: readiness false, drain in-flight work, then exit. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    // Still starting, it listens for no drain message yet: SIGTERM ends it (there is nothing to drain).
    const starting = this.#status === 'starting';
    this.#setStatus('draining');
    if (child.connected && !starting) child.send({ type: 'drain' });
    else child.kill('SIGTERM');
    await waitForExit(child);
  }

  /**
   * The sessions only this server holds, as it says now (GET /readyz); null when it does not say
   * (a shared store, not ready, or no answer within COUNT_TIMEOUT_MS).
   */
  async sessionsInMemoryNow(): Promise<number | null> {
    if (this.#status !== 'up' || !this.url) return null;
    try {
      const response = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(COUNT_TIMEOUT_MS) });
      return sessionsInMemoryOf(await response.text());
    } catch {
      return null;
    }
  }

  #setStatus(status: ServerStatus): void {
    this.#status = status;
    this.events.onChange(this);
  }
}
