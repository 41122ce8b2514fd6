/**
 * Redis-specific session cases the contract suite cannot express: a failed index write, the
 * interleavings of a login with logout-all across two hash slots, the index TTL, the version check.
 * A real redis-server; a second raw client breaks keys and reads TTLs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { isRedis7OrNewer, redactRedisUrl, redisVersionFromInfo } from '../../src/state/redis-url.ts';
import { createRedisState } from '../../src/state/redis.ts';
import type { StateStore, UserId } from '../../src/state/types.ts';
import { sessionRecord, unique } from '../support/sessions.ts';
import { startRedisServer, type RedisServerHandle } from '../support/redis.ts';

const session = sessionRecord;

describe('redis sessions', () => {
  let server: RedisServerHandle;
  let store: StateStore;
  let raw: Redis;
  before(async () => {
    server = await startRedisServer();
    store = await createRedisState({ url: server.url });
    raw = new Redis(server.url, { maxRetriesPerRequest: 1, connectTimeout: 5_000 });
  });
  after(async () => {
    await Promise.all([store?.close(), raw?.quit().catch(() => {})]);
    await server?.stop();
  });

  it('a failed index write fails the login and leaves no session logout-all cannot find', async () => {
    const s = session();
    // The user's index is the wrong type: ZADD answers WRONGTYPE.
    await raw.set(`sw:u:{${s.userId}}`, 'not a sorted set');
    await assert.rejects(store.sessions.create(s, 60_000), /WRONGTYPE/);
    assert.equal(await store.sessions.get(s.id), null, 'no session that the index does not know');
    assert.equal(await raw.exists(`sw:s:{${s.id}}`), 0);
  });

  it('logout-all keeps the index entry of a login whose session is not written yet', async () => {
    // A login writes its index entry, then its session (two slots, two steps). Replay a logout-all
    // landing between the two: DUMP the session away, logout-all, RESTORE it as the late write.
    const s = session();
    await store.sessions.create(s, 60_000);
    const sessionKey = `sw:s:{${s.id}}`;
    const dumped = await raw.dumpBuffer(sessionKey);
    assert.ok(dumped);
    await raw.del(sessionKey);
    assert.equal(await store.sessions.destroyByUser(s.userId!), 0);
    await raw.restore(sessionKey, 60_000, dumped);
    assert.deepEqual(
      (await store.sessions.listByUser(s.userId!)).map((x) => x.id),
      [s.id],
      'the session that landed after logout-all is still listed',
    );
    assert.equal(await store.sessions.destroyByUser(s.userId!), 1, 'and the next logout-all finds it');
    assert.equal(await store.sessions.get(s.id), null);
  });

  it('listing keeps the index entry of a login whose session is not written yet', async () => {
    const s = session();
    await store.sessions.create(s, 60_000);
    const sessionKey = `sw:s:{${s.id}}`;
    const dumped = await raw.dumpBuffer(sessionKey);
    assert.ok(dumped);
    await raw.del(sessionKey);
    assert.deepEqual(await store.sessions.listByUser(s.userId!), []);
    await raw.restore(sessionKey, 60_000, dumped);
    assert.equal(await store.sessions.destroyByUser(s.userId!), 1);
  });

  it('prunes index entries long past their absolute expiry, keeps recent ones', async () => {
    const userId = unique('user') as UserId;
    const now = Date.now();
    // Sessions gone from Redis (idle expiry, or a session write that failed after its index entry).
    const old = session({ userId, createdAt: now - 7_200_000, absoluteExpiresAt: now - 3_600_000 });
    const recent = session({ userId });
    const live = session({ userId, createdAt: now - 1_000 });
    for (const s of [old, recent, live]) await store.sessions.create(s, 60_000);
    await raw.del(`sw:s:{${old.id}}`, `sw:s:{${recent.id}}`);
    const index = `sw:u:{${userId}}`;
    assert.deepEqual(
      (await store.sessions.listByUser(userId)).map((s) => s.id),
      [live.id],
    );
    assert.deepEqual((await raw.zrange(index, '0', '-1')).sort(), [recent.id, live.id].sort());
    assert.equal(await store.sessions.destroyByUser(userId), 1);
    assert.deepEqual(await raw.zrange(index, '0', '-1'), [recent.id], 'only the session it removed');
  });

  it('logout-all removes every session of the user; the index lives as long as the longest', async () => {
    const userId = unique('user') as UserId;
    const now = Date.now();
    const long = session({ userId, createdAt: now - 1, absoluteExpiresAt: now + 3_600_000 });
    const short = session({ userId, createdAt: now + 1, absoluteExpiresAt: now + 120_000 });
    const stranger = session();
    // The longer one first: the shorter one must not cut the index TTL down.
    for (const s of [long, short, stranger]) await store.sessions.create(s, 60_000);
    const pttl = await raw.pttl(`sw:u:{${userId}}`);
    assert.ok(pttl >= long.absoluteExpiresAt - Date.now(), `index PTTL ${pttl} ms outlives the longest session`);
    assert.deepEqual(
      (await store.sessions.listByUser(userId)).map((s) => s.id),
      [long.id, short.id],
    );
    assert.equal(await store.sessions.destroyByUser(userId), 2);
    assert.equal(await store.sessions.get(long.id), null);
    assert.equal(await store.sessions.get(short.id), null);
    assert.deepEqual(await store.sessions.listByUser(userId), []);
    assert.notEqual(await store.sessions.get(stranger.id), null, 'other users are untouched');
  });

  it('a visitor session has no index', async () => {
    const s = session({ userId: null, username: null });
    await store.sessions.create(s, 60_000);
    assert.deepEqual(await store.sessions.get(s.id), s);
    assert.equal(await store.sessions.destroy(s.id), true);
  });

  it('starts against the local redis-server (7.x)', async () => {
    const version = redisVersionFromInfo(await raw.info('server'));
    assert.ok(version && isRedis7OrNewer(version), `local redis-server is ${version}`);
    const second = await createRedisState({ url: server.url });
    await second.ping();
    await second.close();
  });
});

describe('redis version check', () => {
  it('needs Redis 7.0 or newer', () => {
    assert.equal(isRedis7OrNewer('6.2.14'), false);
    assert.equal(isRedis7OrNewer('6.0.0'), false);
    assert.equal(isRedis7OrNewer('5.0.14'), false);
    assert.equal(isRedis7OrNewer('7.0.15'), true);
    assert.equal(isRedis7OrNewer('7.0.0'), true);
    assert.equal(isRedis7OrNewer('7.2.4'), true);
    assert.equal(isRedis7OrNewer('10.0.0'), true);
    assert.equal(isRedis7OrNewer('255.255.255'), true, 'an unstable build');
    assert.equal(isRedis7OrNewer(''), false);
    assert.equal(isRedis7OrNewer('seven'), false);
  });

  it('reads redis_version from INFO server', () => {
    const info = '# Server\r\nredis_version:6.2.14\r\nredis_git_sha1:00000000\r\nredis_mode:standalone\r\n';
    assert.equal(redisVersionFromInfo(info), '6.2.14');
    assert.equal(redisVersionFromInfo('# Server\nredis_version:7.0.15\n'), '7.0.15');
    assert.equal(redisVersionFromInfo('# Server\r\nredis_mode:standalone\r\n'), null);
  });

  it('names the server without its password', () => {
    assert.equal(redactRedisUrl('redis://:s3cret@cache:6379/0'), 'redis://:***@cache:6379/0');
    assert.equal(redactRedisUrl('redis://app:s3cret@cache:6379'), 'redis://app:***@cache:6379');
    assert.equal(redactRedisUrl('redis+cluster://:pw@a:7000,b:7001'), 'redis+cluster://:***@a:7000,b:7001');
    assert.equal(redactRedisUrl('redis://cache:6379'), 'redis://cache:6379');
  });
});
