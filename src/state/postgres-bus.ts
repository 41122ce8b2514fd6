import pg from 'pg';
import type { Bus, BusHandler } from './types.ts';

/** Every logical channel travels on this one NOTIFY channel; the payload names the logical one. */
const PG_CHANNEL = 'statewise_bus';
/** NOTIFY payloads are limited to 8000 bytes. */
const MAX_PAYLOAD = 7900;

/**
 * The bus between servers over LISTEN/NOTIFY: a dedicated connection listens (a pooled one could
 * not), and reconnects with backoff when it drops. Delivery is at most once, as the bus promises.
 */
export class PostgresBus implements Bus {
  readonly #handlers = new Map<string, Set<BusHandler>>();
  #listener: pg.Client | undefined;
  #closed = false;
  #retryMs = 100;

  private constructor(private readonly connectionString: string) {}

  static async connect(connectionString: string): Promise<PostgresBus> {
    const bus = new PostgresBus(connectionString);
    await bus.#listen();
    return bus;
  }

  async publish(channel: string, message: string): Promise<void> {
    const payload = JSON.stringify({ c: channel, m: message });
    if (Buffer.byteLength(payload) > MAX_PAYLOAD) throw new Error(`bus message over ${MAX_PAYLOAD} bytes`);
    const client = this.#listener;
    // NOTIFY from the listening connection is fine: PostgreSQL delivers to every listener, us too.
    if (!client) throw new Error('bus is reconnecting');
    await client.query('SELECT pg_notify($1, $2)', [PG_CHANNEL, payload]);
  }

  async subscribe(channel: string, handler: BusHandler): Promise<() => Promise<void>> {
    let handlers = this.#handlers.get(channel);
    if (!handlers) this.#handlers.set(channel, (handlers = new Set()));
    handlers.add(handler);
    return async () => {
      handlers.delete(handler);
      if (handlers.size === 0) this.#handlers.delete(channel);
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#listener?.end().catch(() => {});
  }

  async #listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.connectionString });
    client.on('notification', (n) => {
      if (!n.payload) return;
      const { c, m } = JSON.parse(n.payload) as { c: string; m: string };
      for (const handler of this.#handlers.get(c) ?? []) handler(m);
    });
    client.on('error', () => {
      if (this.#listener === client) this.#listener = undefined;
      client.end().catch(() => {});
      this.#reconnect();
    });
    await client.connect();
    await client.query(`LISTEN ${PG_CHANNEL}`);
    this.#listener = client;
    this.#retryMs = 100;
  }

  #reconnect(): void {
    if (this.#closed) return;
    setTimeout(() => {
      this.#listen().catch(() => {
        this.#retryMs = Math.min(this.#retryMs * 2, 5000);
        this.#reconnect();
      });
    }, this.#retryMs).unref();
  }
}
