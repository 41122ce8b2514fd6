import { Cluster, type Redis } from 'ioredis';
import {
  hashEntry,
  sessionEntry,
  withNearCache,
  type NearCacheOptions,
  type TrackedReads,
} from './near-cache/cached-store.ts';
import { timedReads, timedStore, type StoreObserver } from './timed-store.ts';
import { RedisTracking } from './near-cache/redis-tracking.ts';
import { ReplicaWait } from './replica-wait.ts';
import { isRedis7OrNewer, redactRedisUrl, redisFromUrl, redisVersionFromInfo } from './redis-url.ts';
import type {
  Bus,
  BusHandler,
  HashStore,
  KeyStore,
  SessionId,
  SessionRecord,
  SessionStore,
  StateStore,
  UserId,
} from './types.ts';

type Client = Redis | Cluster;

/*
 * Key layout. Every key carries a hash tag ({...}) so each command and script touches one slot:
 * the same code runs on a single Redis, under Sentinel and on Redis Cluster.
 *   sw:s:{<sessionId>}   hash: one session          sw:u:{<userId>}  sorted set: a user's session ids
 *   sw:h:{<key>}         hash: HashStore            sw:k:{<key>}     string: KeyStore
 * The user index scores each session id by its absoluteExpiresAt (older versions scored by
 * createdAt; such entries are still read and pruned correctly).
 */
const sessionKey = (id: string) => `sw:s:{${id}}`;
const userKey = (userId: string) => `sw:u:{${userId}}`;
const hashKey = (key: string) => `sw:h:{${key}}`;
const keyKey = (key: string) => `sw:k:{${key}}`;
const busChannel = (channel: string) => `sw:bus:${channel}`;

/** Touch only a session that still exists (a plain HSET would resurrect a destroyed one). */
const TOUCH = `if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'l', ARGV[1]); redis.call('PEXPIRE', KEYS[1], ARGV[2]); return 1
end return 0`;
/** A fixed window: the first hit of a window sets its expiry, later hits only count. */
const HIT = `local c = redis.call('INCR', KEYS[1])
local t = redis.call('PTTL', KEYS[1])
if t < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); t = tonumber(ARGV[1]) end
return {c, t}`;

interface Scripts {
  swTouch(key: string, lastSeenAt: string, ttlMs: string): Promise<number>;
  swHit(key: string, windowMs: string): Promise<[number, number]>;
}

/**
 * A session is a hash of two fields: `d`, the fields that never change (JSON), and `l`, lastSeenAt,
 * the one field a touch updates. A read is one HGETALL of four items: the cheapest reply to parse.
 */
type StoredSession = Omit<SessionRecord, 'lastSeenAt'>;

const toSession = (h: Record<string, string>): SessionRecord | null =>
  h.d ? { ...(JSON.parse(h.d) as StoredSession), lastSeenAt: Number(h.l) } : null;

/**
 * How long past its absoluteExpiresAt an index entry whose session is gone is kept, and how much
 * longer than its longest session the index lives: far more than the clock skew between app
 * servers and than a create can take between its two writes.
 */
const INDEX_GRACE_MS = 60_000;

/*
 * A session (sw:s:{id}) and its user's index (sw:u:{userId}) are in two hash slots, so no MULTI or
 * script may span them on Cluster, and nothing can write both at once. The invariant kept instead:
 * a session never exists without its index entry (else logout-all misses it), while an index entry
 * without a session is harmless (listings skip it). Hence:
 *   - create writes the index entry first and writes the session only once that write succeeded;
 *   - an index entry is removed only after its session is gone for good: by whoever deleted the
 *     session (destroy, destroyByUser), or once its absoluteExpiresAt is INDEX_GRACE_MS past. An
 *     entry whose session is merely absent may belong to a create between its two writes, so a
 *     listing or a logout-all never removes it early (the old DEL of the whole index did, and a
 *     session landing just after was invisible to every later logout-all).
 * A logout-all that races a login may leave that one login alive; the next logout-all finds it.
 */
/** Waits until enough replicas have this connection's writes so far (WAIT); a no-op without replicas. */
type Replicated = () => Promise<void>;
const notReplicated: Replicated = async () => {};

class RedisSessions implements SessionStore {
  constructor(
    private readonly redis: Client & Scripts,
    /** After a logout: it must not come undone by a failover to a replica that never saw it. */
    private readonly replicated: Replicated = notReplicated,
  ) {}

