/**
 * The stateful design, as the articles describe it: a sticky balancer keeps a client on the server
 * that holds its session in memory; when that server dies, the client is moved and the session is
 * gone. These assertions check the loss on purpose.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startCluster, type Cluster } from '../support/cluster.ts';
import { Browser } from '../support/http.ts';

describe('stateful mode (memory store, sticky balancer)', () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster({ mode: 'stateful' });
  });
  after(() => cluster.stop());

  it('sticks to one server, and loses the session when that server is killed', async () => {
    const browser = new Browser(cluster.url);
    const registered = await browser.post('/api/auth/register', { username: 'bob', password: 'correct horse battery' });
    assert.equal(registered.status, 201);
    const home = registered.servedBy!;
    assert.equal(browser.cookies.get('sw_server'), home, 'the balancer pins the client by cookie');

    const pinned = await Promise.all(Array.from({ length: 30 }, () => browser.get('/api/me')));
    assert.deepEqual(
      pinned.map((r) => r.status),
      Array(30).fill(200),
    );
    assert.deepEqual(new Set(pinned.map((r) => r.servedBy)), new Set([home]));

    await cluster.kill(home);

    const moved = await browser.get('/api/me');
    assert.notEqual(moved.servedBy, home, 'the balancer moved the client to a live server');
    assert.equal(moved.status, 401, 'the session lived only in the dead server: it is lost');
    assert.equal(browser.cookies.get('sw_server'), moved.servedBy, 'the sticky cookie now names the new server');
  });

  it('a session exists only on its own server: pinning to another server gives 401', async () => {
    const browser = new Browser(cluster.url);
    const registered = await browser.post('/api/auth/register', {
      username: 'carol',
      password: 'correct horse battery',
    });
    const home = registered.servedBy!;
    const view = await cluster.view();
    const other = view.servers.find((s) => s.status === 'up' && s.id !== home)!.id;
    assert.equal((await browser.get('/api/me', { 'x-statewise-server': home })).status, 200);
    assert.equal((await browser.get('/api/me', { 'x-statewise-server': other })).status, 401);
  });
});
