import type { SessionId, SessionRecord, StateStore } from '../types.ts';
import { NearCache, type InvalidationSource, type Loaded } from './near-cache.ts';

/**
 * How a backend reads a cached kind of value so that the store will tell it of a change, with the
 * value's own expiry in the store.
 */
export interface TrackedReads {
  session(id: SessionId): Promise<Loaded<SessionRecord>>;
  hash(key: string): Promise<Loaded<Record<string, string>>>;
}

export interface NearCacheOptions {
  /** The cap of the LRU: entries past it push the least recently used out. 0 turns the cache off. */
  maxEntries: number;
  /** HashStore keys read on nearly every request and rarely written (e.g. a revocation marker). */
  hashPrefixes: readonly string[];
}

/** The cache's keys: one namespace per kind of value, as the backends' invalidations name them. */
export const sessionEntry = (id: string) => `s:${id}`;
export const hashEntry = (key: string) => `h:${key}`;

/**
 * The store with its read-mostly reads (sessions, and hashes under the given prefixes) served from
 * this server's memory. Every write still goes to the store, which announces the change to every
 * server's cache; this server also drops its own entry at once, so it reads its own writes.
 * Another server stops answering the old value when the announcement reaches it: within
 * milliseconds (bench/near-cache.ts measures it), sooner than a client can turn to it.
 */
export function withNearCache(
  store: StateStore,
  source: InvalidationSource,
  reads: TrackedReads,
  options: NearCacheOptions,
): StateStore {
  const cache = new NearCache(source, options.maxEntries);
  const cachedHash = (key: string) => options.hashPrefixes.some((prefix) => key.startsWith(prefix));
  const sessions = store.sessions;
  const hashes = store.hashes;
  /**
   * Our own write: the entry goes before (a read racing the write is not kept) and after. It
   * answers once every server has heard of it: a logged-out session or a revoked token must be
   * refused by the next server the client turns to. A touch does not wait (a stale last-seen time
   * costs nothing).
   */
  const changing = async <T>(entry: string, write: Promise<T>, seenAtOnce = true): Promise<T> => {
    cache.invalidate(entry);
    try {
      const result = await write;
      if (seenAtOnce) await source.settled();
      return result;
    } finally {
      cache.invalidate(entry);
    }
  };
  const changingHash = <T>(key: string, write: Promise<T>): Promise<T> =>
    cachedHash(key) ? changing(hashEntry(key), write) : write;
  return {
    ...store,
    sessions: {
      create: (session, idleTtlMs) => sessions.create(session, idleTtlMs),
      get: (id) => cache.read(sessionEntry(id), () => reads.session(id)),
      touch: (id, lastSeenAt, idleTtlMs) =>
        changing(sessionEntry(id), sessions.touch(id, lastSeenAt, idleTtlMs), false),
      destroy: (id) => changing(sessionEntry(id), sessions.destroy(id)),
      listByUser: (userId) => sessions.listByUser(userId),
      destroyByUser: async (userId) => {
        const ofUser = (value: object) => (value as SessionRecord).userId === userId;
        cache.invalidateWhere(sessionEntry(''), ofUser);
        try {
          const destroyed = await sessions.destroyByUser(userId);
          await source.settled();
          return destroyed;
        } finally {
          cache.invalidateWhere(sessionEntry(''), ofUser);
        }
      },
    },
    hashes: {
      // A hash read never answers null (an absent hash is {}), so every answer is cacheable.
      getAll: async (key) =>
        cachedHash(key) ? (await cache.read(hashEntry(key), () => reads.hash(key)))! : hashes.getAll(key),
      incrBy: (key, field, by, ttlMs) => changingHash(key, hashes.incrBy(key, field, by, ttlMs)),
      incrByAndGetAll: (key, field, by, ttlMs) => changingHash(key, hashes.incrByAndGetAll(key, field, by, ttlMs)),
      set: (key, field, value, ttlMs) => changingHash(key, hashes.set(key, field, value, ttlMs)),
      deleteField: (key, field) => changingHash(key, hashes.deleteField(key, field)),
      delete: (key) => changingHash(key, hashes.delete(key)),
    },
    nearCacheStats: () => cache.stats(),
    async close() {
      await source.close();
      await store.close();
    },
  };
}
