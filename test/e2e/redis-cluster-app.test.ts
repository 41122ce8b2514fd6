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
import { startApps, statusOf, type TestApps, type TestServer } from '../support/app.ts';
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
    assert.equal(
      await statusOf(laptop.api.POST('/api/auth/register', { body: { username, password: PASSWORD } })),
      201,
    );
    const phone = s2.client('phone');
    assert.equal(await statusOf(phone.api.POST('/api/auth/login', { body: { username, password: PASSWORD } })), 200);

    // The laptop's session, made through s1, read through s2 (the same cookie, another server).
    const onS2 = s2.client('laptop');
    for (const [k, v] of laptop.cookies) onS2.cookies.set(k, v);
    assert.equal((await onS2.api.GET('/api/me')).data?.user.username, username);
    const sessions = await phone.api.GET('/api/auth/sessions');
    assert.equal(sessions.data?.sessions.length, 2, 'both sessions listed, wherever their keys live');

    const menu = (await s1.client().api.GET('/api/menu')).data!.items;
    const [first, second] = menu.filter((i) => i.stock > 2);
    assert.equal(await statusOf(laptop.api.POST('/api/cart/items', { body: { itemId: first!.id, qty: 2 } })), 200);
    assert.equal(await statusOf(onS2.api.POST('/api/cart/items', { body: { itemId: second!.id, qty: 1 } })), 200);
    const cart = (await phone.api.GET('/api/cart')).data!;
    assert.deepEqual(
      cart.items.map((l) => [l.itemId, l.qty]).sort(),
      [
        [first!.id, 2],
        [second!.id, 1],
      ].sort(),
      "the user's cart, one hash, from every server",
    );

    // Sign-ins of the user, counted across the servers (4 a window here): the phone's, then three
    // wrong passwords; the next is refused wherever it lands.
    const wrong = (server: TestServer) =>
      statusOf(
        server.client().api.POST('/api/auth/login', { body: { username, password: 'not the password at all' } }),
      );
    const statuses = [await wrong(s1), await wrong(s2), await wrong(s1), await wrong(s2)];
    assert.deepEqual(statuses, [401, 401, 401, 429]);

    assert.equal(await statusOf(phone.api.POST('/api/auth/logout-all')), 204);
    for (const browser of [laptop, onS2, phone]) assert.equal(await statusOf(browser.api.GET('/api/me')), 401);
  });

  it('carries a chat message from one server to a socket on the other', async () => {
    const alice = s1.client();
    const bob = s2.client();
    for (const [browser, name] of [
      [alice, 'rca'],
      [bob, 'rcb'],
    ] as const) {
      const body = { username: newUsername(name), password: PASSWORD };
      assert.equal(await statusOf(browser.api.POST('/api/auth/register', { body })), 201);
    }
    const created = await alice.api.POST('/api/chat/rooms', { body: { name: `cluster-${randomUUID()}` } });
    const room = created.data!.room.id;
    const socket = await LiveSocket.open(`${await listen(s2)}/ws`, cookieHeaders(bob));
    try {
      await socket.subscribe(room);
      const sent = alice.api.POST('/api/chat/rooms/{id}/messages', {
        params: { path: { id: room } },
        body: { text: 'across the cluster', clientMsgId: 'c1' },
      });
      assert.equal(await statusOf(sent), 201);
      const frame = await socket.next((f) => f.type === 'message', 'the message on s2');
      assert.equal(frame.message.text, 'across the cluster');
    } finally {
      socket.ws.terminate();
    }
  });
});
