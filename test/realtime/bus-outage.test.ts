/**
 * The bus is a wake-up, never the truth: when it fails during traffic (postgres: every LISTEN
 * connection cut; redis: redis-server stopped, then started again on its port), delivery between
 * servers resumes by itself and the gap is filled from the records. A subscriber on s2 of a room
 * that s1 writes to gets every message once and in order, across the outage.
 */
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { PASSWORD } from '../security/backends.ts';
import { startApps, statusOf, type TestApps, type TestServer } from '../support/app.ts';
import { cookieHeaders, listen, LiveSocket, signedIn } from '../support/live.ts';
import { startRedisServer, type RedisServerHandle } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const MESSAGES = 120;

for (const store of ['postgres', 'redis'] as const) {
  describe(`the chat across a bus outage, ${store} store`, () => {
    let apps: TestApps;
    let redis: RedisServerHandle | undefined;
    let redisDir: string;
    let s1: TestServer;
    let s2: TestServer;

    before(async () => {
      if (store === 'redis') {
        redisDir = await mkdtemp(join(tmpdir(), 'statewise-bus-redis-'));
        redis = await startRedisServer({ dir: redisDir });
      }
      apps = await startApps({ store, servers: 2, redisUrl: redis?.url });
      [s1, s2] = apps.servers as [TestServer, TestServer];
    });
    after(async () => {
      await apps?.close();
      await redis?.stop();
    });

    /** Cuts the bus of both servers, and gives it back (redis: the same server, its data kept on disk). */
    async function outage(): Promise<void> {
      if (store === 'postgres') {
        const admin = new pg.Client(apps.databaseUrl);
        await admin.connect();
        try {
          const { rowCount } = await admin.query(
            `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = 'statewise-listener' AND datname = current_database()`,
          );
          assert.equal(rowCount, 2, "both servers' LISTEN connections cut");
        } finally {
          await admin.end();
        }
        return;
      }
      const port = redis!.port;
      await redis!.stop();
      redis = await startRedisServer({ dir: redisDir, port });
    }

    it('resumes delivery by itself and fills the gap', async () => {
      const alice = await signedIn(s1, 'alice');
      const bob = await signedIn(s2, 'bob');
      const credentials = { username: alice.username, password: PASSWORD };
      const token = (await s1.client().api.POST('/api/auth/token', { body: credentials })).data!.accessToken;
      const room = (await alice.browser.api.POST('/api/chat/rooms', { body: { name: `outage-${store}` } })).data!.room
        .id;
      const url = `${await listen(s2)}/ws`;
      const watcher = await LiveSocket.open(url, cookieHeaders(bob.browser));
      // s2's own bus, beside the edge: it must carry wake-ups again after the outage.
      const heard: number[] = [];
      const stopHearing = await s2.services.state.bus.subscribe(`chat:${room}`, (raw) => {
        const signal = JSON.parse(raw) as { k: string; seq?: number };
        if (signal.k === 'msg') heard.push(signal.seq!);
      });
      try {
        await watcher.subscribe(room, 0);

        // Alice writes through s1, each message until it is stored (during the outage a request
        // may fail: the same clientMsgId again is the same message).
        const sendAll = async (from: number, to: number) => {
          for (let i = from; i <= to; i++) {
            const send = () =>
              s1
                .client()
                .apiWith({ authorization: `Bearer ${token}` })
                .POST('/api/chat/rooms/{id}/messages', {
                  params: { path: { id: room } },
                  body: { text: `m${i}`, clientMsgId: `m${i}` },
                });
            await waitFor(async () => (await statusOf(send())) === 201, {
              what: `message ${i} stored`,
              timeoutMs: 30_000,
              intervalMs: 50,
            });
          }
        };
        await sendAll(1, MESSAGES / 3);
        await waitFor(() => watcher.messages(room).length === MESSAGES / 3, { what: 'the first third delivered' });
        await outage();
        // The first message right after: its wake-up may well be lost (the bus is reconnecting), and no
        // later one comes to reveal the gap: the edge must find it in the records by itself.
        await sendAll(MESSAGES / 3 + 1, MESSAGES / 3 + 1);
        await waitFor(() => watcher.messages(room).length === MESSAGES / 3 + 1, { what: 'the lone message delivered' });
        await sendAll(MESSAGES / 3 + 2, MESSAGES);
        await waitFor(() => watcher.messages(room).length >= MESSAGES, {
          what: 'every message delivered',
          timeoutMs: 20_000,
        });
        assert.deepEqual(
          watcher.messages(room).map((m) => m.seq),
          Array.from({ length: MESSAGES }, (_, i) => i + 1),
          'once each, in order, across the outage',
        );
        assert.equal(watcher.closed, undefined, 'the socket stayed open');
        await waitFor(() => heard.includes(MESSAGES), { what: 'the bus to carry wake-ups again' });
      } finally {
        await stopHearing();
        watcher.ws.terminate();
      }
    });
  });
}
