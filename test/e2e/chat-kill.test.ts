/**
 * The chat survives a server's SIGKILL (the fault the anchors lose: Socket.IO's recovery dies with
 * the server). Three servers behind the balancer of `npm start`; 30 clients (the shipped ChatClient)
 * spread over them by the pin header, each in the 3 rooms, each sending 50 messages; one server is
 * SIGKILLed half way. Its clients reconnect through the balancer, resubscribe with their last seq and
 * send again what was not acknowledged. At the end every client's history of every room equals the
 * database's: no gap, no duplicate, one order; every acknowledged message is stored exactly once.
 * And presence: the users of the dead server go offline within 15 s, unless they came back.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { WebSocket } from 'ws';
import { ChatClient, type Message, type SocketLike } from '../../src/realtime/client.ts';
import { PASSWORD } from '../security/backends.ts';
import { startCluster, type Cluster } from '../support/cluster.ts';
import { Browser } from '../support/http.ts';
import { LiveSocket } from '../support/live.ts';
import { waitFor } from '../support/wait.ts';

const CLIENTS = 30;
const MESSAGES = 50;
const PIN = 'x-statewise-server';

interface Member {
  username: string;
  token: string;
  client: ChatClient;
  /** room -> messages as this client saw them (after its own dedupe by seq). */
  seen: Map<string, Message[]>;
  /** Messages whose send was acknowledged. */
  acked: Message[];
  reconnects: number;
}

