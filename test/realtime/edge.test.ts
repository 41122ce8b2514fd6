/**
 * The live edge (`/ws`) over every backend, with real sockets to in-process servers: delivery once
 * and in order (sender included), idempotent resends, replay after a reconnect on another server,
 * authentication and origin at the upgrade, bad frames, typing, presence, unread across devices,
 * revocation, slow consumers, the frame rate, and (memory) the stateful design's island servers.
 * Crashes (SIGKILL) need processes: test/e2e/chat-kill.test.ts.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { BACKENDS, PASSWORD } from '../security/backends.ts';
import { startApps, statusOf, type InjectClient, type TestApps, type TestServer } from '../support/app.ts';
import { chatClient, cookieHeaders, listen, LiveSocket, signedIn, type Frame } from '../support/live.ts';
import { waitFor } from '../support/wait.ts';

type Paused = { _socket: { pause(): void; resume(): void } };

for (const backend of BACKENDS) {
  describe(`live chat on ${backend.name}`, () => {
    let apps: TestApps;
    let s1: TestServer;
    let s2: TestServer;
    const wsUrl = new Map<TestServer, string>();
    let alice: { username: string; browser: InjectClient };
    let bob: { username: string; browser: InjectClient };
    /** Where bob's session lives: any server when shared; on memory, the server he signed in on. */
    let bobHome: TestServer;
    const sockets: LiveSocket[] = [];
    /** The servers' log lines (info and above). */
    const logLines: Array<{ level: number; code?: string; msg: string }> = [];

    const open = async (server: TestServer, browser: InjectClient) => {
      const socket = await LiveSocket.open(`${wsUrl.get(server)}/ws`, cookieHeaders(browser));
      sockets.push(socket);
      return socket;
    };
    const newRoom = async () => {
      const r = await alice.browser.api.POST('/api/chat/rooms', { body: { name: `room-${randomUUID()}` } });
      assert.equal(r.response.status, 201);
      return r.data!.room.id;
    };
    /** The room's messages, as `browser` reads them over HTTP. */
    const history = async (browser: InjectClient, id: string, limit?: string) =>
      (await browser.api.GET('/api/chat/rooms/{id}/messages', { params: { path: { id }, query: { limit } } })).data!
        .messages;
    /** Posts a message over HTTP. */
    const post = (browser: InjectClient, id: string, text: string, clientMsgId: string) =>
      browser.api.POST('/api/chat/rooms/{id}/messages', { params: { path: { id } }, body: { text, clientMsgId } });
    /** An access token of `username` (a token sign-in). */
    const accessToken = async (username: string) => {
      const pair = await s1.client().api.POST('/api/auth/token', { body: { username, password: PASSWORD } });
      assert.equal(pair.response.status, 200);
      return pair.data!.accessToken;
    };
    const seqs = (frames: Frame[]) => frames.map((m) => m.seq as number);
    const acks = (socket: LiveSocket) => socket.frames.filter((f) => f.type === 'ack');

    before(async () => {
      apps = await startApps({
        ...backend.apps,
        servers: 2,
        env: { SW_WS_MAX_BUFFERED_BYTES: '16384', SW_PRESENCE_TTL_MS: '3000' },
        logTo: { write: (line: string) => logLines.push(JSON.parse(line)) },
      });
      [s1, s2] = apps.servers as [TestServer, TestServer];
      for (const server of apps.servers) wsUrl.set(server, await listen(server));
      bobHome = backend.shared ? s2 : s1;
      alice = await signedIn(s1, 'alice');
      bob = await signedIn(bobHome, 'bob');
    });
    after(async () => {
      for (const socket of sockets) socket.ws.terminate();
      await apps?.close();
    });

    it('delivers each message once and in order to every subscriber, the sender too, who also gets an ack', async () => {
      const room = await newRoom();
      const a = await open(s1, alice.browser);
      const b = await open(bobHome, bob.browser);
      assert.equal((await a.subscribe(room, 0)).lastSeq, 0);
      assert.equal((await b.subscribe(room, 0)).lastSeq, 0);
      for (let i = 1; i <= 20; i++) (i % 2 ? a : b).send({ type: 'send', room, text: `m${i}`, clientMsgId: `c${i}` });
      await waitFor(() => a.messages(room).length >= 20 && b.messages(room).length >= 20, { what: '20 messages each' });
      const expected = Array.from({ length: 20 }, (_, i) => i + 1);
      assert.deepEqual(seqs(a.messages(room)), expected);
      assert.deepEqual(seqs(b.messages(room)), expected);
      assert.deepEqual(
        a.messages(room).map((m) => m.text),
        b.messages(room).map((m) => m.text),
      );
      assert.equal(acks(a).length, 10);

      // The ack was lost, say: the same clientMsgId again is the same message, stored and delivered once.
      a.send({ type: 'send', room, text: 'm1', clientMsgId: 'c1' });
      const again = await a.next((f) => f.type === 'ack' && f.clientMsgId === 'c1', 'the second ack');
      assert.equal(again.message.seq, acks(a).find((f) => f.clientMsgId === 'c1')!.message.seq);
      a.send({ type: 'send', room, text: 'after', clientMsgId: 'c21' });
      await b.next((f) => f.type === 'message' && f.message.text === 'after', 'the next message');
      assert.deepEqual(seqs(b.messages(room)), [...expected, 21]);
      assert.equal((await history(alice.browser, room, '200')).length, 21);
    });

    it('replays what a reconnecting client missed, exactly once and in order, then live ones', async () => {
      const room = await newRoom();
      const a = await open(s1, alice.browser);
      await a.subscribe(room);
      const first = await open(bobHome, bob.browser);
      await first.subscribe(room, 0);
      a.send({ type: 'send', room, text: 'seen', clientMsgId: 'r0' });
      await first.next((f) => f.type === 'message', 'the first message');
      first.close();
      await first.waitClosed();
      for (let i = 1; i <= 5; i++) a.send({ type: 'send', room, text: `missed ${i}`, clientMsgId: `r${i}` });
      await waitFor(() => acks(a).length === 6, { what: 'six acks' });

      // Shared state: back on another server. Memory: the session only works where it was made.
      const back = await open(backend.shared ? s1 : bobHome, bob.browser);
      const subscribed = await back.subscribe(room, 1);
      assert.equal(subscribed.lastSeq, 6);
      assert.deepEqual(seqs(back.messages(room)), [2, 3, 4, 5, 6], 'the missed ones, before `subscribed`');
      a.send({ type: 'send', room, text: 'live', clientMsgId: 'r6' });
      await back.next((f) => f.type === 'message' && f.message.seq === 7, 'the live one');
      assert.deepEqual(seqs(back.messages(room)), [2, 3, 4, 5, 6, 7]);
    });

    it('lets in a session cookie or an access token, and refuses no credential (401) or another origin (403)', async () => {
      const url = `${wsUrl.get(s1)}/ws`;
      await assert.rejects(LiveSocket.open(url), /upgrade refused: 401 .*Sign in first/);
      const ended = { cookie: `sid=${'x'.repeat(43)}`, 'user-agent': alice.browser.userAgent };
      await assert.rejects(LiveSocket.open(url, ended), /upgrade refused: 401 .*Your session has ended/);
      await assert.rejects(
        LiveSocket.open(url, { ...cookieHeaders(alice.browser), origin: 'https://evil.example' }),
        /upgrade refused: 403/,
      );
      await assert.rejects(LiveSocket.open(`${url}?access_token=forged`), /upgrade refused: 401/);
      const viaToken = await LiveSocket.open(`${url}?access_token=${await accessToken(alice.username)}`);
      sockets.push(viaToken);
      assert.equal((await viaToken.subscribe(await newRoom())).type, 'subscribed');
      const sameOrigin = await LiveSocket.open(url, {
        ...cookieHeaders(alice.browser),
        origin: url.replace('ws', 'http'),
      });
      sockets.push(sameOrigin);
      // The 101 says who served it, as every answer does.
      const raw = new WebSocket(url, { headers: cookieHeaders(alice.browser) });
      const servedBy = await new Promise<unknown>((resolve, reject) => {
        raw.once('upgrade', (response) => resolve(response.headers['x-served-by']));
        raw.once('error', reject);
      });
      raw.terminate();
      assert.equal(servedBy, s1.id);
    });

    it('answers bad frames with an error frame, changes nothing, and closes only an oversized one (1009)', async () => {
      const room = await newRoom();
      const a = await open(s1, alice.browser);
      const cases: Array<[unknown, string]> = [
        ['{not json', 'invalid_json'],
        ['[1,2]', 'invalid_input'],
        ['"send"', 'invalid_input'],
        [{ type: 'shout', room }, 'invalid_input'],
        [{ type: 'send', room, text: '', clientMsgId: 'x' }, 'invalid_input'],
        [{ type: 'send', room, text: ' \u200b ', clientMsgId: 'x' }, 'invalid_input'],
        [{ type: 'send', room, text: 'x'.repeat(4001), clientMsgId: 'x' }, 'invalid_input'],
        [{ type: 'send', room, text: 'hi', clientMsgId: 'x', extra: 1 }, 'invalid_input'],
        [{ type: 'send', room: 'not-a-uuid', text: 'hi', clientMsgId: 'x' }, 'invalid_input'],
        [{ type: 'send', room: randomUUID(), text: 'hi', clientMsgId: 'x' }, 'not_found'],
        [{ type: 'subscribe', room: randomUUID() }, 'not_found'],
        [{ type: 'subscribe', room, after: -1 }, 'invalid_input'],
        [{ type: 'read', room, seq: 1.5 }, 'invalid_input'],
        [{ type: 'typing', room }, 'invalid_input'],
        [{ type: '__proto__' }, 'invalid_input'],
        [{ type: 'constructor' }, 'invalid_input'],
      ];
      for (const [frame, code] of cases) {
        a.send(frame);
        const error = await a.next((f) => f.type === 'error', `an error for ${JSON.stringify(frame).slice(0, 60)}`);
        assert.equal(error.code, code, JSON.stringify(frame).slice(0, 80));
        assert.equal(typeof error.message, 'string');
      }
      a.ws.send(Buffer.from([1, 2, 3]), { binary: true });
      assert.equal((await a.next((f) => f.type === 'error', 'binary refused')).code, 'invalid_input');
      assert.equal((await history(alice.browser, room)).length, 0);

      const big = await open(s1, alice.browser);
      big.send(JSON.stringify({ type: 'send', room, text: 'x'.repeat(70_000), clientMsgId: 'big' }));
      assert.equal((await big.waitClosed()).code, 1009);
      assert.equal((await a.subscribe(room)).type, 'subscribed', 'the other socket goes on');
      const logged = logLines.find((line) => line.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH');
      assert.equal(logged?.level, 30, 'a frame too big is the client’s doing: logged at info');
      assert.deepEqual(
        logLines.filter((line) => line.level >= 50),
        [],
        'no server error logged',
      );
    });

    it('takes the longest message in any JSON spelling, as HTTP does (4000 emoji as \\u escapes: 48 KB)', async () => {
      const room = await newRoom();
      const a = await open(s1, alice.browser);
      const text = '😀'.repeat(4000);
      const escaped = text.replace(/[\s\S]/g, (unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`);
      a.send(`{"type":"send","room":"${room}","text":"${escaped}","clientMsgId":"emoji"}`);
      const ack = await a.next((f) => f.type === 'ack' || f.type === 'error', 'the answer');
      assert.equal(ack.type, 'ack', JSON.stringify(ack).slice(0, 200));
      assert.equal(await statusOf(post(alice.browser, room, text, 'emoji-http')), 201);
      const stored = await history(alice.browser, room);
      assert.deepEqual(
        stored.map((m) => m.text === text),
        [true, true],
      );
    });

    it('shows typing to the others for about 5 s, and never replays it', async () => {
      const room = await newRoom();
      const a = await open(s1, alice.browser);
      const b = await open(bobHome, bob.browser);
      await a.subscribe(room);
      await b.subscribe(room);
      a.send({ type: 'typing', room });
      await b.next((f) => f.type === 'typing' && f.room === room && f.users.includes(alice.username), 'typing shown');
      const started = Date.now();
      await b.next((f) => f.type === 'typing' && f.users.length === 0, 'typing over');
      const lasted = Date.now() - started;
      assert.ok(lasted > 3_000 && lasted < 8_000, `typing lasted ${lasted} ms`);
      const late = await open(bobHome, bob.browser);
      await late.subscribe(room, 0);
      assert.equal(late.frames.filter((f) => f.type === 'typing').length, 0, 'typing is not replayed');
    });

    it("shows who is online as they join and leave; a subscriber's first presence counts itself", async () => {
      const room = await newRoom();
      const a = await open(s1, alice.browser);
      await a.subscribe(room);
      const first = await a.next((f) => f.type === 'presence', 'the first presence');
      assert.deepEqual(first.online, [alice.username], 'never an empty list first');
      const b = await open(bobHome, bob.browser);
      await b.subscribe(room);
      const both = [alice.username, bob.username].sort().join();
      const bobsFirst = await b.next((f) => f.type === 'presence', "bob's first presence");
      assert.equal(bobsFirst.online.join(), both);
      await a.next((f) => f.type === 'presence' && f.online.join() === both, 'both online');
      const presence = await alice.browser.api.GET('/api/chat/rooms/{id}/presence', { params: { path: { id: room } } });
      assert.equal(presence.data?.online.join(), both);
      b.close();
      await a.next((f) => f.type === 'presence' && f.online.join() === alice.username, 'bob gone');
    });

    it("updates the unread counts on a user's other device when one device reads", async () => {
      const room = await newRoom();
      const phone = await open(bobHome, bob.browser);
      const laptop = await open(backend.shared ? s1 : bobHome, bob.browser);
      const a = await open(s1, alice.browser);
      await a.subscribe(room);
      for (let i = 1; i <= 3; i++) a.send({ type: 'send', room, text: `u${i}`, clientMsgId: `u${i}` });
      await waitFor(() => acks(a).length === 3, { what: 'three acks' });
      phone.send({ type: 'read', room, seq: 2 });
      await laptop.next((f) => f.type === 'unread' && f.rooms[room] === 1, 'unread 1 on the laptop');
    });

    it('closes the sockets of a user who logs out, on every server, within 2 s', async () => {
      const carol = await signedIn(s1, 'carol');
      const here = await open(s1, carol.browser);
      const there = backend.shared ? await open(s2, carol.browser) : undefined;
      const started = Date.now();
      assert.equal(await statusOf(carol.browser.api.POST('/api/auth/logout')), 204);
      assert.equal((await here.waitClosed(2_000)).code, 4001);
      if (there) assert.equal((await there.waitClosed(2_000)).code, 4001);
      assert.ok(Date.now() - started < 2_000);
    });

    it("closes a revoked session's sockets, a logged-out token's, then all of a user's at log out everywhere, within 2 s", async () => {
      // Shared state: the other sockets live on the other server. Memory: sessions live where they were made.
      const there = backend.shared ? s2 : s1;
      const dave = await signedIn(s1, 'dave');
      const laptop = dave.browser;
      const phone = s1.client('statewise-phone/1.0');
      const login = phone.api.POST('/api/auth/login', { body: { username: dave.username, password: PASSWORD } });
      assert.equal(await statusOf(login), 200);
      const tokenSocket = async () => {
        const token = await accessToken(dave.username);
        const socket = await LiveSocket.open(`${wsUrl.get(there)}/ws?access_token=${token}`);
        sockets.push(socket);
        return { socket, bearer: { authorization: `Bearer ${token}` } };
      };
      /** A round trip on a socket that must have stayed open. */
      const stillOpen = async (socket: LiveSocket) =>
        assert.equal((await socket.subscribe(await newRoom())).type, 'subscribed');
      const onLaptop = await open(s1, laptop);
      const onPhone = await open(there, phone);
      const token = await tokenSocket();

      let started = Date.now();
      const sessions = await laptop.api.GET('/api/auth/sessions');
      const phoneSession = sessions.data!.sessions.find((s) => !s.current)!;
      const revoked = laptop.api.DELETE('/api/auth/sessions/{id}', { params: { path: { id: phoneSession.id } } });
      assert.equal(await statusOf(revoked), 204);
      assert.equal((await onPhone.waitClosed(2_000)).code, 4001);
      assert.ok(Date.now() - started < 2_000);
      await stillOpen(onLaptop);
      await stillOpen(token.socket);

      started = Date.now();
      assert.equal(await statusOf(s1.client().apiWith(token.bearer).POST('/api/auth/logout')), 204);
      assert.equal((await token.socket.waitClosed(2_000)).code, 4001);
      assert.ok(Date.now() - started < 2_000);
      await stillOpen(onLaptop);

      const second = await tokenSocket();
      started = Date.now();
      assert.equal(await statusOf(laptop.api.POST('/api/auth/logout-all')), 204);
      assert.equal((await onLaptop.waitClosed(2_000)).code, 4001);
      assert.equal((await second.socket.waitClosed(2_000)).code, 4001);
      assert.ok(Date.now() - started < 2_000);
    });

    it('closes a socket that stops reading (4008) without slowing the others; it resumes by seq', async () => {
      const room = await newRoom();
      const reader = await open(s1, alice.browser);
      const stalled = await open(s1, alice.browser);
      await reader.subscribe(room);
      await stalled.subscribe(room);
      (stalled.ws as unknown as Paused)._socket.pause(); // Kernel buffers fill, then the server's queue.
      const cutBefore = s1.app.realtime.closes(4008);
      const text = 'y'.repeat(4_000);
      let sent = 0;
      // Sent over HTTP (no frame rate to mind), in batches the reader keeps up with, until the server
      // closes the stalled socket.
      while (s1.app.realtime.closes(4008) === cutBefore && sent < 4_000) {
        const batch = Array.from({ length: 20 }, () => `s${++sent}`);
        for (const status of await Promise.all(
          batch.map((clientMsgId) => statusOf(post(alice.browser, room, text, clientMsgId))),
        )) {
          assert.equal(status, 201);
        }
        await waitFor(() => reader.messages(room).length >= sent, { what: `message ${sent} read`, timeoutMs: 2_000 });
      }
      assert.deepEqual(
        seqs(reader.messages(room)),
        Array.from({ length: sent }, (_, i) => i + 1),
      );
      (stalled.ws as unknown as Paused)._socket.resume();
      assert.equal((await stalled.waitClosed()).code, 4008);
      const got = stalled.messages(room);
      assert.ok(got.length < sent, `the stalled socket was cut before the end (${got.length} of ${sent})`);
      const resumed = await open(s1, alice.browser);
      await resumed.subscribe(room, got.at(-1)?.seq ?? 0);
      assert.deepEqual(
        [...seqs(got), ...seqs(resumed.messages(room))],
        Array.from({ length: sent }, (_, i) => i + 1),
      );
    });

    it('throttles a client over its frame rate, and closes one that will not stop (4029)', async () => {
      const room = await newRoom();
      const a = await open(s1, alice.browser);
      for (let i = 0; i < 60; i++) a.send({ type: 'subscribe', room });
      await a.next(
        (f) => f.type === 'error' && f.code === 'rate_limited' && /20 frames a second/.test(f.message),
        'rate_limited for the rate',
      );
      for (let i = 0; i < 400; i++) a.send({ type: 'typing', room });
      assert.equal((await a.waitClosed()).code, 4029);
    });

    it('bounds the frames waiting on one socket; the shipped client sends the refused ones again', async () => {
      const room = await newRoom();
      const raw = await open(s1, alice.browser);
      // 40 sends in one burst (within the rate's burst): one runs, 32 wait, the rest are refused.
      for (let i = 1; i <= 40; i++) raw.send({ type: 'send', room, text: `b${i}`, clientMsgId: `burst-${i}` });
      await waitFor(() => raw.frames.filter((f) => f.type === 'ack' || f.type === 'error').length === 40, {
        what: '40 answers',
      });
      const refused = raw.frames.filter((f) => f.type === 'error');
      assert.ok(refused.length > 0 && refused.length <= 8, `${refused.length} refused`);
      assert.ok(refused.every((f) => f.code === 'rate_limited' && /still waiting/.test(f.message) && f.clientMsgId));

      const client = chatClient(`${wsUrl.get(s1)}/ws`, cookieHeaders(alice.browser)).connect();
      try {
        const acks = await Promise.all(
          Array.from({ length: 40 }, (_, i) => client.send(room, `c${i}`, `client-burst-${i}`)),
        );
        assert.equal(new Set(acks.map((m) => m.seq)).size, 40, 'every send stored once, refused ones sent again');
      } finally {
        client.close();
      }
    });

    if (!backend.shared) {
      it('stateful design: a message sent on s1 does not reach a member connected to s2', async () => {
        const room = await newRoom();
        const dave = await signedIn(s2, 'dave');
        const onS2 = await open(s2, dave.browser);
        const onS1 = await open(s1, bob.browser);
        await onS2.subscribe(room);
        await onS1.subscribe(room);
        const a = await open(s1, alice.browser);
        a.send({ type: 'send', room, text: 'only on s1', clientMsgId: 'island' });
        await onS1.next((f) => f.type === 'message' && f.message.text === 'only on s1', 'delivered on s1');
        // Then s2's own traffic: it arrives, and s1's message (an earlier seq) never does.
        onS2.send({ type: 'send', room, text: 'on s2', clientMsgId: 'island2' });
        await onS2.next((f) => f.type === 'message' && f.message.text === 'on s2', "s2's own message");
        assert.deepEqual(
          onS2.messages(room).map((m) => m.text),
          ['on s2'],
        );
        assert.deepEqual(
          onS1.messages(room).map((m) => m.text),
          ['only on s1'],
        );
      });
    }
  });
}
