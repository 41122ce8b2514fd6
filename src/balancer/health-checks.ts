import { Agent } from 'undici';
import { errorCode, refusedConnection, timedOut } from './retry-rules.ts';
import type { UpstreamSet, UpstreamState } from './upstreams.ts';

/** A check that takes longer than this counts as failed: a ready server answers in milliseconds. */
const CHECK_TIMEOUT_MS = 1000;

/** `sessionsInMemory` of a /readyz answer; null when absent (a server that does not say). */
export function sessionsInMemoryOf(text: string): number | null {
  try {
    const value = (JSON.parse(text) as { sessionsInMemory?: unknown }).sessionsInMemory;
    return typeof value === 'number' ? value : null;
  } catch {
    return null;
  }
}

/**
 * Active health checks: GET <url>/readyz on every server every `intervalMs`. One success admits a
 * server; two failures in a row (or one refused connection) take it out. A draining server answers
 * 503, so it leaves the rotation before its listener closes.
 */
export class HealthChecks {
  // Its own small pool: checks never queue behind proxied traffic, which would make a busy server
  // look dead. One connection per server is enough, since checks of one server never overlap.
  readonly #agent = new Agent({ connections: 1, connect: { timeout: CHECK_TIMEOUT_MS } });
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(
    private readonly upstreams: UpstreamSet,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.#timer = setInterval(() => this.checkAll(), this.intervalMs);
    this.#timer.unref();
    this.checkAll();
  }

  checkAll(): void {
    for (const upstream of this.upstreams.all()) void this.check(upstream);
  }

  async check(upstream: UpstreamState): Promise<void> {
    if (upstream.checking || this.#stopped) return;
    upstream.checking = true;
    try {
      const { statusCode, body } = await this.#agent.request({
        origin: upstream.url,
        path: '/readyz',
        method: 'GET',
        headersTimeout: CHECK_TIMEOUT_MS,
        bodyTimeout: CHECK_TIMEOUT_MS,
      });
      const text = await body.text();
      if (this.#stopped) return;
      if (statusCode >= 200 && statusCode < 300) {
        upstream.sessionsInMemory = sessionsInMemoryOf(text);
        this.upstreams.passed(upstream);
      } else this.upstreams.failed(upstream, `/readyz answered ${statusCode}`, { atOnce: false, silent: false });
    } catch (error) {
      if (this.#stopped) return;
      this.upstreams.failed(upstream, `/readyz failed (${errorCode(error)})`, {
        atOnce: refusedConnection(error),
        silent: timedOut(error),
      });
    } finally {
      upstream.checking = false;
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#agent.destroy();
  }
}
