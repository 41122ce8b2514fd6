/**
 * The HTTP half of the chat in process (app.inject) over every session-state backend, two servers
 * each: rooms, the gapless per-room seq under concurrent sends on both servers, idempotent sends by
 * clientMsgId, history paging, read marks and unread counts (records: the same on every server),
 * presence, the bus wake-up, and bad input that stores nothing.
 *
 * Users talk through bearer tokens, which any server verifies on its own: the same user on both
 * servers even on the memory store (where a session cookie lives on one server only).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startApps, statusOf, STORES, type InjectResult, type TestApps, type TestServer } from '../support/app.ts';
import type { ApiClient } from '../../src/client/api-client.ts';
import { newUsername, PASSWORD } from '../security/backends.ts';
import { waitFor } from '../support/wait.ts';
import { createPool } from '../../src/records/pool.ts';
import type pg from 'pg';
import type { ChatMessage } from '../../src/chat/types.ts';
import type { UserId } from '../../src/kernel/ids.ts';

/** A signed-in user who can talk to any server. */
interface User {
  username: string;
  /** The typed client, on `server`. */
  api(server: TestServer): ApiClient;
  /** Raw, for what the schema refuses on purpose (every use is marked `// raw:`). */
  get(server: TestServer, url: string): Promise<InjectResult>;
  post(server: TestServer, url: string, json?: unknown): Promise<InjectResult>;
}

async function signUp(server: TestServer, prefix = 'chat'): Promise<User> {
  const username = newUsername(prefix);
  const browser = server.client();
  const registered = await browser.api.POST('/api/auth/register', { body: { username, password: PASSWORD } });
  assert.equal(registered.response.status, 201);
  const token = await server.client().api.POST('/api/auth/token', { body: { username, password: PASSWORD } });
  assert.equal(token.response.status, 200);
  const authorization = `Bearer ${token.data!.accessToken}`;
  return {
    username,
    api: (s) => s.client().apiWith({ authorization }),
    get: (s, url) => s.client().get(url, { authorization }),
    post: (s, url, json) => s.client().post(url, json, { authorization }),
  };
}

