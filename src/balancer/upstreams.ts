import type { FastifyBaseLogger } from 'fastify';

/** An app server the balancer can send to. */
export interface Upstream {
  id: string;
  /** e.g. http://127.0.0.1:41234 */
  url: string;
}

/** `unknown` until the first check answers: a new server gets no traffic before it is ready. */
export type UpstreamStatus = 'unknown' | 'healthy' | 'unhealthy';

export interface UpstreamState extends Upstream {
  /** For raw TCP connections (WebSocket tunnels): host without brackets, and the port. */
  readonly hostname: string;
  readonly port: number;
  /** host[:port] as it goes in a Host header. */
  readonly host: string;
  status: UpstreamStatus;
  /** Consecutive failed checks. */
  failures: number;
  /** A health check is in flight: never two at once for one server. */
  checking: boolean;
  /** Requests sent to it (each retry attempt counts), for GET /_cluster. */
  requests: number;
  /** Open WebSocket tunnels to it. */
  connections: number;
  /** Sessions only it holds, as its last readiness check said (null: they live in a shared store). */
  sessionsInMemory: number | null;
}

/** Failed checks in a row that take a server out of the rotation (a refused connection does at once). */
const FALL = 2;

function stateOf(upstream: Upstream): UpstreamState {
  const url = new URL(upstream.url);
  return {
    id: upstream.id,
    url: upstream.url,
    hostname: url.hostname.replace(/^\[|\]$/g, ''),
    port: Number(url.port || 80),
    host: url.host,
    status: 'unknown',
    failures: 0,
    checking: false,
    requests: 0,
    connections: 0,
    sessionsInMemory: null,
  };
}

/**
 * The balancer's view of its servers: who is healthy, and the round-robin cursor. Health changes
 * come from active checks (/readyz), passive detection (a failed connection) and the supervisor.
 * The healthy list is rebuilt only when a status changes, so picking a server allocates nothing.
 */
export class UpstreamSet {
  #byId = new Map<string, UpstreamState>();
  #healthy: UpstreamState[] = [];
  #cursor = 0;

  constructor(
    private readonly log: FastifyBaseLogger,
    /**
     * A server taken out because it went silent (a connect or an answer timed out: hung, or cut
     * off by the network): what was sent to it will not be answered either.
     */
    private readonly onSilent: (upstream: UpstreamState) => void = () => {},
  ) {}

  /** Replaces the set; an id that stays at the same URL keeps its state. Returns the new ones. */
  replace(list: readonly Upstream[]): UpstreamState[] {
    const previous = this.#byId;
    const added: UpstreamState[] = [];
    this.#byId = new Map();
    for (const upstream of list) {
      const known = previous.get(upstream.id);
      // Same id at another URL is another process (a restart on a new port): it starts unknown.
      const state = known && known.url === upstream.url ? known : stateOf(upstream);
      if (state !== known) added.push(state);
      this.#byId.set(state.id, state);
    }
    this.#rebuild();
    return added;
  }

  all(): UpstreamState[] {
    return [...this.#byId.values()];
  }

  get(id: string): UpstreamState | undefined {
    return this.#byId.get(id);
  }

  /** The next healthy server in turn, skipping `exclude`; undefined when none is left. */
  next(exclude?: ReadonlySet<string>): UpstreamState | undefined {
    const healthy = this.#healthy;
    for (let i = 0; i < healthy.length; i++) {
      this.#cursor = (this.#cursor + 1) % healthy.length;
      const candidate = healthy[this.#cursor]!;
      if (!exclude?.has(candidate.id)) return candidate;
    }
    return undefined;
  }

  /** A check succeeded: one success is enough to (re)admit a server. */
  passed(upstream: UpstreamState): void {
    if (!this.#current(upstream)) return;
    upstream.failures = 0;
    if (upstream.status === 'healthy') return;
    upstream.status = 'healthy';
    this.log.info({ server: upstream.id }, `${upstream.id} is up`);
    this.#rebuild();
  }

  /**
   * A check or a connection failed: `atOnce` for failures that leave no doubt (refused, dead),
   * `silent` for a timeout (see onSilent).
   */
  failed(upstream: UpstreamState, reason: string, how: { atOnce: boolean; silent: boolean }): void {
    if (!this.#current(upstream)) return;
    upstream.failures++;
    if (upstream.status === 'unhealthy' || (!how.atOnce && upstream.failures < FALL)) return;
    upstream.failures = Math.max(upstream.failures, FALL);
    upstream.status = 'unhealthy';
    this.log.warn({ server: upstream.id, reason }, `${upstream.id} is down: ${reason}`);
    this.#rebuild();
    if (how.silent) this.onSilent(upstream);
  }

  /** The supervisor knows the server is gone or draining: stop routing to it now. */
  markDown(id: string): void {
    const upstream = this.#byId.get(id);
    if (!upstream || upstream.status === 'unhealthy') return;
    upstream.status = 'unhealthy';
    upstream.failures = FALL;
    // Expected (a stop or a kill the supervisor ordered), so not a warning.
    this.log.info({ server: id }, `${id} is down: marked down by the supervisor`);
    this.#rebuild();
  }

  /** Results for a server removed (or replaced) meanwhile are stale. */
  #current(upstream: UpstreamState): boolean {
    return this.#byId.get(upstream.id) === upstream;
  }

  #rebuild(): void {
    this.#healthy = [...this.#byId.values()].filter((u) => u.status === 'healthy');
  }
}