for (const store of ['postgres', 'redis'] as const) {
  describe(`chat across a SIGKILL, ${store} store`, () => {
    let cluster: Cluster;
    let db: pg.Pool;
    const wsBase = () => cluster.url.replace(/^http/, 'ws');

    before(async () => {
      cluster = await startCluster({
        servers: 3,
        store,
        env: { SW_LOGIN_LIMIT: '100000', SW_LOGIN_IP_LIMIT: '100000' },
      });
      db = new pg.Pool({ connectionString: cluster.databaseUrl, max: 2 });
    });
    after(async () => {
      await db?.end();
      await cluster?.stop();
    });

    async function newUser(prefix: string): Promise<{ username: string; token: string }> {
      const username = `${prefix}_${store}_${Math.random().toString(36).slice(2, 8)}`;
      const browser = new Browser(cluster.url);
      const body = { username, password: PASSWORD };
      assert.equal((await browser.api.POST('/api/auth/register', { body })).response.status, 201);
      const token = await browser.api.POST('/api/auth/token', { body });
      assert.equal(token.response.status, 200);
      return { username, token: token.data!.accessToken };
    }

    /** A ChatClient pinned to `server` for its first connection; later ones go where the balancer sends them. */
    function clientOn(server: string, token: string): ChatClient {
      let connects = 0;
      return new ChatClient({
        url: `${wsBase()}/ws?access_token=${token}`,
        open: (url) =>
          new WebSocket(url, { headers: connects++ === 0 ? { [PIN]: server } : {} }) as unknown as SocketLike,
        minDelayMs: 50,
        maxDelayMs: 1_000,
      });
    }

    it('loses no acknowledged message and gives every client the same gapless history', async () => {
      const ownerUser = await newUser('owner');
      const owner = new Browser(cluster.url).apiWith({ authorization: `Bearer ${ownerUser.token}` });
      const rooms: string[] = [];
      for (let r = 0; r < 3; r++) {
        const created = await owner.POST('/api/chat/rooms', { body: { name: `kill-${store}-${r}-${Date.now()}` } });
        assert.equal(created.response.status, 201);
        rooms.push(created.data!.room.id);
      }

      const members: Member[] = [];
      for (let i = 0; i < CLIENTS; i++) {
        const { username, token } = await newUser(`m${i}`);
        const client = clientOn(`s${(i % 3) + 1}`, token);
        const member: Member = {
          username,
          token,
          client,
          seen: new Map(rooms.map((r) => [r, []])),
          acked: [],
          reconnects: 0,
        };
        client.on('message', (room, message) => member.seen.get(room)!.push(message));
        client.on('status', (status) => void (status === 'reconnecting' && member.reconnects++));
        client.connect();
        for (const room of rooms) client.subscribe(room, 0);
        members.push(member);
      }
      try {
        await checkKill(rooms, members);
      } finally {
        for (const member of members) member.client.close();
      }
    });

    async function checkKill(rooms: string[], members: Member[]): Promise<void> {
      await waitFor(() => members.every((m) => m.client.status === 'open'), { what: 'every client connected' });
      const onVictim = members.filter((_, i) => i % 3 === 1); // pinned to s2

      // Each client sends its 50 messages, about 12 a second (under the frame rate), not waiting for acks.
      const totalAcked = () => members.reduce((n, m) => n + m.acked.length, 0);
      const sending = members.map(async (member, i) => {
        const sends: Promise<void>[] = [];
        for (let k = 0; k < MESSAGES; k++) {
          const room = rooms[(i + k) % 3]!;
          sends.push(
            member.client
              .send(room, `${member.username} #${k}`, `${member.username}-${k}`)
              .then((m) => void member.acked.push(m)),
          );
          await new Promise((resolve) => setTimeout(resolve, 80)); // Pacing the load, not waiting for a condition.
        }
        await Promise.all(sends);
      });
      await waitFor(() => totalAcked() >= (CLIENTS * MESSAGES) / 2, {
        what: 'half the messages acknowledged',
        timeoutMs: 60_000,
      });
      await cluster.kill('s2');
      await Promise.all(sending);
      assert.ok(
        onVictim.every((m) => m.reconnects > 0),
        "the dead server's clients reconnected",
      );
      assert.ok(
        members.every((m, i) => i % 3 === 1 || m.reconnects === 0),
        'the others never had to',
      );
      assert.equal(totalAcked(), CLIENTS * MESSAGES, 'every send was acknowledged in the end');

      // The truth: the database.
      const stored = new Map<string, Array<{ seq: number; id: string }>>();
      for (const room of rooms) {
        const { rows } = await db.query<{ seq: string; id: string }>(
          'SELECT seq, id FROM chat_messages WHERE room_id = $1 ORDER BY seq',
          [room],
        );
        stored.set(
          room,
          rows.map((r) => ({ seq: Number(r.seq), id: r.id })),
        );
        assert.deepEqual(
          rows.map((r) => Number(r.seq)),
          Array.from({ length: rows.length }, (_, i) => i + 1),
          'gapless seqs',
        );
      }
      const total = [...stored.values()].reduce((n, rows) => n + rows.length, 0);
      assert.equal(total, CLIENTS * MESSAGES, 'each message stored exactly once');
      const storedIds = new Set([...stored.values()].flat().map((r) => r.id));
      for (const member of members)
        for (const m of member.acked) assert.ok(storedIds.has(m.id), 'an acknowledged message is stored');

      // Every client ends with every room's full history, in the database's order.
      await waitFor(
        () => members.every((m) => rooms.every((room) => m.seen.get(room)!.length === stored.get(room)!.length)),
        { what: 'every client to have every message', timeoutMs: 30_000 },
      );
      for (const member of members) {
        for (const room of rooms) {
          assert.deepEqual(
            member.seen.get(room)!.map((m) => [m.seq, m.id]),
            stored.get(room)!.map((r) => [r.seq, r.id]),
            `${member.username} in room ${room}`,
          );
        }
      }
    }

    it("takes a dead server's users offline within 15 s, and never the ones who reconnected elsewhere", async () => {
      const start = await cluster.controlApi.POST('/_cluster/servers/{id}/start', { params: { path: { id: 's2' } } });
      assert.equal(start.response.status, 202);
      await cluster.waitUntilUp('s2');
      const owner = await newUser('pres');
      const created = await new Browser(cluster.url)
        .apiWith({ authorization: `Bearer ${owner.token}` })
        .POST('/api/chat/rooms', { body: { name: `presence-${store}-${Date.now()}` } });
      const room = created.data!.room.id;
      const gone = await newUser('gone');
      const back = await newUser('back');
      const watcherUser = await newUser('watch');
      const open = (token: string, server: string) =>
        LiveSocket.open(`${wsBase()}/ws?access_token=${token}`, { [PIN]: server });
      const watcher = await open(watcherUser.token, 's1');
      const goneSocket = await open(gone.token, 's2');
      const returning = clientOn('s2', back.token).connect();
      try {
        returning.subscribe(room);
        await goneSocket.subscribe(room);
        await watcher.subscribe(room);
        const everyone = [gone.username, back.username, watcherUser.username].sort().join();
        await watcher.next((f) => f.type === 'presence' && f.online.join() === everyone, 'all three online');

        const killedAt = Date.now();
        const framesBefore = watcher.frames.length;
        await cluster.kill('s2');
        // `back` reconnects at once (elsewhere); `gone` does not. Presence must drop `gone` within 15 s.
        const withoutGone = [back.username, watcherUser.username].sort().join();
        await watcher.next((f) => f.type === 'presence' && f.online.join() === withoutGone, 'gone offline', 20_000);
        const tookMs = Date.now() - killedAt;
        assert.ok(tookMs <= 15_000, `offline after ${tookMs} ms`);
        const flickered = watcher.frames
          .slice(framesBefore)
          .filter((f) => f.type === 'presence' && !f.online.includes(back.username));
        assert.deepEqual(flickered, [], 'the user who reconnected never showed offline');
      } finally {
        returning.close();
        watcher.close();
        goneSocket.ws.terminate();
      }
    });
  });
}
