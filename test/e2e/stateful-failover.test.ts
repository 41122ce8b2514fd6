/**
 * The stateful design, as the articles describe it: a sticky balancer keeps a client on the server
 * that holds its session in memory; when that server dies, the client is moved and the session is
 * gone. These assertions check the loss on purpose.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startCluster, type Cluster } from '../support/cluster.ts';
import { Browser, servedBy } from '../support/http.ts';

describe('stateful mode (memory store, sticky balancer)', () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster({ mode: 'stateful' });
  });
  after(() => cluster.stop());

  it('sticks to one server, and loses the session when that server is killed', async () => {
    const browser = new Browser(cluster.url);
    const registered = await browser.api.POST('/api/auth/register', {
      body: { username: 'bob', password: 'correct horse battery' },
    });
    assert.equal(registered.response.status, 201);
    const home = servedBy(registered)!;
    assert.equal(browser.cookies.get('sw_server'), home, 'the balancer pins the client by cookie');

    const pinned = await Promise.all(Array.from({ length: 30 }, () => browser.api.GET('/api/me')));
    assert.deepEqual(
      pinned.map((r) => r.response.status),
      Array(30).fill(200),
    );
    assert.deepEqual(new Set(pinned.map(servedBy)), new Set([home]));

    await cluster.kill(home);

    const moved = await browser.api.GET('/api/me');
    assert.notEqual(servedBy(moved), home, 'the balancer moved the client to a live server');
    assert.equal(moved.response.status, 401, 'the session lived only in the dead server: it is lost');
    assert.equal(browser.cookies.get('sw_server'), servedBy(moved), 'the sticky cookie now names the new server');
  });

  it('a session exists only on its own server: pinning to another server gives 401', async () => {
    const browser = new Browser(cluster.url);
    const registered = await browser.api.POST('/api/auth/register', {
      body: { username: 'carol', password: 'correct horse battery' },
    });
    const home = servedBy(registered)!;
    const view = await cluster.view();
    const other = view.servers.find((s) => s.status === 'up' && s.id !== home)!.id;
    const me = async (server: string) =>
      (await browser.api.GET('/api/me', { headers: { 'x-statewise-server': server } })).response.status;
    assert.equal(await me(home), 200);
    assert.equal(await me(other), 401);
  });
});
