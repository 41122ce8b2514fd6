/**
 * The articles' central claim, shown end to end: with session state in a shared store, any server
 * answers any request, and SIGKILL of the server that handled the login loses no session.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startCluster, type Cluster } from '../support/cluster.ts';
import { Browser } from '../support/http.ts';

for (const store of ['postgres', 'redis'] as const) {
  describe(`stateless mode, ${store} store`, () => {
    let cluster: Cluster;
    before(async () => {
      cluster = await startCluster({ mode: 'stateless', store });
    });
    after(() => cluster.stop());

    it('spreads one session over every server and survives SIGKILL of the login server', async () => {
      const browser = new Browser(cluster.url);
      const registered = await browser.post('/api/auth/register', {
        username: `alice_${store}`,
        password: 'correct horse battery',
      });
      assert.equal(registered.status, 201);
      const loginServer = registered.servedBy;
      assert.ok(loginServer, 'X-Served-By on the register response');

      const before = await Promise.all(Array.from({ length: 30 }, () => browser.get('/api/me')));
      assert.deepEqual(
        before.map((r) => r.status),
        Array(30).fill(200),
      );
      assert.deepEqual(new Set(before.map((r) => r.servedBy)), new Set(['s1', 's2', 's3']));
      assert.equal(before[0]!.body.user.username, `alice_${store}`);

      await cluster.kill(loginServer);

      const afterKill = await Promise.all(Array.from({ length: 30 }, () => browser.get('/api/me')));
      assert.deepEqual(
        afterKill.map((r) => r.status),
        Array(30).fill(200),
        'no session lost',
      );
      assert.ok(afterKill.every((r) => r.servedBy !== loginServer));
      assert.equal((await cluster.view()).servers.find((s) => s.id === loginServer)?.status, 'down');
    });
  });
}
