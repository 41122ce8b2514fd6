/**
 * Two app servers on a Redis Cluster of three primaries (`redis+cluster://`), through what users
 * do, not only the state contract (test/state/contract.test.ts runs that on the cluster too): a
 * session made on one server is known to the other, a cart filled on one is read on the other, a
 * rate limit counts across servers, a chat message sent through one reaches a socket on the other
 * (pub/sub through the cluster), and log out everywhere ends every session of the user on both.
 * Each of those touches keys that land on different nodes.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { newUsername, PASSWORD } from '../security/backends.ts';
import { startApps, type TestApps, type TestServer } from '../support/app.ts';
import { cookieHeaders, listen, LiveSocket } from '../support/live.ts';
import { startRedisCluster, type ClusterSetup } from '../support/redis-cluster.ts';

describe('app servers on a Redis Cluster (three primaries)', () => {
  let redis: ClusterSetup;
  let apps: TestApps;
  let s1: TestServer;
  let s2: TestServer;
  before(async () => {
    redis = await startRedisCluster();
    apps = await startApps({ store: 'redis', servers: 2, redisUrl: redis.url, env: { SW_LOGIN_LIMIT: '4' } });
    [s1, s2] = apps.servers as [TestServer, TestServer];
  });
  after(async () => {
    await apps?.close();
    await redis?.stop();
  });

  it('shares sessions, carts and rate limits, and ends every session at log out everywhere', async () => {
    const username = newUsername('rc');
    const laptop = s1.client('laptop');
    assert.equal((await laptop.post('/api/auth/register', { username, password: PASSWORD })).status, 201);
    const phone = s2.client('phone');
    assert.equal((await phone.post('/api/auth/login', { username, password: PASSWORD })).status, 200);

    // The laptop's session, made through s1, read through s2 (the same cookie, another server).
    const onS2 = s2.client('laptop');
    for (const [k, v] of laptop.cookies) onS2.cookies.set(k, v);
    assert.equal((await onS2.get('/api/me')).body.user.username, username);
    const sessions = await phone.get('/api/auth/sessions');
    assert.equal(sessions.body.sessions.length, 2, 'both sessions listed, wherever their keys live');

    const menu = (await s1.client().get('/api/menu')).body.items as Array<{ id: string; stock: number }>;
    const [first, second] = menu.filter((i) => i.stock > 2);
    assert.equal((await laptop.post('/api/cart/items', { itemId: first!.id, qty: 2 })).status, 200);
    assert.equal((await onS2.post('/api/cart/items', { itemId: second!.id, qty: 1 })).status, 200);
    const cart = (await phone.get('/api/cart')).body;
    assert.deepEqual(
      cart.items.map((l: { itemId: string; qty: number }) => [l.itemId, l.qty]).sort(),
      [
        [first!.id, 2],
        [second!.id, 1],
      ].sort(),
      "the user's cart, one hash, from every server",
    );

    // Sign-ins of the user, counted across the servers (4 a window here): the phone's, then three
    // wrong passwords; the next is refused wherever it lands.
    const wrong = (server: TestServer) =>
      server.client().post('/api/auth/login', { username, password: 'not the password at all' });
    const statuses = [await wrong(s1), await wrong(s2), await wrong(s1), await wrong(s2)].map((r) => r.status);
    assert.deepEqual(statuses, [401, 401, 401, 429]);

    assert.equal((await phone.post('/api/auth/logout-all')).status, 204);
    assert.equal((await laptop.get('/api/me')).status, 401);
    assert.equal((await onS2.get('/api/me')).status, 401);
    assert.equal((await phone.get('/api/me')).status, 401);
  });

  it('carries a chat message from one server to a socket on the other', async () => {
    const alice = s1.client();
    assert.equal(
      (await alice.post('/api/auth/register', { username: newUsername('rca'), password: PASSWORD })).status,
      201,
    );
    const bob = s2.client();
    assert.equal(
      (await bob.post('/api/auth/register', { username: newUsername('rcb'), password: PASSWORD })).status,
      201,
    );
    const room = (await alice.post('/api/chat/rooms', { name: `cluster-${randomUUID()}` })).body.room.id as string;
    const socket = await LiveSocket.open(`${await listen(s2)}/ws`, cookieHeaders(bob));
    try {
      await socket.subscribe(room);
      const sent = await alice.post(`/api/chat/rooms/${room}/messages`, {
        text: 'across the cluster',
        clientMsgId: 'c1',
      });
      assert.equal(sent.status, 201);
      const frame = await socket.next((f) => f.type === 'message', 'the message on s2');
      assert.equal(frame.message.text, 'across the cluster');
    } finally {
      socket.ws.terminate();
    }
  });
});