for (const store of STORES) {
  describe(`chat on ${store}`, () => {
    let apps: TestApps;
    let s1: TestServer;
    let s2: TestServer;
    let alice: User;
    let bob: User;
    let db: pg.Pool;
    const rowsIn = async (roomId: string) =>
      Number((await db.query('SELECT count(*) FROM chat_messages WHERE room_id = $1', [roomId])).rows[0].count);
    /** A user as Chat.send takes its author (for sends straight to a server's Chat, batched together). */
    const authorOf = async (user: User) => {
      const { rows } = await db.query<{ id: UserId }>('SELECT id FROM users WHERE username = $1', [user.username]);
      return { userId: rows[0]!.id, username: user.username };
    };
    const createRoom = (user: User, server: TestServer, name: string) =>
      user.api(server).POST('/api/chat/rooms', { body: { name } });
    const rooms = async (user: User, server: TestServer) => (await user.api(server).GET('/api/chat/rooms')).data!.rooms;
    const newRoom = async (name = `room-${randomUUID()}`) => {
      const r = await createRoom(alice, s1, name);
      assert.equal(r.response.status, 201);
      return r.data!.room;
    };
    const send = (user: User, server: TestServer, id: string, text: string, clientMsgId: string) =>
      user.api(server).POST('/api/chat/rooms/{id}/messages', { params: { path: { id } }, body: { text, clientMsgId } });
    const history = (user: User, server: TestServer, id: string, query: { after?: string; limit?: string } = {}) =>
      user.api(server).GET('/api/chat/rooms/{id}/messages', { params: { path: { id }, query } });

    before(async () => {
      apps = await startApps({ store, servers: 2 });
      [s1, s2] = apps.servers as [TestServer, TestServer];
      db = createPool(apps.databaseUrl, { max: 2 });
      [alice, bob] = await Promise.all([signUp(s1, 'alice'), signUp(s2, 'bob')]);
    });
    after(async () => {
      await db?.end();
      await apps?.close();
    });

    it('creates and lists rooms; a taken name is 409 on any server', async () => {
      const name = `general ${randomUUID()}`;
      const created = await createRoom(alice, s1, name);
      assert.equal(created.response.status, 201);
      const room = created.data!.room;
      assert.equal(room.name, name);
      assert.equal(room.lastSeq, 0);
      assert.match(room.id, /^[0-9a-f-]{36}$/);
      const listed = await bob.api(s2).GET('/api/chat/rooms');
      assert.equal(listed.response.status, 200);
      assert.deepEqual(
        listed.data!.rooms.find((r) => r.id === room.id),
        room,
      );
      const again = await createRoom(bob, s2, name);
      assert.equal(again.response.status, 409);
      assert.equal(again.error?.error.code, 'conflict');
      const count = Number((await db.query('SELECT count(*) FROM chat_rooms WHERE name = $1', [name])).rows[0].count);
      assert.equal(count, 1);
    });

    it('refuses bad room names and stores none', async () => {
      const before = (await rooms(alice, s1)).length;
      for (const body of [
        { name: '' },
        { name: 'x'.repeat(65) },
        { name: 'a\nb' },
        { name: 'tab\there' },
        { name: 'del\u007f' },
        { name: 'ok', extra: 1 },
        {},
        { name: 5 },
      ]) {
        const r = await alice.post(s1, '/api/chat/rooms', body); // raw: bodies the schema refuses
        assert.equal(r.status, 400, JSON.stringify(body));
      }
      const tooLong = { name: 'y'.repeat(64) + randomUUID() };
      assert.equal((await alice.post(s1, '/api/chat/rooms', tooLong)).status, 400); // raw: over the schema's maxLength
      assert.equal((await rooms(alice, s1)).length, before);
    });

    it('refuses a room name that shows nothing or passes for another, saying why; look-alikes of a taken name are 409', async () => {
      const before = (await rooms(alice, s1)).length;
      const refused: Array<[string, RegExp]> = [
        ['   ', /visible character/],
        ['\u200b\u200b', /visible character/],
        ['\u3164', /visible character/],
        ['news\u200b', /invisible/],
        ['\u202eevil', /invisible/],
        ['G\u0435neral', /mix Latin and Cyrillic/], // a Cyrillic е
        ['\u03bfpen', /mix Latin and Greek/], // a Greek ο
        ['\ufdfa'.repeat(4), /at most 64/], // one character each, 18 once folded (NFKC)
      ];
      for (const [name, why] of refused) {
        const r = await createRoom(alice, s1, name);
        assert.equal(r.response.status, 400, JSON.stringify(name));
        assert.equal(r.error?.error.code, 'invalid_input');
        assert.match(r.error!.error.message, why, JSON.stringify(name));
      }
      assert.equal((await rooms(alice, s1)).length, before, 'none stored');

      const tag = randomUUID().slice(0, 8);
      const created = await createRoom(alice, s1, `  Lobby   ${tag} `);
      assert.equal(created.response.status, 201);
      assert.equal(created.data?.room.name, `Lobby ${tag}`, 'ends trimmed, inner spaces made one');
      const fullWidth = [...`lobby ${tag}`]
        .map((c) => (c === ' ' ? '\u3000' : String.fromCodePoint(c.codePointAt(0)! + 0xfee0)))
        .join('');
      for (const name of [`lobby ${tag}`, `LOBBY ${tag}`, fullWidth]) {
        const r = await createRoom(bob, s2, name);
        assert.equal(r.response.status, 409, JSON.stringify(name));
        assert.match(r.error!.error.message, new RegExp(`"Lobby ${tag}" exists already`));
      }
      assert.equal(await statusOf(createRoom(alice, s1, `Москва ${Date.now()}`)), 201, 'one script');
      assert.equal(await statusOf(createRoom(alice, s1, `👩\u200d💻 ${tag}`)), 201, 'emoji joiner');
      const emoji = `${'🍕'.repeat(55)} ${tag}`; // 64 characters, 119 UTF-16 units
      assert.equal(await statusOf(createRoom(alice, s1, emoji)), 201, '64 characters, emoji among them');
    });

    it('200 concurrent sends over 2 servers get seqs 1..200, no gap, no duplicate, history in order', async () => {
      const room = await newRoom();
      const sent = await Promise.all(
        Array.from({ length: 200 }, (_, i) => {
          const user = i % 3 === 0 ? bob : alice;
          return send(user, i % 2 === 0 ? s1 : s2, room.id, `message ${i}`, `c-${i}`);
        }),
      );
      for (const r of sent) assert.equal(r.response.status, 201, JSON.stringify(r.error));
      const messages = sent.map((r) => r.data!.message);
      const seqs = messages.map((m) => m.seq).sort((a, b) => a - b);
      assert.deepEqual(
        seqs,
        Array.from({ length: 200 }, (_, i) => i + 1),
      );
      const stored = await history(bob, s2, room.id, { limit: '200' });
      assert.equal(stored.response.status, 200);
      assert.deepEqual(
        stored.data!.messages,
        [...messages].sort((a, b) => a.seq - b.seq),
      );
      for (const [i, message] of messages.entries()) {
        assert.equal(message.text, `message ${i}`);
        assert.equal(message.author, i % 3 === 0 ? bob.username : alice.username);
      }
      const listed = (await rooms(alice, s1)).find((r) => r.id === room.id);
      assert.equal(listed?.lastSeq, 200);
      assert.equal(await rowsIn(room.id), 200);
    });

    it('the same clientMsgId again is the same message (same seq), one row, also sent to both servers at once', async () => {
      const room = await newRoom();
      const first = await send(alice, s1, room.id, 'hello', 'same-1');
      const second = await send(alice, s2, room.id, 'hello', 'same-1');
      assert.equal(first.response.status, 201);
      assert.equal(second.response.status, 201);
      assert.deepEqual(second.data!.message, first.data!.message);
      assert.equal(first.data!.message.seq, 1);

      // Twenty rounds of an identical pair sent to both servers at once.
      for (let round = 0; round < 20; round++) {
        const race = (server: TestServer) => send(alice, server, room.id, `race ${round}`, `race-${round}`);
        const [a, b] = await Promise.all([race(s1), race(s2)]);
        assert.equal(a.response.status, 201, JSON.stringify(a.error));
        assert.equal(b.response.status, 201, JSON.stringify(b.error));
        assert.deepEqual(a.data!.message, b.data!.message);
        assert.equal(a.data!.message.seq, round + 2, 'a resend consumes no seq');
      }
      // Another author may use the same clientMsgId: another message.
      const other = await send(bob, s2, room.id, 'hello', 'same-1');
      assert.equal(other.response.status, 201);
      assert.equal(other.data!.message.seq, 22);
      assert.equal(await rowsIn(room.id), 22);
      const seqs = (await history(alice, s1, room.id, { limit: '200' })).data!.messages.map((m) => m.seq);
      assert.deepEqual(
        seqs,
        Array.from({ length: 22 }, (_, i) => i + 1),
      );
    });

    it('stores the sends to a room one server gets at once as one batch: gapless distinct seqs, each idempotent by clientMsgId', async () => {
      const [room, other] = [await newRoom(), await newRoom()];
      const [a, b] = [await authorOf(alice), await authorOf(bob)];
      const stored = await s1.app.chat.send(room.id, a, 'b-0', 'stored before');
      // Called in one turn of the event loop: one batch per room (the first send of a turn waits for the turn's end).
      const chat = s1.app.chat;
      const settled = await Promise.allSettled([
        chat.send(room.id, a, 'b-1', 'one'),
        chat.send(room.id, a, 'b-0', 'a resend of a stored message'),
        chat.send(room.id, a, 'b-2', 'two'),
        chat.send(room.id, a, 'b-1', 'one, sent twice in the same batch'),
        chat.send(other.id, a, 'b-1', 'the same clientMsgId in another room'),
        chat.send(room.id, b, 'b-1', 'the same clientMsgId from another author'),
        chat.send(randomUUID(), a, 'b-3', 'to a room that does not exist'),
        chat.send(room.id, a, 'b-4', 'x'.repeat(4001)), // Over the CHECK: it fails alone.
      ]);
      const [one, resend, two, twice, elsewhere, fromBob, nowhere, tooLong] = settled;
      const ok = (r: (typeof settled)[number]) => {
        assert.equal(r.status, 'fulfilled', r.status === 'rejected' ? String(r.reason) : '');
        return (r as PromiseFulfilledResult<Awaited<ReturnType<typeof chat.send>>>).value;
      };
      assert.deepEqual(
        [one, two, fromBob].map((r) => [ok(r).created, ok(r).message.seq, ok(r).message.text]),
        [
          [true, 2, 'one'],
          [true, 3, 'two'],
          [true, 4, 'the same clientMsgId from another author'],
        ],
      );
      assert.deepEqual(ok(resend), { message: stored.message, created: false });
      assert.deepEqual(ok(twice), { message: ok(one).message, created: false });
      assert.deepEqual([ok(elsewhere).created, ok(elsewhere).message.seq], [true, 1]);
      assert.equal(nowhere.status, 'rejected');
      assert.equal((nowhere as PromiseRejectedResult).reason.code, 'not_found');
      assert.equal(tooLong.status, 'rejected');
      const messages = (await history(alice, s2, room.id)).data!.messages;
      assert.deepEqual(
        messages,
        [stored, one, two, fromBob].map((r) => ('status' in r ? ok(r).message : r.message)),
      );
      assert.equal(await rowsIn(room.id), 4);
      // And again, all of it: every send is now a resend, nothing new is stored.
      const again = await Promise.all([chat.send(room.id, a, 'b-1', 'one'), chat.send(room.id, a, 'b-2', 'two')]);
      assert.deepEqual(
        again.map((r) => [r.created, r.message.seq]),
        [
          [false, 2],
          [false, 3],
        ],
      );
      assert.equal(await rowsIn(room.id), 4);
    });

    it('batches of two servers over the same rooms, asked in any order, never deadlock nor leave a gap', async () => {
      const rooms = await Promise.all([newRoom(), newRoom(), newRoom()]);
      const author = await authorOf(alice);
      const ROUNDS = 20;
      for (let round = 0; round < ROUNDS; round++) {
        // s1 asks for the rooms in one order, s2 in the other: their batches want the same row locks.
        const sends = [s1, s2].flatMap((server, i) =>
          (i === 0 ? rooms : [...rooms].reverse()).map((room) =>
            server.app.chat.send(room.id, author, `r${round}-s${i}`, `round ${round}`),
          ),
        );
        for (const r of await Promise.all(sends)) assert.equal(r.created, true);
      }
      for (const room of rooms) {
        const seqs = (await history(alice, s1, room.id, { limit: '200' })).data!.messages.map((m) => m.seq);
        assert.deepEqual(
          seqs,
          Array.from({ length: 2 * ROUNDS }, (_, i) => i + 1),
        );
      }
    });

    it('wakes the other servers for every message of a batch, in seq order', async () => {
      const room = await newRoom();
      const listener = store === 'memory' ? s1 : s2;
      const heard: number[] = [];
      const unsubscribe = await listener.services.state.bus.subscribe(`chat:${room.id}`, (raw) => {
        const signal = JSON.parse(raw) as { k: string; message: ChatMessage; earlier?: ChatMessage[] };
        // Every message rides along (a batch's earlier ones in `earlier`), in seq order.
        if (signal.k === 'msg') heard.push(...[...(signal.earlier ?? []), signal.message].map((m) => m.seq));
      });
      try {
        const author = await authorOf(alice);
        await Promise.all(Array.from({ length: 5 }, (_, i) => s1.app.chat.send(room.id, author, `w${i}`, `${i}`)));
        await waitFor(() => heard.length >= 5, { what: 'five wake-ups' });
        assert.deepEqual(heard, [1, 2, 3, 4, 5]);
      } finally {
        await unsubscribe();
      }
    });

    it('pages history with after and limit', async () => {
      const room = await newRoom();
      const url = `/api/chat/rooms/${room.id}/messages`;
      for (let i = 1; i <= 7; i++)
        assert.equal(await statusOf(send(alice, i % 2 ? s1 : s2, room.id, `m${i}`, `p${i}`)), 201);
      const page = async (query: { after?: string; limit?: string } = {}) => {
        const r = await history(bob, s2, room.id, query);
        assert.equal(r.response.status, 200, JSON.stringify(r.error));
        return r.data!.messages.map((m) => `${m.seq}:${m.text}`);
      };
      assert.deepEqual(await page(), ['1:m1', '2:m2', '3:m3', '4:m4', '5:m5', '6:m6', '7:m7']);
      assert.deepEqual(await page({ after: '0', limit: '3' }), ['1:m1', '2:m2', '3:m3']);
      assert.deepEqual(await page({ after: '3', limit: '3' }), ['4:m4', '5:m5', '6:m6']);
      assert.deepEqual(await page({ after: '6', limit: '3' }), ['7:m7']);
      assert.deepEqual(await page({ after: '7' }), []);
      assert.deepEqual(await page({ after: '100' }), []);
      for (const bad of ['?limit=0', '?limit=201', '?limit=x', '?after=-1', '?after=1.5', '?after=a&limit=2']) {
        const refused = await bob.get(s2, `${url}${bad}`); // raw: queries the schema refuses
        assert.equal(refused.status, 400, bad);
        assert.doesNotMatch(refused.body.error.message, /pattern|\^|\$/, 'said in words, not as a regular expression');
      }
      assert.equal(
        (await bob.get(s2, `${url}?limit=0`)).body.error.message, // raw: a limit the schema refuses
        'querystring.limit is not valid: at most this many messages, 1 to 200; default 50.',
      );
      assert.equal(
        (await bob.get(s2, '/api/chat/rooms/nope/messages')).body.error.message, // raw: a room id the schema refuses
        'params.id is not valid: a room id (uuid).',
      );
      // The default limit is 50.
      const big = await newRoom();
      await Promise.all(Array.from({ length: 60 }, (_, i) => send(alice, s1, big.id, `b${i}`, `b${i}`)));
      const first = (await history(alice, s1, big.id)).data!.messages;
      assert.equal(first.length, 50);
      assert.equal(first[49]!.seq, 50);
      assert.equal((await history(alice, s1, big.id, { after: '50' })).data!.messages.length, 10);
    });

    it('read marks are records: marked through server 1, the same unread counts through server 2', async () => {
      const room = await newRoom();
      const quiet = await newRoom();
      for (let i = 1; i <= 5; i++) assert.equal(await statusOf(send(alice, s1, room.id, `u${i}`, `u${i}`)), 201);
      const unread = async (server: TestServer, user = bob) => {
        const r = await user.api(server).GET('/api/chat/unread');
        assert.equal(r.response.status, 200);
        return r.data!.rooms;
      };
      assert.equal((await unread(s2))[room.id], 5, 'nothing read: every message counts');
      assert.equal((await unread(s2))[quiet.id], 0, 'rooms with nothing unread are listed with 0');
      const read = (server: TestServer, seq: number, id = room.id) =>
        statusOf(bob.api(server).POST('/api/chat/rooms/{id}/read', { params: { path: { id } }, body: { seq } }));
      assert.equal(await read(s1, 3), 204);
      assert.equal((await unread(s2))[room.id], 2);
      assert.equal((await unread(s1))[room.id], 2);
      assert.equal(await read(s2, 1), 204);
      assert.equal((await unread(s1))[room.id], 2, 'a read mark never moves backwards');
      assert.equal(await statusOf(send(alice, s2, room.id, 'u6', 'u6')), 201);
      assert.equal((await unread(s2))[room.id], 3);
      assert.equal(await read(s1, 1000), 204);
      assert.equal((await unread(s2))[room.id], 0, "beyond the room's last seq reads up to it");
      const stored = await db.query('SELECT last_read_seq FROM chat_reads WHERE room_id = $1', [room.id]);
      assert.deepEqual(
        stored.rows.map((r) => Number(r.last_read_seq)),
        [6],
      );
      assert.equal((await unread(s1))[room.id], 0);
      assert.equal(await read(s1, 1, randomUUID()), 404);
      for (const body of [{}, { seq: -1 }, { seq: 1.5 }, { seq: '1' }, { seq: 1, extra: true }]) {
        const refused = await bob.post(s1, `/api/chat/rooms/${room.id}/read`, body); // raw: bodies the schema refuses
        assert.equal(refused.status, 400, JSON.stringify(body));
      }
      assert.equal((await unread(s1, alice))[room.id], 6, 'marks are per user');
    });

    it('refuses bad messages and stores nothing', async () => {
      const room = await newRoom();
      const url = `/api/chat/rooms/${room.id}/messages`;
      const bad: Array<[string, unknown, number]> = [
        [url, { text: '', clientMsgId: 'x1' }, 400],
        [url, { text: 'x'.repeat(4001), clientMsgId: 'x2' }, 400],
        [url, { text: 'hi' }, 400],
        [url, { clientMsgId: 'x3' }, 400],
        [url, { text: 'hi', clientMsgId: '' }, 400],
        [url, { text: 'hi', clientMsgId: 'has space' }, 400],
        [url, { text: 'hi', clientMsgId: 'é' }, 400],
        [url, { text: 'hi', clientMsgId: 'k'.repeat(65) }, 400],
        [url, { text: 'hi', clientMsgId: 'x4', extra: 1 }, 400],
        [url, { text: 5, clientMsgId: 'x5' }, 400],
        [url, { text: 'nul\u0000', clientMsgId: 'x6' }, 400],
        [url, { text: ' \n\t\u3000', clientMsgId: 'x10' }, 400],
        [url, { text: '\u200b\u2060', clientMsgId: 'x11' }, 400],
        ['/api/chat/rooms/not-a-uuid/messages', { text: 'hi', clientMsgId: 'x7' }, 400],
        [`/api/chat/rooms/urn:uuid:${room.id}/messages`, { text: 'hi', clientMsgId: 'x8' }, 400],
      ];
      for (const [path, body, status] of bad) {
        const r = await alice.post(s1, path, body); // raw: bodies and room ids the schema refuses
        assert.equal(r.status, status, `${path} ${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
      }
      const nowhere = await send(alice, s1, randomUUID(), 'hi', 'x9');
      assert.equal(nowhere.response.status, 404, JSON.stringify(nowhere.error));
      assert.equal(await rowsIn(room.id), 0);
      assert.equal(await statusOf(history(alice, s1, randomUUID())), 404);
      assert.equal((await alice.get(s1, '/api/chat/rooms/nope/messages')).status, 400); // raw: a room id the schema refuses
      const listed = (await rooms(alice, s1)).find((r) => r.id === room.id);
      assert.equal(listed?.lastSeq, 0, 'a refused message takes no seq');
      const blank = await alice.post(s1, url, { text: '   ', clientMsgId: 'x12' }); // raw: a text the schema refuses
      assert.equal(
        blank.body.error.message,
        'body.text is not valid: 1 to 4000 characters, at least one of them visible (not only spaces).',
      );
      const longest = await send(alice, s2, room.id, 'x'.repeat(4000), '!~');
      assert.equal(longest.response.status, 201);
      assert.equal(longest.data!.message.seq, 1);
    });

    it('every route wants a signed-in user', async () => {
      const room = await newRoom();
      const anonymous = s2.client().api;
      const path = { path: { id: room.id } };
      for (const [route, call] of [
        ['GET /api/chat/rooms', () => anonymous.GET('/api/chat/rooms')],
        ['POST /api/chat/rooms', () => anonymous.POST('/api/chat/rooms', { body: { name: 'anon' } })],
        ['GET messages', () => anonymous.GET('/api/chat/rooms/{id}/messages', { params: path })],
        [
          'POST messages',
          () =>
            anonymous.POST('/api/chat/rooms/{id}/messages', {
              params: path,
              body: { text: 'hi', clientMsgId: 'anon' },
            }),
        ],
        ['POST read', () => anonymous.POST('/api/chat/rooms/{id}/read', { params: path, body: { seq: 1 } })],
        ['GET /api/chat/unread', () => anonymous.GET('/api/chat/unread')],
        ['GET presence', () => anonymous.GET('/api/chat/rooms/{id}/presence', { params: path })],
      ] as const) {
        assert.equal(await statusOf(call()), 401, route);
      }
      assert.equal(await rowsIn(room.id), 0);
    });

    it('answers presence from session state: live marks only, each user once whatever the servers', async () => {
      const room = await newRoom();
      const presence = (server: TestServer, id = room.id) =>
        bob.api(server).GET('/api/chat/rooms/{id}/presence', { params: { path: { id } } });
      assert.deepEqual((await presence(s1)).data, { online: [] });
      const now = Date.now();
      const key = `presence:${room.id}`;
      await s1.services.state.hashes.set(key, `${alice.username}@s1`, String(now + 60_000));
      await s1.services.state.hashes.set(key, `${alice.username}@s2`, String(now + 60_000));
      await s1.services.state.hashes.set(key, 'gone_user@s1', String(now - 1));
      // Memory: each server has its own session state, so ask the server that holds it.
      const asked = store === 'memory' ? s1 : s2;
      assert.deepEqual((await presence(asked)).data, { online: [alice.username] });
      assert.equal(await statusOf(presence(s1, randomUUID())), 404);
      assert.equal((await bob.get(s1, '/api/chat/rooms/x/presence')).status, 400); // raw: a room id the schema refuses
    });

    it('publishes a wake-up on the bus after a message commits, the message riding along', async () => {
      const room = await newRoom();
      const listener = store === 'memory' ? s1 : s2;
      const heard: string[] = [];
      const unsubscribe = await listener.services.state.bus.subscribe(`chat:${room.id}`, (m) => heard.push(m));
      try {
        assert.equal(await statusOf(send(alice, s1, room.id, 'wake', 'w1')), 201);
        assert.equal(await statusOf(send(alice, s1, room.id, 'wake', 'w2')), 201);
        await waitFor(() => heard.length >= 2, { what: 'two chat wake-ups' });
        const signals = heard.map((m) => JSON.parse(m) as { k: string; seq: number; message: { text: string } });
        assert.deepEqual(
          signals.map((s) => [s.k, s.seq, s.message.text]),
          [
            ['msg', 1, 'wake'],
            ['msg', 2, 'wake'],
          ],
        );
      } finally {
        await unsubscribe();
      }
    });
  });
}
