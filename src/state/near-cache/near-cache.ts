/**
 * Where invalidations come from (Redis client tracking, PostgreSQL NOTIFY). `epoch` is undefined
 * while they cannot flow (the connection is down or being set up), and changes each time some may
 * have been missed (a drop and a reconnect): the cache then starts empty.
 */
export interface InvalidationSource {
  readonly epoch: number | undefined;
  /** `keys` changed in the store; null: anything may have (a flush, an overflow). */
  onInvalidate(handler: (keys: readonly string[] | null) => void): void;
  /**
   * Resolves once every change this process made before the call has been announced to every
   * server (settle-markers.ts); at once while invalidations cannot flow.
   */
  settled(): Promise<void>;
  close(): Promise<void>;
}

/** What a backend's tracked read answers: the value, and when the store will stop answering it. */
export interface Loaded<T> {
  value: T | null;
  /** Epoch ms of the store's own expiry (idle or absolute TTL); null when it has none. */
  expiresAt: number | null;
}

interface Entry {
  value: object;
  expiresAt: number | null;
}

/** A read in flight: an invalidation of its key meanwhile means its answer may already be old. */
interface Ticket {
  dirty: boolean;
}

export interface NearCacheStats {
  /** Invalidations flow: reads may be cached. */
  live: boolean;
  /** Times the whole cache was emptied (a drop, a reconnect, a flush announced by the store). */
  flushes: number;
  hits: number;
  misses: number;
  /** Reads that went to the store uncached because invalidations were not flowing. */
  bypassed: number;
  size: number;
}

/**
 * A bounded map (least recently used out first) of values read from the shared store, kept true
 * by the store's invalidations. The rules that make it never lie:
 *  - nothing is cached unless invalidations flow, from before the read began until it ended (the
 *    epoch is the same on both sides, and defined);
 *  - a read whose key was invalidated while it was in flight is answered but not cached;
 *  - a lost, reconnected or overflowing invalidation channel empties the whole cache;
 *  - an entry is never served past the store's own expiry of the value (an expiry need not be
 *    announced in time: PostgreSQL sweeps, Redis expires lazily);
 *  - null (an absent session) is never cached: a create need not reach anyone's cache.
 */
export class NearCache {
  readonly #entries = new Map<string, Entry>();
  readonly #inFlight = new Map<string, Set<Ticket>>();
  #epoch: number | undefined;
  #hits = 0;
  #misses = 0;
  #bypassed = 0;
  #flushes = 0;

  constructor(
    private readonly source: InvalidationSource,
    private readonly maxEntries: number,
  ) {
    source.onInvalidate((keys) => {
      if (keys === null) return this.clear();
      for (const key of keys) this.#invalidate(key);
    });
  }

  async read<T extends object>(key: string, load: () => Promise<Loaded<T>>): Promise<T | null> {
    const epoch = this.source.epoch;
    if (epoch !== this.#epoch) {
      this.clear();
      this.#epoch = epoch;
    }
    if (epoch === undefined) {
      this.#bypassed++;
      return (await load()).value;
    }
    const hit = this.#entries.get(key);
    if (hit !== undefined) {
      // Most recently used goes last: a Map iterates in insertion order, so the first is the oldest.
      this.#entries.delete(key);
      if (hit.expiresAt === null || Date.now() < hit.expiresAt) {
        this.#hits++;
        this.#entries.set(key, hit);
        return hit.value as T;
      }
    }
    this.#misses++;
    const ticket: Ticket = { dirty: false };
    let tickets = this.#inFlight.get(key);
    if (!tickets) this.#inFlight.set(key, (tickets = new Set()));
    tickets.add(ticket);
    try {
      const { value, expiresAt } = await load();
      if (value !== null && !ticket.dirty && this.source.epoch === epoch && this.#epoch === epoch) {
        this.#entries.set(key, { value, expiresAt });
        if (this.#entries.size > this.maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
      }
      return value;
    } finally {
      tickets.delete(ticket);
      if (tickets.size === 0) this.#inFlight.delete(key);
    }
  }

  /** This server changed `key` itself: its own next read must not wait for the store's announcement. */
  invalidate(key: string): void {
    this.#invalidate(key);
  }

  /** Drops every entry whose key has `prefix` and whose value passes `match` (a user's sessions). */
  invalidateWhere(prefix: string, match: (value: object) => boolean): void {
    for (const [key, entry] of this.#entries) if (key.startsWith(prefix) && match(entry.value)) this.#invalidate(key);
  }

  clear(): void {
    this.#flushes++;
    this.#entries.clear();
    for (const tickets of this.#inFlight.values()) for (const ticket of tickets) ticket.dirty = true;
  }

  stats(): NearCacheStats {
    return {
      live: this.source.epoch !== undefined,
      flushes: this.#flushes,
      hits: this.#hits,
      misses: this.#misses,
      bypassed: this.#bypassed,
      size: this.#entries.size,
    };
  }

  #invalidate(key: string): void {
    this.#entries.delete(key);
    const tickets = this.#inFlight.get(key);
    if (tickets) for (const ticket of tickets) ticket.dirty = true;
  }
}