  async create(s: SessionRecord, idleTtlMs: number): Promise<void> {
    if (s.userId) {
      const index = userKey(s.userId);
      // The index lives as long as the longest session in it could. PEXPIRE GT never sets a TTL on
      // a key without one (a new index), NX sets only that: together, the larger of old and new.
      const ttl = Math.max(s.absoluteExpiresAt - Date.now(), idleTtlMs, 0) + INDEX_GRACE_MS;
      await execAll(
        this.redis.multi().zadd(index, s.absoluteExpiresAt, s.id).pexpire(index, ttl, 'GT').pexpire(index, ttl, 'NX'),
      );
    }
    const key = sessionKey(s.id);
    try {
      await execAll(
        this.redis
          .multi()
          .hset(key, {
            d: JSON.stringify({
              id: s.id,
              userId: s.userId,
              username: s.username,
              createdAt: s.createdAt,
              absoluteExpiresAt: s.absoluteExpiresAt,
              userAgent: s.userAgent,
            } satisfies StoredSession),
            l: s.lastSeenAt,
          })
          .pexpire(key, idleTtlMs),
      );
    } catch (error) {
      // The caller hands out no cookie; drop whatever was written (an HSET without its PEXPIRE
      // would never expire). Its index entry stays, harmless, until pruned.
      await this.redis.del(key).catch(() => {});
      throw error;
    }
  }

  async get(id: SessionId): Promise<SessionRecord | null> {
    return toSession(await this.redis.hgetall(sessionKey(id)));
  }

  async touch(id: SessionId, lastSeenAt: number, idleTtlMs: number): Promise<boolean> {
    return (await this.redis.swTouch(sessionKey(id), String(lastSeenAt), String(idleTtlMs))) === 1;
  }

  async destroy(id: SessionId): Promise<boolean> {
    const session = await this.get(id);
    if (!session) return false;
    const removed = await this.redis.del(sessionKey(id));
    // The entry goes after its session, never before (a login writes them the other way round).
    if (session.userId) await this.redis.zrem(userKey(session.userId), id);
    await this.replicated();
    return removed === 1;
  }

  /** The index entries of a user: session id and absoluteExpiresAt (createdAt for old entries). */
  async #entries(index: string): Promise<{ id: string; score: number }[]> {
    const flat = await this.redis.zrange(index, '0', '-1', 'WITHSCORES');
    const entries = [];
    for (let i = 0; i + 1 < flat.length; i += 2) entries.push({ id: flat[i]!, score: Number(flat[i + 1]) });
    return entries;
  }

  async listByUser(userId: UserId): Promise<SessionRecord[]> {
    const index = userKey(userId);
    const entries = await this.#entries(index);
    const found = await Promise.all(entries.map(async ({ id }) => toSession(await this.redis.hgetall(sessionKey(id)))));
    const pruneBefore = Date.now() - INDEX_GRACE_MS;
    const stale = entries.filter((e, i) => found[i] === null && e.score < pruneBefore).map((e) => e.id);
    if (stale.length > 0) await this.redis.zrem(index, ...stale);
    return found.filter((s): s is SessionRecord => s !== null).sort((a, b) => a.createdAt - b.createdAt);
  }

  async destroyByUser(userId: UserId): Promise<number> {
    const index = userKey(userId);
    const entries = await this.#entries(index);
    // One DEL per session: on Cluster a multi-key DEL must stay in one slot.
    const deleted = await Promise.allSettled(entries.map(({ id }) => this.redis.del(sessionKey(id))));
    const pruneBefore = Date.now() - INDEX_GRACE_MS;
    const done = entries.filter((e, i) => {
      const result = deleted[i]!;
      return result.status === 'fulfilled' && (result.value === 1 || e.score < pruneBefore);
    });
    if (done.length > 0) await this.redis.zrem(index, ...done.map((e) => e.id));
    const failed = deleted.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    await this.replicated();
    return deleted.reduce((sum, r) => sum + (r.status === 'fulfilled' ? r.value : 0), 0);
  }
}

/** Runs a MULTI and returns its replies; throws the first command error (ioredis returns them as values). */
async function execAll(multi: ReturnType<Client['multi']>): Promise<unknown[]> {
  const results = await multi.exec();
  if (!results) throw new Error('the Redis transaction was aborted');
  const failed = results.find(([error]) => error);
  if (failed) throw failed[0];
  return results.map(([, reply]) => reply);
}

class RedisHashes implements HashStore {
  constructor(
    private readonly redis: Client,
    /** Keys under these prefixes are revocation markers: their increments wait for a replica. */
    private readonly durablePrefixes: readonly string[] = [],
    private readonly replicated: Replicated = notReplicated,
  ) {}

  async getAll(key: string): Promise<Record<string, string>> {
    return this.redis.hgetall(hashKey(key));
  }

