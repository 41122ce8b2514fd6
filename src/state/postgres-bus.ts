import type { PgListener } from '../records/pg-listener.ts';
import type { Bus, BusHandler } from './types.ts';

/**
 * Every logical channel travels on this one NOTIFY channel; the payload names the logical one:
 * `{"c": channel, "m": message}`. A part that must wake others in the same transaction as its
 * write (the chat's stored messages) sends that NOTIFY itself, and this bus delivers it as its own.
 */
export const PG_BUS_CHANNEL = 'statewise_bus';
/** NOTIFY payloads are limited to 8000 bytes. */
const MAX_PAYLOAD = 7900;

/**
 * The bus between servers over LISTEN/NOTIFY, on the process's one listening connection (which
 * reconnects by itself). Delivery is at most once, as the bus promises.
 */
export class PostgresBus implements Bus {
  readonly #handlers = new Map<string, Set<BusHandler>>();
  readonly #reconnectHandlers = new Set<() => void>();
  #unlisten: (() => Promise<void>) | undefined;

  private constructor(private readonly listener: PgListener) {}

  static async open(listener: PgListener): Promise<PostgresBus> {
    const bus = new PostgresBus(listener);
    bus.#unlisten = await listener.listen(
      PG_BUS_CHANNEL,
      (payload) => bus.#deliver(payload),
      () => {
        for (const handler of bus.#reconnectHandlers) handler();
      },
    );
    return bus;
  }

  async publish(channel: string, message: string): Promise<void> {
    const payload = JSON.stringify({ c: channel, m: message });
    if (Buffer.byteLength(payload) > MAX_PAYLOAD) throw new Error(`bus message over ${MAX_PAYLOAD} bytes`);
    await this.listener.notify(PG_BUS_CHANNEL, payload);
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

  onReconnect(handler: () => void): () => void {
    this.#reconnectHandlers.add(handler);
    return () => void this.#reconnectHandlers.delete(handler);
  }

  async close(): Promise<void> {
    await this.#unlisten?.();
  }

  #deliver(payload: string): void {
    let parsed: { c?: unknown; m?: unknown };
    try {
      parsed = JSON.parse(payload) as { c?: unknown; m?: unknown };
    } catch {
      return; // Not ours: someone else NOTIFYed on the channel.
    }
    if (typeof parsed.c !== 'string' || typeof parsed.m !== 'string') return;
    for (const handler of this.#handlers.get(parsed.c) ?? []) handler(parsed.m);
  }
}
