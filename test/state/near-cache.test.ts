/**
 * The near cache against its faults, on a real redis-server and a real PostgreSQL: two stores
 * stand for two servers. Each test cuts the cache's invalidation connection (CLIENT KILL, or the
 * LISTEN backend terminated), changes the value while announcements are lost, and then finds no
 * stale answer: the cache was emptied and reads went to the store until it could trust it again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createPostgresState } from '../../src/state/postgres.ts';
import { createRedisState } from '../../src/state/redis.ts';
import type { StateStore } from '../../src/state/types.ts';
import type { UserId } from '../../src/kernel/ids.ts';
import { SessionManager } from '../../src/accounts/session-manager.ts';
import { freshDatabase } from '../support/postgres.ts';
import { startRedisServer, type RedisServerHandle } from '../support/redis.ts';
import { sessionRecord, unique } from '../support/sessions.ts';
import { waitFor } from '../support/wait.ts';

const NEAR_CACHE = { maxEntries: 1000, hashPrefixes: ['cached:'] };

const session = sessionRecord;

interface Backend {
  name: string;
  open(): Promise<{ a: StateStore; b: StateStore; cut(): Promise<void>; close(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'redis (CLIENT KILL of the invalidation connections)',
    async open() {
      const server: RedisServerHandle = await startRedisServer();
      const a = await createRedisState({ url: server.url, nearCache: NEAR_CACHE });
      const b = await createRedisState({ url: server.url, nearCache: NEAR_CACHE });
      const admin = new Redis(server.url);
      return {
        a,
        b,
        // Every subscribed connection: the caches' invalidation channels (and the buses).
        cut: async () => void (await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')),
        async close() {
          await Promise.all([a.close(), b.close()]);
          admin.disconnect();
          await server.stop();
        },
      };
    },
  },
  {
    name: 'postgres (the LISTEN connections terminated)',
    async open() {
      const url = await freshDatabase();
      const a = await createPostgresState({ connectionString: url, nearCache: NEAR_CACHE });
      const b = await createPostgresState({ connectionString: url, nearCache: NEAR_CACHE });
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      return {
        a,
        b,
        cut: async () =>
          void (await admin.query(
            `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE application_name = 'statewise-listener' AND datname = current_database()`,
          )),
        async close() {
          await Promise.all([a.close(), b.close()]);
          await admin.end();
        },
      };
    },
  },
];

for (const backend of backends) {
  describe(`near cache, ${backend.name}`, () => {
    let a: StateStore;
    let b: StateStore;
    let cut: () => Promise<void>;
    let close: () => Promise<void>;
    before(async () => {
      ({ a, b, cut, close } = await backend.open());
    });
    after(() => close());

    const stats = (store: StateStore) => store.nearCacheStats()!;

    it('serves repeat reads from memory, and drops an entry when another server changes it', async () => {
      const s = session();
      await a.sessions.create(s, 60_000);
      const before = stats(b);
      for (let i = 0; i < 10; i++) assert.deepEqual(await b.sessions.get(s.id), s);
      assert.ok(stats(b).hits - before.hits >= 9, 'nine of ten reads are hits');
      await a.sessions.destroy(s.id);
      await waitFor(async () => (await b.sessions.get(s.id)) === null, { what: 'destroy heard', timeoutMs: 1000 });
    });

    it('a logout, a logout everywhere and a revocation are heard by every server before they answer', async () => {
      // 50 rounds of each: a single miss is a stale answer, which a race shows only now and then.
      for (let round = 0; round < 50; round++) {
        const [one, two] = [session(), session()];
        const other = session({ userId: one.userId });
        await Promise.all([one, two, other].map((s) => a.sessions.create(s, 60_000)));
        const key = `cached:${unique('generation')}`;
        await a.hashes.set(key, 'generation', '1', 60_000);
        for (let i = 0; i < 2; i++) {
          await Promise.all([one, two, other].map((s) => b.sessions.get(s.id)));
          await b.hashes.getAll(key);
        }
        await a.sessions.destroy(two.id);
        assert.equal(await b.sessions.get(two.id), null, `round ${round}: the logged-out session`);
        await a.sessions.destroyByUser(one.userId!);
        assert.equal(await b.sessions.get(other.id), null, `round ${round}: logged out everywhere`);
        await a.hashes.set(key, 'generation', '2', 60_000);
        assert.deepEqual(await b.hashes.getAll(key), { generation: '2' }, `round ${round}: the revocation`);
      }
    });

    it("a busy session's activity does not keep emptying other servers' entries: one touch per interval", async () => {
      // Activity is written at most every idleMs / 20 (3 s here); each write empties every server's entry.
      const policy = { idleMs: 60_000, absoluteMs: 600_000, bindUserAgent: false };
      const onA = new SessionManager(a.sessions, policy);
      const onB = new SessionManager(b.sessions, policy);
      const started = await onA.start({ id: unique('user') as UserId, username: 'busy' }, 'agent');
      assert.equal((await onB.resolve(started.token, 'agent')).kind, 'ok');
      const misses = stats(b).misses;
      // Requests alternate between the two servers, as a round-robin balancer sends them.
      for (let i = 0; i < 50; i++) {
        assert.equal((await onA.resolve(started.token, 'agent')).kind, 'ok');
        assert.equal((await onB.resolve(started.token, 'agent')).kind, 'ok');
      }
      const reread = stats(b).misses - misses;
      assert.ok(reread <= 1, `the other server read the session from the store ${reread} times in 50 requests`);
    });

    it('loses its invalidation connection while a value changes: no stale answer once it hears again', async () => {
      const s = session();
      const key = unique('cached:gen');
      await a.sessions.create(s, 60_000);
      await a.hashes.incrBy(key, 'gen', 1, 60_000);
      for (let i = 0; i < 3; i++) {
        assert.deepEqual(await b.sessions.get(s.id), s);
        assert.deepEqual(await b.hashes.getAll(key), { gen: '1' });
      }
      assert.ok(stats(b).size >= 2, 'both values are cached');
      const flushes = stats(b).flushes;

      // Reads keep going all through the cut, as a server's requests would. Before the cache learns
      // of the cut it may still answer the old values; but once a read has seen a new value, no
      // later one may go back to the old.
      let reading = true;
      const reads = (async () => {
        const seen: Array<[number | undefined, string | undefined]> = [];
        while (reading) {
          const [session, hash] = await Promise.all([b.sessions.get(s.id), b.hashes.getAll(key)]);
          seen.push([session?.lastSeenAt, hash.gen]);
          // Cache hits settle without I/O: yield, or this loop would starve the connections.
          await new Promise((resolve) => setImmediate(resolve));
        }
        return seen;
      })();

      await cut();
      // The changes whose announcements may be lost with the connection.
      await a.sessions.touch(s.id, s.lastSeenAt + 1000, 60_000);
      await a.hashes.incrBy(key, 'gen', 1, 60_000);
      await waitFor(() => stats(b).flushes > flushes && stats(b).live, {
        what: 'the cache emptied, and listening again',
        timeoutMs: 10_000,
      });
      reading = false;
      const seen = await reads;
      assert.ok(seen.length > 0);
      for (let i = 1; i < seen.length; i++) {
        const [[touchedBefore, genBefore], [touched, gen]] = [seen[i - 1]!, seen[i]!];
        assert.ok(touched! >= touchedBefore!, `read ${i}: the session went back to an older touch`);
        assert.ok(Number(gen) >= Number(genBefore), `read ${i}: the counter went back from ${genBefore} to ${gen}`);
      }

      for (let i = 0; i < 20; i++) {
        assert.equal((await b.sessions.get(s.id))?.lastSeenAt, s.lastSeenAt + 1000, 'the touch made during the cut');
        assert.deepEqual(await b.hashes.getAll(key), { gen: '2' }, 'the increment made during the cut');
      }
      // And it caches again, and hears again.
      assert.ok(stats(b).size >= 2);
      await a.hashes.incrBy(key, 'gen', 1, 60_000);
      await waitFor(async () => (await b.hashes.getAll(key)).gen === '3', { what: 'heard after', timeoutMs: 1000 });
    });

    it('a cached session is refused at its idle expiry and at its absolute expiry', async () => {
      const idlePolicy = { idleMs: 1500, absoluteMs: 60_000, bindUserAgent: false };
      const idle = new SessionManager(b.sessions, idlePolicy);
      const started = await new SessionManager(a.sessions, idlePolicy).start(
        { id: unique('user') as UserId, username: 'idle' },
        'agent',
      );
      const hits = stats(b).hits;
      for (let i = 0; i < 3; i++) assert.equal((await idle.resolve(started.token, 'agent')).kind, 'ok');
      assert.ok(stats(b).hits > hits, 'the session is served from the cache');
      // No activity (any resolve would be activity) until its idle time is over.
      const lastSeen = (await b.sessions.get(started.session.id))!.lastSeenAt;
      await waitFor(() => Date.now() >= lastSeen + 1500, { what: 'idle time over', timeoutMs: 5000 });
      assert.equal((await idle.resolve(started.token, 'agent')).kind, 'none');

      // Activity every 50 ms keeps it from idling, but not past its absolute end.
      const policy = { idleMs: 60_000, absoluteMs: 600, bindUserAgent: false };
      const brief = await new SessionManager(a.sessions, policy).start(
        { id: unique('user') as UserId, username: 'brief' },
        'agent',
      );
      const reader = new SessionManager(b.sessions, policy);
      await waitFor(
        async () => {
          const outcome = await reader.resolve(brief.token, 'agent');
          if (outcome.kind === 'ok') assert.ok(Date.now() < brief.session.absoluteExpiresAt);
          return outcome.kind === 'none';
        },
        { what: 'absolute expiry', timeoutMs: 5000, intervalMs: 50 },
      );
      assert.ok(Date.now() >= brief.session.absoluteExpiresAt);
    });
  });
}
