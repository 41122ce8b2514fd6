/**
 * One contract, three backends: the same cases run against memory, postgres and redis, on a real
 * PostgreSQL and a real redis-server. A backend that passes can carry the domain code unchanged.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { createMemoryState } from '../../src/state/memory.ts';
import { createPostgresState } from '../../src/state/postgres.ts';
import { createRedisState } from '../../src/state/redis.ts';
import type { NearCacheOptions } from '../../src/state/near-cache/cached-store.ts';
import type { SessionRecord, StateStore, StoreKind } from '../../src/state/types.ts';
import type { UserId } from '../../src/kernel/ids.ts';
import { freshDatabase } from '../support/postgres.ts';
import { startRedisServer } from '../support/redis.ts';
import { startRedisCluster } from '../support/redis-cluster.ts';
import { sessionRecord, unique } from '../support/sessions.ts';
import { waitFor } from '../support/wait.ts';

interface Backend {
  /** A store, and a second independent client of the same backend (the same one for memory). */
  stores: [StateStore, StateStore];
  url?: string;
  cleanup(): Promise<void>;
}

/** Each shared store runs the contract twice: read directly, and through each server's near cache. */
const NEAR_CACHE = { maxEntries: 1000, hashPrefixes: ['cached:'] };

const backends: Record<string, () => Promise<Backend>> = {
  async memory() {
    const store = createMemoryState();
    return { stores: [store, store], cleanup: () => store.close() };
  },
  postgres: () => postgresBackend(),
  'postgres with near cache': () => postgresBackend(NEAR_CACHE),
  redis: () => redisBackend(),
  'redis with near cache': () => redisBackend(NEAR_CACHE),
  'redis cluster (three primaries)': async () => {
    const cluster = await startRedisCluster();
    // The near cache is asked for and declined: on Cluster the store is read directly.
    const a = await createRedisState({ url: cluster.url, nearCache: NEAR_CACHE });
    const b = await createRedisState({ url: cluster.url, nearCache: NEAR_CACHE });
    return {
      stores: [a, b],
      url: cluster.url,
      cleanup: async () => {
        await Promise.all([a.close(), b.close()]);
        await cluster.stop();
      },
    };
  },
};

async function postgresBackend(nearCache?: NearCacheOptions): Promise<Backend> {
  const url = await freshDatabase();
  const a = await createPostgresState({ connectionString: url, nearCache });
  const b = await createPostgresState({ connectionString: url, nearCache });
  return { stores: [a, b], url, cleanup: async () => void (await Promise.all([a.close(), b.close()])) };
}

async function redisBackend(nearCache?: NearCacheOptions): Promise<Backend> {
  const server = await startRedisServer();
  const a = await createRedisState({ url: server.url, nearCache });
  const b = await createRedisState({ url: server.url, nearCache });
  return {
    stores: [a, b],
    url: server.url,
    cleanup: async () => {
      await Promise.all([a.close(), b.close()]);
      await server.stop();
    },
  };
}

const session = (overrides: Partial<SessionRecord> = {}) => sessionRecord({ userId: 'user-1' as UserId, ...overrides });

