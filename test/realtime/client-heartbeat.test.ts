/**
 * A path that goes silent (a NAT that forgot the connection, a hung hop) sends no close and no
 * reset: the socket looks open and the room looks quiet. Browsers can neither send a WebSocket ping
 * nor see one, so the shipped client sends a `ping` frame when its socket has been quiet and, having
 * heard nothing back in time, gives the socket up, reconnects and replays what it missed by seq.
 * The path here is a TCP relay whose open connections can be frozen (new ones still pass).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { ChatClient, ClientStatus, Message } from '../../src/realtime/client.ts';
import { startApp, type TestServer } from '../support/app.ts';
import { chatClient, cookieHeaders, listen, signedIn } from '../support/live.ts';
import { waitFor } from '../support/wait.ts';

const HEARTBEAT_MS = 150;

/** Relays TCP to `target`; `freeze()` makes every connection open now forward nothing more, either way, and never close. */
async function relay(target: URL) {
  const sockets = new Set<Socket>();
  let live: Array<[Socket, Socket]> = [];
  let pongs = 0;
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => {});
    }
    client.pipe(upstream);
    upstream.pipe(client);
    // Server frames are unmasked text: a pong is visible on the wire.
    upstream.on('data', (chunk: Buffer) => (pongs += chunk.toString('latin1').split('{"type":"pong"}').length - 1));
    live.push([client, upstream]);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `ws://127.0.0.1:${port}/ws`,
    /** Pongs the server sent through the relay. */
    pongs: () => pongs,
    freeze() {
      for (const [client, upstream] of live) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
      live = [];
    },
    close() {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

describe('the chat client on a path that goes silent', () => {
  let apps: Awaited<ReturnType<typeof startApp>>;
  let server: TestServer;
  const clients: ChatClient[] = [];
  let path: Awaited<ReturnType<typeof relay>>;
  before(async () => {
    apps = await startApp({ store: 'postgres', mode: 'stateless' });
    server = apps.server;
    path = await relay(new URL((await listen(server)).replace(/^ws/, 'http')));
  });
  after(async () => {
    for (const client of clients) client.close();
    path.close();
    await apps.close();
  });

  it('pings when quiet, gives up a socket that does not answer, reconnects and replays what it missed', async () => {
    const [alice, bob] = [await signedIn(server, 'alice'), await signedIn(server, 'bob')];
    const created = await alice.browser.api.POST('/api/chat/rooms', { body: { name: `heartbeat-${Date.now()}` } });
    assert.equal(created.response.status, 201);
    const room = created.data!.room.id;

    const watch = (client: ChatClient) => {
      const seen: Message[] = [];
      const statuses: Array<{ status: ClientStatus; reason?: string }> = [];
      client.on('message', (_room, message) => seen.push(message));
      client.on('status', (status, detail) => statuses.push({ status, reason: detail?.reason }));
      clients.push(client.connect());
      client.subscribe(room, 0);
      return { client, seen, statuses };
    };
    const listener = watch(chatClient(path.url, cookieHeaders(bob.browser), { heartbeatMs: HEARTBEAT_MS }));
    // The control: the same path, no heartbeat.
    const deaf = watch(chatClient(path.url, cookieHeaders(bob.browser), { heartbeatMs: 0 }));
    const speaker = watch(chatClient(path.url, cookieHeaders(alice.browser), { heartbeatMs: 0 }));
    const first = await speaker.client.send(room, 'before the cut');
    await waitFor(() => listener.seen.length === 1 && deaf.seen.length === 1, { what: 'both hear the first line' });
    // Quiet for several heartbeats (only the listener pings): the pongs keep its socket.
    await waitFor(() => path.pongs() >= 3, { what: 'three pongs' });
    assert.deepEqual(
      listener.statuses.map((s) => s.status),
      ['connecting', 'open'],
      'quiet is not dead',
    );

    path.freeze();
    const frozenAt = Date.now();
    // Said on a new connection (the relay passes new ones): the listener's old path hears none of it.
    const speaker2 = watch(chatClient(path.url, cookieHeaders(alice.browser), { heartbeatMs: 0 }));
    const lines = ['during', 'the', 'cut'];
    for (const text of lines) await speaker2.client.send(room, text);

    await waitFor(() => listener.seen.length === 4, { what: 'the listener to hear every line' });
    const tookMs = Date.now() - frozenAt;
    assert.deepEqual(
      listener.seen.map((m) => m.seq),
      [first.seq, first.seq + 1, first.seq + 2, first.seq + 3],
      'once each, in order',
    );
    assert.deepEqual(listener.statuses[2], { status: 'reconnecting', reason: 'no answer to ping' });
    assert.equal(listener.statuses.at(-1)?.status, 'open', 'on a new socket');
    assert.ok(tookMs < 4 * HEARTBEAT_MS + 1_000, `found the dead path and caught up ${tookMs} ms after the freeze`);
    assert.equal(deaf.client.status, 'open', 'without the heartbeat the dead socket looks open');
    assert.equal(deaf.seen.length, 1, '... and hears nothing');
  });
});
