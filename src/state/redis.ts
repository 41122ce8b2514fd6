import type { Cluster, Redis } from 'ioredis';
import { redisFromUrl } from './redis-url.ts';
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

class RedisSessions implements SessionStore {
  constructor(private readonly redis: Client & Scripts) {}

  async create(s: SessionRecord, idleTtlMs: number): Promise<void> {
    const key = sessionKey(s.id);
    await this.redis
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
      .pexpire(key, idleTtlMs)
      .exec();
    if (s.userId) {
      const index = userKey(s.userId);
      // The index lives as long as the longest session in it could.
      await this.redis
        .multi()
        .zadd(index, s.createdAt, s.id)
        .pexpire(index, s.absoluteExpiresAt - Date.now(), 'GT')
        .exec();
      await this.redis.pexpire(index, s.absoluteExpiresAt - Date.now(), 'NX');
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
    const removed = await this.redis.del(sessionKey(id));
    if (session?.userId) await this.redis.zrem(userKey(session.userId), id);
    return removed === 1;
  }

  async listByUser(userId: UserId): Promise<SessionRecord[]> {
    const ids = await this.redis.zrange(userKey(userId), '0', '-1');
    const found = await Promise.all(ids.map(async (id) => toSession(await this.redis.hgetall(sessionKey(id)))));
    const gone = ids.filter((_, i) => found[i] === null);
    if (gone.length > 0) await this.redis.zrem(userKey(userId), ...gone);
    return found.filter((s): s is SessionRecord => s !== null);
  }

  async destroyByUser(userId: UserId): Promise<number> {
    const ids = await this.redis.zrange(userKey(userId), '0', '-1');
    const removed = await Promise.all(ids.map((id) => this.redis.del(sessionKey(id))));
    await this.redis.del(userKey(userId));
    return removed.reduce((sum, n) => sum + n, 0);
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
  constructor(private readonly redis: Client) {}

  async getAll(key: string): Promise<Record<string, string>> {
    return this.redis.hgetall(hashKey(key));
  }

  async incrBy(key: string, field: string, by: number, ttlMs?: number): Promise<number> {
    if (ttlMs === undefined) return this.redis.hincrby(hashKey(key), field, by);
    const [value] = await execAll(this.redis.multi().hincrby(hashKey(key), field, by).pexpire(hashKey(key), ttlMs));
    return Number(value);
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
    else await this.redis.multi().hset(hashKey(key), field, value).pexpire(hashKey(key), ttlMs).exec();
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

  constructor(
    private readonly publisher: Client,
    private readonly subscriber: Client,
  ) {
    subscriber.on('message', (channel: string, message: string) => {
      for (const handler of this.#handlers.get(channel) ?? []) handler(message);
    });
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

/** Session state in Redis (single, Sentinel or Cluster, by URL), with pub/sub as the bus. */
export async function createRedisState(options: { url: string }): Promise<StateStore> {
  const redis = redisFromUrl(options.url) as Client & Scripts;
  redis.defineCommand('swTouch', { numberOfKeys: 1, lua: TOUCH });
  redis.defineCommand('swHit', { numberOfKeys: 1, lua: HIT });
  redis.on('error', () => {}); // ioredis reconnects by itself; requests fail meanwhile and say why.
  const subscriber = redisFromUrl(options.url);
  subscriber.on('error', () => {});
  await Promise.all([redis.ping(), subscriber.ping()]);
  return {
    kind: 'redis',
    sessions: new RedisSessions(redis),
    hashes: new RedisHashes(redis),
    keys: new RedisKeys(redis),
    bus: new RedisBus(redis, subscriber),
    async ping() {
      await redis.ping();
    },
    async close() {
      await Promise.all([redis.quit().catch(() => {}), subscriber.quit().catch(() => {})]);
    },
  };
}