  async incrBy(key: string, field: string, by: number, ttlMs?: number): Promise<number> {
    const value =
      ttlMs === undefined
        ? await this.redis.hincrby(hashKey(key), field, by)
        : Number((await execAll(this.redis.multi().hincrby(hashKey(key), field, by).pexpire(hashKey(key), ttlMs)))[0]);
    if (this.durablePrefixes.some((prefix) => key.startsWith(prefix))) await this.replicated();
    return value;
  }

  async incrByAndGetAll(key: string, field: string, by: number, ttlMs?: number) {
    const k = hashKey(key);
    const step = this.redis.multi().hincrby(k, field, by);
    if (ttlMs !== undefined) step.pexpire(k, ttlMs);
    const replies = await execAll(step.hgetall(k));
    return { value: Number(replies[0]), fields: replies.at(-1) as Record<string, string> };
  }

  async set(key: string, field: string, value: string, ttlMs?: number): Promise<void> {
    if (ttlMs === undefined) await this.redis.hset(hashKey(key), field, value);
    else await execAll(this.redis.multi().hset(hashKey(key), field, value).pexpire(hashKey(key), ttlMs));
  }

  async deleteField(key: string, field: string): Promise<boolean> {
    return (await this.redis.hdel(hashKey(key), field)) === 1;
  }

  async delete(key: string): Promise<void> {
    await this.redis.del(hashKey(key));
  }
}

class RedisKeys implements KeyStore {
  constructor(private readonly redis: Client & Scripts) {}

  get(key: string): Promise<string | null> {
    return this.redis.get(keyKey(key));
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    await this.redis.set(keyKey(key), value, 'PX', ttlMs);
  }

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(keyKey(key), value, 'PX', ttlMs, 'NX')) === 'OK';
  }

  async delete(key: string): Promise<boolean> {
    return (await this.redis.del(keyKey(key))) === 1;
  }

  async hit(key: string, windowMs: number): Promise<{ count: number; resetInMs: number }> {
    const [count, resetInMs] = await this.redis.swHit(keyKey(key), String(windowMs));
    return { count: Number(count), resetInMs: Number(resetInMs) };
  }
}

/** Redis pub/sub on a dedicated connection (a subscribed connection can run nothing else). */
class RedisBus implements Bus {
  readonly #handlers = new Map<string, Set<BusHandler>>();
  readonly #reconnectHandlers = new Set<() => void>();

