import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { InvalidationSource } from './near-cache.ts';
import { SettleMarkers } from './settle-markers.ts';

const CHANNEL = '__redis__:invalidate';

/**
 * Redis server-assisted client-side caching (CLIENT TRACKING, default mode, RESP2 redirect): every
 * key read on `reader` is remembered by Redis, and a change to it, by anyone, an expiry or an
 * eviction included, is announced on `subscriber`. Only the reads of cached values go through
 * `reader`, so Redis remembers only those keys.
 *
 * Tracking is switched on before the first tracked read, and again after either connection comes
 * back (a new subscriber has a new id to redirect to). Until then `epoch` is undefined: the cache
 * answers from the store and keeps nothing.
 */
export class RedisTracking implements InvalidationSource {
  #epoch: number | undefined;
  #epochs = 0;
  #subscriberId: number | undefined;
  #handler: (keys: readonly string[] | null) => void = () => {};
  #closed = false;
  /** Setups run one after the other: both connections may come back at once. */
  #setups: Promise<void> = Promise.resolve();
  readonly #markers = new SettleMarkers();
  /** This process's own channel for settle markers, on the same subscriber as the invalidations. */
  readonly #markerChannel = `__statewise__:settled:${randomUUID()}`;

  constructor(
    readonly reader: Redis,
    private readonly subscriber: Redis,
    /** Redis key -> cache key (undefined: not a key the cache holds). */
    private readonly toCacheKey: (redisKey: string) => string | undefined,
  ) {
    subscriber.on('messageBuffer', (channel: Buffer, keys: Buffer[] | Buffer | null) => {
      const name = channel.toString();
      if (name === this.#markerChannel && Buffer.isBuffer(keys)) return void this.#markers.heard(keys.toString());
      if (name !== CHANNEL || Buffer.isBuffer(keys)) return;
      if (keys === null) return this.#handler(null); // FLUSHALL, or tracking table overflow.
      const cacheKeys: string[] = [];
      for (const key of keys) {
        const cacheKey = this.toCacheKey(key.toString());
        if (cacheKey !== undefined) cacheKeys.push(cacheKey);
      }
      this.#handler(cacheKeys);
    });
    for (const connection of [reader, subscriber]) {
      // Whatever Redis said meanwhile is lost with the connection: nothing cached counts any more.
      connection.on('close', () => this.#lost(connection === subscriber));
      connection.on('ready', () => void this.#setUp());
    }
  }

  /** Both connections are up; the first setup happens before the store is handed out. */
  static async open(reader: Redis, subscriber: Redis, toCacheKey: (key: string) => string | undefined) {
    const tracking = new RedisTracking(reader, subscriber, toCacheKey);
    await Promise.all([reader.ping(), subscriber.ping()]);
    await tracking.#setUp();
    if (tracking.epoch === undefined) throw new Error('Redis client tracking could not be switched on');
    return tracking;
  }

  get epoch(): number | undefined {
    return this.#epoch;
  }

  onInvalidate(handler: (keys: readonly string[] | null) => void): void {
    this.#handler = handler;
  }

  /**
   * Redis writes a change's invalidation to our subscriber while it runs the change, before it
   * answers the writer; a PUBLISH sent after that answer reaches the subscriber behind it.
   */
  settled(): Promise<void> {
    if (this.#epoch === undefined) return Promise.resolve();
    return this.#markers.settle(async (marker) => {
      await this.reader.publish(this.#markerChannel, marker);
      return 1;
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#epoch = undefined;
    await Promise.all([this.reader.quit().catch(() => {}), this.subscriber.quit().catch(() => {})]);
    this.reader.disconnect();
    this.subscriber.disconnect();
  }

  #lost(subscriberLost: boolean): void {
    this.#epoch = undefined;
    if (subscriberLost) this.#subscriberId = undefined;
    this.#markers.releaseAll();
    this.#handler(null);
  }

  #setUp(): Promise<void> {
    this.#setups = this.#setups.then(() => this.#trySetUp());
    return this.#setups;
  }

  async #trySetUp(): Promise<void> {
    if (this.#closed || this.reader.status !== 'ready' || this.subscriber.status !== 'ready') return;
    if (this.#epoch !== undefined) return; // Already tracking since the last drop.
    try {
      if (this.#subscriberId === undefined) {
        // CLIENT ID first: a subscribed RESP2 connection can run nothing but (un)subscribe and ping.
        const id = Number(await this.subscriber.client('ID'));
        await this.subscriber.subscribe(CHANNEL, this.#markerChannel);
        this.#subscriberId = id;
      }
      const id = this.#subscriberId;
      // Off, then on: a reader still redirecting to a subscriber that is gone must follow the new one.
      await this.reader.client('TRACKING', 'OFF');
      await this.reader.client('TRACKING', 'ON', 'REDIRECT', String(id));
      if (this.#subscriberId === id && this.reader.status === 'ready') this.#epoch = ++this.#epochs;
    } catch {
      // A connection dropped during the setup: its 'ready' runs the setup again.
    }
  }
}
