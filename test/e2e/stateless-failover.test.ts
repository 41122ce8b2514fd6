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

    // Each server answers sessions and revocation markers from its near cache; the store tells every
    // server of a change. A logout acknowledged by one server must be refused by the next request
    // to any other, with no pause in between.
    it('a logout, and a log out everywhere, on s1 are refused by s2 and s3 at once', async () => {
      const pin = (id: string) => ({ 'x-statewise-server': id });
      const credentials = { username: `bob_${store}`, password: 'correct horse battery' };
      const browser = new Browser(cluster.url);
      assert.equal((await browser.post('/api/auth/register', credentials, pin('s1'))).status, 201);
      for (let round = 0; round < 10; round++) {
        if (round > 0) assert.equal((await browser.post('/api/auth/login', credentials, pin('s1'))).status, 200);
        for (const id of ['s2', 's3', 's2', 's3']) assert.equal((await browser.get('/api/me', pin(id))).status, 200);
        const cookie = [...browser.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
        assert.equal((await browser.post('/api/auth/logout', {}, pin('s1'))).status, 204);
        for (const id of ['s2', 's3']) {
          const after = await fetch(`${cluster.url}/api/me`, {
            headers: { ...pin(id), cookie, 'user-agent': browser.userAgent },
          });
          assert.equal(after.status, 401, `round ${round}: ${id} still knew the session`);
        }
      }

      const api = await fetch(`${cluster.url}/api/auth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...pin('s1') },
        body: JSON.stringify(credentials),
      });
      const { accessToken } = (await api.json()) as { accessToken: string };
      const bearer = (id: string) =>
        fetch(`${cluster.url}/api/me`, { headers: { ...pin(id), authorization: `Bearer ${accessToken}` } });
      for (const id of ['s2', 's3', 's2', 's3']) assert.equal((await bearer(id)).status, 200);
      const revoke = await fetch(`${cluster.url}/api/auth/logout-all`, {
        method: 'POST',
        headers: { ...pin('s1'), authorization: `Bearer ${accessToken}` },
      });
      assert.equal(revoke.status, 204);
      for (const id of ['s2', 's3']) assert.equal((await bearer(id)).status, 401, `${id} still took the token`);
    });

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
