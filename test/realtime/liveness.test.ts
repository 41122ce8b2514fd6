/**
 * A client gone without a goodbye (power cut, lost network, a NAT that forgot it) leaves a socket
 * that looks open: no FIN, no reset. The server pings every socket (SW_WS_PING_MS) and cuts one
 * that did not answer the previous ping, so its user goes offline instead of staying "online"
 * until TCP gives up, minutes later. A client that reads answers by itself and stays.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startApp, type TestServer } from '../support/app.ts';
import { cookieHeaders, listen, LiveSocket, signedIn } from '../support/live.ts';

const PING_MS = 200;

describe('socket liveness', () => {
  let apps: Awaited<ReturnType<typeof startApp>>;
  let server: TestServer;
  const sockets: LiveSocket[] = [];
  before(async () => {
    apps = await startApp({ store: 'postgres', mode: 'stateless', env: { SW_WS_PING_MS: String(PING_MS) } });
    server = apps.server;
  });
  after(async () => {
    for (const socket of sockets) socket.ws.terminate();
    await apps.close();
  });

  it('cuts a socket whose client stopped answering pings, and its user goes offline; a reading one stays', async () => {
    const url = `${await listen(server)}/ws`;
    const [alice, bob] = [await signedIn(server, 'alice'), await signedIn(server, 'bob')];
    const created = await alice.browser.api.POST('/api/chat/rooms', { body: { name: `liveness-${Date.now()}` } });
    assert.equal(created.response.status, 201);
    const room = created.data!.room.id;
    const reading = await LiveSocket.open(url, cookieHeaders(alice.browser));
    const vanishing = await LiveSocket.open(url, cookieHeaders(bob.browser));
    sockets.push(reading, vanishing);
    await reading.subscribe(room);
    await vanishing.subscribe(room);
    const both = [alice.username, bob.username].sort().join();
    await reading.next((f) => f.type === 'presence' && f.online.join() === both, 'both online');

    // Bob's machine vanishes: his socket neither reads nor answers, and sends no goodbye.
    (vanishing.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const vanishedAt = Date.now();
    await reading.next((f) => f.type === 'presence' && f.online.join() === alice.username, 'bob offline');
    const tookMs = Date.now() - vanishedAt;
    assert.equal(server.app.realtime.connections(), 1, "bob's socket cut");
    assert.equal(reading.closed, undefined, 'alice, who reads, answered every ping and stays');
    // Cut at the second ping after he vanished at the latest; presence follows at once.
    assert.ok(tookMs < 2 * PING_MS + 1_000, `offline ${tookMs} ms after vanishing`);
    const presence = await alice.browser.api.GET('/api/chat/rooms/{id}/presence', { params: { path: { id: room } } });
    assert.equal(presence.data?.online.join(), alice.username);
  });
});