  constructor(
    private readonly publisher: Client,
    private readonly subscriber: Client,
  ) {
    subscriber.on('message', (channel: string, message: string) => {
      for (const handler of this.#handlers.get(channel) ?? []) handler(message);
    });
    // 'ready' comes once the connection is up and ioredis has subscribed again to every channel.
    let connectedBefore = subscriber.status === 'ready';
    subscriber.on('ready', () => {
      if (connectedBefore) for (const handler of this.#reconnectHandlers) handler();
      connectedBefore = true;
    });
  }

  onReconnect(handler: () => void): () => void {
    this.#reconnectHandlers.add(handler);
    return () => void this.#reconnectHandlers.delete(handler);
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.publisher.publish(busChannel(channel), message);
  }

  async subscribe(channel: string, handler: BusHandler): Promise<() => Promise<void>> {
    const name = busChannel(channel);
    let handlers = this.#handlers.get(name);
    if (!handlers) {
      this.#handlers.set(name, (handlers = new Set()));
      await this.subscriber.subscribe(name);
    }
    handlers.add(handler);
    return async () => {
      handlers.delete(handler);
      if (handlers.size === 0) {
        this.#handlers.delete(name);
        await this.subscriber.unsubscribe(name);
      }
    };
  }
}

/** Throws unless the server runs Redis 7.0+ (on Cluster, INFO goes to one node: they run one version). */
async function requireRedis7(redis: Client, url: string): Promise<void> {
  const version = redisVersionFromInfo(await redis.info('server'));
  if (version && isRedis7OrNewer(version)) return;
  throw new Error(
    `statewise needs Redis 7.0 or newer for its session store; ${redactRedisUrl(url)} runs ${version ?? 'an unknown version (INFO server names no redis_version)'}`,
  );
}

/** The cache key of a tracked Redis key (sw:s:{id} -> s:id), or undefined for any other key. */
function cacheKeyOf(redisKey: string): string | undefined {
  const match = /^sw:([sh]):\{(.*)\}$/s.exec(redisKey);
  if (!match) return undefined;
  return match[1] === 's' ? sessionEntry(match[2]!) : hashEntry(match[2]!);
}

/**
 * The near cache's own pair of connections: tracked reads, and their invalidations. Not on Redis
 * Cluster, where each node tracks its own keys and would need a pair per node: there the store
 * is read directly.
 */
async function nearCached(
  store: StateStore,
  url: string,
  options: NearCacheOptions,
  observe: StoreObserver | undefined,
): Promise<StateStore> {
  const reader = redisFromUrl(url) as Redis | Cluster;
  if (reader instanceof Cluster || options.maxEntries === 0) {
    reader.disconnect();
    return store;
  }
  const subscriber = redisFromUrl(url, 'invalidations') as Redis;
  for (const connection of [reader, subscriber]) connection.on('error', () => {});
  try {
    const tracking = await RedisTracking.open(reader, subscriber, cacheKeyOf);
    // One round trip: the value and what is left of its TTL (PTTL is -1 without one, -2 when gone).
    const withTtl = async (key: string) => {
      const [fields, ttl] = (await execAll(reader.multi().hgetall(key).pttl(key))) as [Record<string, string>, number];
      return { fields, expiresAt: ttl >= 0 ? Date.now() + ttl : null };
    };
    const reads: TrackedReads = {
      session: async (id) => {
        const { fields, expiresAt } = await withTtl(sessionKey(id));
        return { value: toSession(fields), expiresAt };
      },
      hash: async (key) => {
        const { fields, expiresAt } = await withTtl(hashKey(key));
        return { value: fields, expiresAt };
      },
    };
    return withNearCache(store, tracking, observe ? timedReads(reads, observe) : reads, options);
  } catch (error) {
    reader.disconnect();
    subscriber.disconnect();
    throw error;
  }
}

/** After a WAIT that came back short, how long durable writes stop waiting (replica-wait.ts). */
const SHORT_WAIT_PAUSE_MS = 10_000;

export interface RedisStateOptions {
  url: string;
  nearCache?: NearCacheOptions;
  /** Told the time of every operation that goes to Redis (timed-store.ts). */
  observe?: StoreObserver;
  /**
   * Writes that must survive a failover (a logout, a log out everywhere, the hash increments under
   * `hashPrefixes`) are acknowledged only once `replicas` replicas have them (WAIT, at most
   * `timeoutMs`; fewer is logged). 0: no wait (no replicas, or Cluster).
   */
  durable?: {
    replicas: number;
    timeoutMs: number;
    hashPrefixes: readonly string[];
    /** A write stood on the primary alone: `acked` replicas had it (-1: not waited for, a wait came back short just before). */
    onShort?: (acked: number) => void;
  };
}

/** Session state in Redis (single, Sentinel or Cluster, by URL), with pub/sub as the bus. Needs Redis 7.0+. */
export async function createRedisState(options: RedisStateOptions): Promise<StateStore> {
  const redis = redisFromUrl(options.url) as Client & Scripts;
  redis.defineCommand('swTouch', { numberOfKeys: 1, lua: TOUCH });
  redis.defineCommand('swHit', { numberOfKeys: 1, lua: HIT });
  redis.on('error', () => {}); // ioredis reconnects by itself; requests fail meanwhile and say why.
  const subscriber = redisFromUrl(options.url, 'subscriber');
  subscriber.on('error', () => {});
  try {
    await Promise.all([redis.ping(), subscriber.ping()]);
    await requireRedis7(redis, options.url);
  } catch (error) {
    redis.disconnect();
    subscriber.disconnect();
    throw error;
  }
  const durable = options.durable;
  const replicaWait =
    durable && durable.replicas > 0 && !(redis instanceof Cluster)
      ? new ReplicaWait({
          wait: (replicas, timeoutMs) => (redis as Redis).wait(replicas, timeoutMs).then(Number),
          replicas: durable.replicas,
          timeoutMs: durable.timeoutMs,
          pauseMs: SHORT_WAIT_PAUSE_MS,
          onShort: durable.onShort,
        })
      : undefined;
  const replicated: Replicated = replicaWait ? () => replicaWait.replicated() : notReplicated;
  const store: StateStore = {
    kind: 'redis',
    sessions: new RedisSessions(redis, replicated),
    hashes: new RedisHashes(redis, durable?.hashPrefixes, replicated),
    keys: new RedisKeys(redis),
    bus: new RedisBus(redis, subscriber),
    sessionsInMemory: () => null,
    nearCacheStats: () => null,
    async ping() {
      await redis.ping();
    },
    async close() {
      await Promise.all([redis.quit().catch(() => {}), subscriber.quit().catch(() => {})]);
      // A Sentinel client's failover detector keeps its own connections to the sentinels: gone too.
      redis.disconnect();
      subscriber.disconnect();
    },
  };
  const backend = options.observe ? timedStore(store, options.observe) : store;
  return options.nearCache ? nearCached(backend, options.url, options.nearCache, options.observe) : backend;
}