for (const name of Object.keys(backends)) {
  const kind = name.split(' ')[0] as StoreKind;
  describe(`state contract: ${name}`, () => {
    let backend: Backend;
    let store: StateStore;
    let other: StateStore;
    before(async () => {
      backend = await backends[name]!();
      [store, other] = backend.stores;
    });
    after(() => backend.cleanup());

    it('reports its kind and answers ping', async () => {
      assert.equal(store.kind, kind);
      await store.ping();
    });

    describe('sessions', () => {
      it('create, get from another client, destroy', async () => {
        const s = session();
        await store.sessions.create(s, 60_000);
        assert.deepEqual(await other.sessions.get(s.id), s);
        assert.equal(await other.sessions.destroy(s.id), true);
        assert.equal(await store.sessions.get(s.id), null);
        assert.equal(await store.sessions.destroy(s.id), false);
      });

      // With a near cache the other client hears of a write within milliseconds, not in the same
      // instant: its reads are awaited with a deadline; the writer's own reads are exact at once.
      it('a session both clients have read: a touch, then a destroy by one is seen by the other', async () => {
        const s = session();
        await store.sessions.create(s, 60_000);
        for (let i = 0; i < 3; i++) {
          assert.deepEqual(await other.sessions.get(s.id), s);
          assert.deepEqual(await store.sessions.get(s.id), s);
        }
        assert.equal(await store.sessions.touch(s.id, s.lastSeenAt + 7, 60_000), true);
        assert.equal((await store.sessions.get(s.id))?.lastSeenAt, s.lastSeenAt + 7);
        await waitFor(async () => (await other.sessions.get(s.id))?.lastSeenAt === s.lastSeenAt + 7, {
          what: 'the touch seen by the other client',
          timeoutMs: 1000,
        });
        assert.equal(await store.sessions.destroy(s.id), true);
        assert.equal(await store.sessions.get(s.id), null);
        await waitFor(async () => (await other.sessions.get(s.id)) === null, {
          what: 'the destroy seen by the other client',
          timeoutMs: 1000,
        });
      });

      it('keeps a visitor session without a user', async () => {
        const s = session({ userId: null, username: null });
        await store.sessions.create(s, 60_000);
        assert.deepEqual(await store.sessions.get(s.id), s);
      });

      it('expires after the idle TTL, and touch extends it', async () => {
        const s = session();
        await store.sessions.create(s, 300);
        assert.equal(await store.sessions.touch(s.id, s.lastSeenAt + 5, 60_000), true);
        assert.equal((await other.sessions.get(s.id))?.lastSeenAt, s.lastSeenAt + 5);
        const short = session();
        await store.sessions.create(short, 150);
        await waitFor(async () => (await store.sessions.get(short.id)) === null, { what: 'idle expiry' });
        assert.equal(await store.sessions.touch(short.id, Date.now(), 60_000), false, 'a gone session is not revived');
        assert.equal(await store.sessions.get(short.id), null);
        assert.notEqual(await store.sessions.get(s.id), null, 'the touched one lives on');
      });

      it('lists a user’s live sessions oldest first and destroys them all', async () => {
        const userId = unique('user') as UserId;
        const first = session({ userId, createdAt: 1000 });
        const second = session({ userId, createdAt: 2000 });
        const gone = session({ userId, createdAt: 1500 });
        const stranger = session({ userId: unique('user') as UserId });
        for (const s of [second, first, gone, stranger]) await store.sessions.create(s, 60_000);
        await store.sessions.destroy(gone.id);
        assert.deepEqual(
          (await other.sessions.listByUser(userId)).map((s) => s.id),
          [first.id, second.id],
        );
        assert.equal(await other.sessions.destroyByUser(userId), 2);
        assert.deepEqual(await store.sessions.listByUser(userId), []);
        assert.equal(await store.sessions.get(first.id), null);
        assert.notEqual(await store.sessions.get(stranger.id), null, 'other users are untouched');
      });

      it('leaves expired sessions out of the listing', async () => {
        const userId = unique('user') as UserId;
        const live = session({ userId });
        const brief = session({ userId });
        await store.sessions.create(live, 60_000);
        await store.sessions.create(brief, 100);
        await waitFor(async () => (await store.sessions.listByUser(userId)).length === 1, {
          what: 'expired session to leave the list',
        });
        assert.equal((await store.sessions.listByUser(userId))[0]?.id, live.id);
      });
    });

    describe('hashes', () => {
      it('a hash both clients have read (a near-cached prefix too): every write is seen by the other', async () => {
        const sorted = (fields: Record<string, string>) => JSON.stringify(Object.entries(fields).sort());
        const seen = (client: StateStore, key: string, fields: Record<string, string>) =>
          waitFor(async () => sorted(await client.hashes.getAll(key)) === sorted(fields), {
            what: `${key} = ${JSON.stringify(fields)}`,
            timeoutMs: 1000,
          });
        for (const key of [unique('plain'), unique('cached:')]) {
          assert.deepEqual(await other.hashes.getAll(key), {});
          assert.deepEqual(await store.hashes.getAll(key), {});
          assert.equal(await store.hashes.incrBy(key, 'gen', 1, 60_000), 1);
          assert.deepEqual(await store.hashes.getAll(key), { gen: '1' });
          await seen(other, key, { gen: '1' });
          await other.hashes.set(key, 'x', 'y');
          await seen(store, key, { gen: '1', x: 'y' });
          await store.hashes.delete(key);
          await seen(other, key, {});
        }
      });

      it('a cached hash is not answered past its TTL', async () => {
        const key = unique('cached:');
        await store.hashes.incrBy(key, 'gen', 1, 200);
        assert.deepEqual(await other.hashes.getAll(key), { gen: '1' });
        await waitFor(async () => Object.keys(await other.hashes.getAll(key)).length === 0, { what: 'hash expiry' });
      });

      it('increments, sets and deletes single fields, seen by another client', async () => {
        const key = unique('cart');
        assert.equal(await store.hashes.incrBy(key, 'margherita', 2), 2);
        assert.equal(await other.hashes.incrBy(key, 'margherita', 3), 5);
        assert.equal(await store.hashes.incrBy(key, 'margherita', -1), 4);
        await other.hashes.set(key, 'note', 'no onions');
        assert.deepEqual(await store.hashes.getAll(key), { margherita: '4', note: 'no onions' });
        assert.equal(await store.hashes.deleteField(key, 'note'), true);
        assert.equal(await store.hashes.deleteField(key, 'note'), false);
        assert.deepEqual(await other.hashes.getAll(key), { margherita: '4' });
        await store.hashes.delete(key);
        assert.deepEqual(await other.hashes.getAll(key), {});
        assert.deepEqual(await store.hashes.getAll(unique('never')), {});
      });

      it('expires the whole key after its TTL; every write renews it', async () => {
        const key = unique('cart');
        await store.hashes.incrBy(key, 'a', 1, 200);
        await store.hashes.set(key, 'b', 'x', 60_000);
        const brief = unique('cart');
        await store.hashes.incrBy(brief, 'a', 1, 150);
        await store.hashes.set(brief, 'b', 'x', 150);
        await waitFor(async () => Object.keys(await store.hashes.getAll(brief)).length === 0, { what: 'hash expiry' });
        assert.equal(await store.hashes.incrBy(brief, 'a', 1, 60_000), 1, 'an expired key starts afresh');
        assert.deepEqual(await store.hashes.getAll(brief), { a: '1' });
        assert.deepEqual(await store.hashes.getAll(key), { a: '1', b: 'x' }, 'the renewed key lives on');
      });

      it('increments and reads the whole hash back in one step, each answer a state that existed', async () => {
        const key = unique('cart');
        await other.hashes.set(key, 'note', 'no onions', 60_000);
        assert.deepEqual(await store.hashes.incrByAndGetAll(key, 'a', 2, 60_000), {
          value: 2,
          fields: { a: '2', note: 'no onions' },
        });
        assert.deepEqual(await other.hashes.incrByAndGetAll(key, 'a', -1), {
          value: 1,
          fields: { a: '1', note: 'no onions' },
        });
        // Concurrent: every answer shows its own increment already applied, and the answers are all different.
        const answers = await Promise.all(
          Array.from({ length: 40 }, (_, i) => (i % 2 ? store : other).hashes.incrByAndGetAll(key, 'b', 1, 60_000)),
        );
        for (const { value, fields } of answers) assert.equal(fields.b, String(value));
        assert.deepEqual(
          answers.map((a) => a.value).sort((x, y) => x - y),
          Array.from({ length: 40 }, (_, i) => i + 1),
        );
        const brief = unique('cart');
        await store.hashes.incrByAndGetAll(brief, 'a', 5, 150);
        await waitFor(async () => Object.keys(await store.hashes.getAll(brief)).length === 0, { what: 'hash expiry' });
        assert.deepEqual(await store.hashes.incrByAndGetAll(brief, 'a', 1, 60_000), { value: 1, fields: { a: '1' } });
      });

      it('loses no concurrent increment on one field or on two fields of one key', async () => {
        const key = unique('cart');
        await Promise.all(
          Array.from({ length: 100 }, (_, i) =>
            (i % 2 ? store : other).hashes.incrBy(key, i % 4 < 2 ? 'a' : 'b', 1, 60_000),
          ),
        );
        assert.deepEqual(await store.hashes.getAll(key), { a: '50', b: '50' });
      });
    });

    describe('keys', () => {
      it('set, get, setIfAbsent, delete', async () => {
        const key = unique('k');
        assert.equal(await store.keys.get(key), null);
        assert.equal(await store.keys.setIfAbsent(key, 'first', 60_000), true);
        assert.equal(await other.keys.setIfAbsent(key, 'second', 60_000), false);
        assert.equal(await other.keys.get(key), 'first');
        await other.keys.set(key, 'third', 60_000);
        assert.equal(await store.keys.get(key), 'third');
        assert.equal(await store.keys.delete(key), true);
        assert.equal(await store.keys.delete(key), false);
        assert.equal(await other.keys.get(key), null);
      });

      it('expires values; setIfAbsent succeeds once a value expired', async () => {
        const key = unique('k');
        await store.keys.set(key, 'v', 120);
        await waitFor(async () => (await store.keys.get(key)) === null, { what: 'key expiry' });
        assert.equal(await other.keys.setIfAbsent(key, 'again', 60_000), true);
        assert.equal(await store.keys.get(key), 'again');
      });

      it('hit counts in a fixed window shared by every client, then starts a new one', async () => {
        const key = unique('rl');
        const first = await store.keys.hit(key, 300);
        assert.equal(first.count, 1);
        assert.ok(first.resetInMs > 0 && first.resetInMs <= 300, `resetInMs ${first.resetInMs}`);
        assert.equal((await other.keys.hit(key, 300)).count, 2);
        const third = await store.keys.hit(key, 300);
        assert.equal(third.count, 3);
        assert.ok(third.resetInMs <= first.resetInMs, 'a later hit does not extend the window');
        await waitFor(async () => (await store.keys.hit(unique('probe'), 1)) && (await store.keys.get(key)) === null, {
          what: 'window end',
        });
        assert.equal((await other.keys.hit(key, 300)).count, 1);
      });
    });

    describe('bus', () => {
      it('delivers to subscribers of the channel, and stops after unsubscribe', async () => {
        const channel = unique('room');
        const received: string[] = [];
        const unsubscribe = await other.bus.subscribe(channel, (m) => received.push(m));
        const elsewhere: string[] = [];
        await other.bus.subscribe(unique('elsewhere'), (m) => elsewhere.push(m));
        await store.bus.publish(channel, 'hello');
        await store.bus.publish(channel, 'world');
        await waitFor(() => received.length === 2, { what: 'two messages' });
        assert.deepEqual(received, ['hello', 'world']);
        await unsubscribe();
        await store.bus.publish(channel, 'unheard');
        const marker = unique('marker');
        const markers: string[] = [];
        await other.bus.subscribe(marker, (m) => markers.push(m));
        await store.bus.publish(marker, 'done');
        await waitFor(() => markers.length === 1, { what: 'the marker after the unheard message' });
        assert.deepEqual(received, ['hello', 'world']);
        assert.deepEqual(elsewhere, []);
      });
    });

    if (kind !== 'memory') {
      it('200 concurrent increments of one field from 3 processes end exact', async () => {
        const key = unique('shared');
        const counts = [67, 67, 66];
        const workers = counts.map((count) => {
          const child = spawn(
            process.execPath,
            ['--import', 'tsx', 'test/state/increment-worker.ts', kind, backend.url!, key, String(count)],
            { stdio: ['ignore', 'pipe', 'inherit'] },
          );
          let out = '';
          child.stdout.on('data', (c: Buffer) => (out += c.toString()));
          return once(child, 'exit').then(([code]) => ({ code, out }));
        });
        const results = await Promise.all(workers);
        assert.deepEqual(
          results.map((r) => r.code),
          [0, 0, 0],
          results.map((r) => r.out).join('\n'),
        );
        assert.deepEqual(await store.hashes.getAll(key), { n: '200' });
      });
    }
  });
}
