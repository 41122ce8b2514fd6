import pg from 'pg';
import type { WarnLog } from '../kernel/periodic.ts';

interface Channel {
  handlers: Set<(payload: string) => void>;
  /** Called after a reconnect: notifications sent while the connection was down are lost. */
  onReconnect: Set<() => void>;
}

const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 5_000;

/**
 * The one LISTEN connection of a process (a pooled connection cannot listen), shared by every part
 * that waits for a NOTIFY: the postgres bus, the signing-key ring. When the connection drops it
 * reconnects with backoff, for as long as the process runs, then listens again on every channel
 * and tells each subscriber it may have missed notifications.
 */
export class PgListener {
  readonly #channels = new Map<string, Channel>();
  #client: pg.Client | undefined;
  #closed = false;
  #retryMs = FIRST_RETRY_MS;
  #retryTimer: NodeJS.Timeout | undefined;
  #tail: Promise<unknown> = Promise.resolve();
  #connections = 0;

  private constructor(
    private readonly connectionString: string,
    private readonly log: WarnLog,
  ) {}

  static async connect(connectionString: string, log: WarnLog): Promise<PgListener> {
    const listener = new PgListener(connectionString, log);
    await listener.#connect();
    return listener;
  }

  get connected(): boolean {
    return this.#client !== undefined;
  }

  /**
   * Counts the connections made, each listening on every channel before it counts; undefined while
   * there is none. Whoever relies on hearing every NOTIFY (a near cache) knows, by a change, that
   * some may have been missed.
   */
  get epoch(): number | undefined {
    return this.#client === undefined ? undefined : this.#connections;
  }

  /** Delivers every NOTIFY on `channel` to `handler`; resolves once listening. */
  async listen(
    channel: string,
    handler: (payload: string) => void,
    onReconnect?: () => void,
  ): Promise<() => Promise<void>> {
    let entry = this.#channels.get(channel);
    if (!entry) {
      entry = { handlers: new Set(), onReconnect: new Set() };
      this.#channels.set(channel, entry);
      if (this.#client) await this.#inTurn(this.#client, `LISTEN ${pg.escapeIdentifier(channel)}`);
    }
    entry.handlers.add(handler);
    if (onReconnect) entry.onReconnect.add(onReconnect);
    const channelEntry = entry;
    return async () => {
      channelEntry.handlers.delete(handler);
      if (onReconnect) channelEntry.onReconnect.delete(onReconnect);
      if (channelEntry.handlers.size > 0) return;
      this.#channels.delete(channel);
      if (this.#client) {
        await this.#inTurn(this.#client, `UNLISTEN ${pg.escapeIdentifier(channel)}`).catch(() => undefined);
      }
    };
  }

  /** NOTIFY on the listening connection (PostgreSQL delivers to every listener, this one too). */
  async notify(channel: string, payload: string): Promise<void> {
    await this.query('SELECT pg_notify($1, $2)', [channel, payload]);
  }

  /**
   * A statement on the listening connection itself, in turn with the others: for what must be
   * ordered with the notifications it hears, or must name this connection (pg_backend_pid()).
   */
  async query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<R[]> {
    const client = this.#client;
    if (!client) throw new Error('the PostgreSQL listener is reconnecting');
    return ((await this.#inTurn(client, text, values)) as pg.QueryResult<R>).rows;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => undefined);
  }

  /**
   * Runs a statement on the listening connection after the ones before it: one connection runs one
   * query at a time (pg 9 will refuse a second one in flight).
   */
  #inTurn(client: pg.Client, text: string, values?: unknown[]): Promise<unknown> {
    const run = this.#tail.then(() => client.query(text, values));
    this.#tail = run.catch(() => undefined);
    return run;
  }

  async #connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.connectionString, application_name: 'statewise-listener' });
    client.on('notification', (n) => {
      for (const handler of this.#channels.get(n.channel)?.handlers ?? []) handler(n.payload ?? '');
    });
    client.on('error', (error) => this.#lost(client, error));
    client.on('end', () => this.#lost(client, new Error('connection ended')));
    try {
      await client.connect();
      // Closed while connecting: this connection would outlive the listener (and keep the process up).
      if (this.#closed) throw new Error('the listener was closed');
      for (const channel of this.#channels.keys()) await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    } catch (error) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
      throw error;
    }
    this.#connections++;
    this.#client = client;
    this.#retryMs = FIRST_RETRY_MS;
  }

  #lost(client: pg.Client, error: Error): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    client.end().catch(() => undefined);
    if (this.#closed) return;
    this.log.warn({ err: error }, 'PostgreSQL listener lost its connection; reconnecting');
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#closed) return;
    this.#retryTimer = setTimeout(() => {
      this.#connect().then(
        () => {
          this.log.warn({}, 'PostgreSQL listener reconnected');
          for (const channel of this.#channels.values()) for (const callback of channel.onReconnect) callback();
        },
        () => {
          this.#retryMs = Math.min(this.#retryMs * 2, MAX_RETRY_MS);
          this.#scheduleReconnect();
        },
      );
    }, this.#retryMs);
    this.#retryTimer.unref();
  }
}
