/**
 * The articles' central claim, shown end to end: with session state in a shared store, any server
 * answers any request, and SIGKILL of the server that handled the login loses no session.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createApiClient } from '../../src/client/api-client.ts';
import { cookieHeader } from '../../src/client/cookie-fetch.ts';
import { startCluster, type Cluster } from '../support/cluster.ts';
import { Browser, servedBy } from '../support/http.ts';

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
      const at = (id: string) => ({ headers: pin(id) });
      const status = async (pending: Promise<{ response: Response }>) => (await pending).response.status;
      assert.equal(await status(browser.api.POST('/api/auth/register', { body: credentials, ...at('s1') })), 201);
      for (let round = 0; round < 10; round++) {
        if (round > 0)
          assert.equal(await status(browser.api.POST('/api/auth/login', { body: credentials, ...at('s1') })), 200);
        for (const id of ['s2', 's3', 's2', 's3']) assert.equal(await status(browser.api.GET('/api/me', at(id))), 200);
        // The cookie of the session about to end, sent again after the logout as a stale tab would.
        const stale = createApiClient({
          baseUrl: cluster.url,
          headers: { cookie: cookieHeader(browser.cookies), 'user-agent': browser.userAgent },
        });
        assert.equal(await status(browser.api.POST('/api/auth/logout', at('s1'))), 204);
        for (const id of ['s2', 's3']) {
          const after = await status(stale.GET('/api/me', at(id)));
          assert.equal(after, 401, `round ${round}: ${id} still knew the session`);
        }
      }

      const plain = createApiClient({ baseUrl: cluster.url });
      const token = await plain.POST('/api/auth/token', { body: credentials, ...at('s1') });
      const { accessToken } = token.data!;
      const bearer = createApiClient({ baseUrl: cluster.url, headers: { authorization: `Bearer ${accessToken}` } });
      for (const id of ['s2', 's3', 's2', 's3']) assert.equal(await status(bearer.GET('/api/me', at(id))), 200);
      assert.equal(await status(bearer.POST('/api/auth/logout-all', at('s1'))), 204);
      for (const id of ['s2', 's3'])
        assert.equal(await status(bearer.GET('/api/me', at(id))), 401, `${id} still took the token`);
    });

    it('spreads one session over every server and survives SIGKILL of the login server', async () => {
      const browser = new Browser(cluster.url);
      const registered = await browser.api.POST('/api/auth/register', {
        body: { username: `alice_${store}`, password: 'correct horse battery' },
      });
      assert.equal(registered.response.status, 201);
      const loginServer = servedBy(registered);
      assert.ok(loginServer, 'X-Served-By on the register response');

      const before = await Promise.all(Array.from({ length: 30 }, () => browser.api.GET('/api/me')));
      assert.deepEqual(
        before.map((r) => r.response.status),
        Array(30).fill(200),
      );
      assert.deepEqual(new Set(before.map(servedBy)), new Set(['s1', 's2', 's3']));
      assert.equal(before[0]!.data?.user.username, `alice_${store}`);

      await cluster.kill(loginServer);

      const afterKill = await Promise.all(Array.from({ length: 30 }, () => browser.api.GET('/api/me')));
      assert.deepEqual(
        afterKill.map((r) => r.response.status),
        Array(30).fill(200),
        'no session lost',
      );
      assert.ok(afterKill.every((r) => servedBy(r) !== loginServer));
      assert.equal((await cluster.view()).servers.find((s) => s.id === loginServer)?.status, 'down');
    });
  });
}
