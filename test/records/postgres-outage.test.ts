/**
 * PostgreSQL goes away and comes back (cut at the wire by a TCP proxy: every connection dropped,
 * new ones refused): while it is away the server reports not ready and answers 503, never another
 * 5xx; once it is back the server recovers by itself within seconds, with every acknowledged
 * write still there, and a money movement refused during the outage runs once when retried with
 * its Idempotency-Key.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PASSWORD, newUsername } from '../security/backends.ts';
import { startApp, type TestApps, type TestServer } from '../support/app.ts';
import { startProxy } from '../support/tcp-proxy.ts';
import { waitFor } from '../support/wait.ts';

describe('a PostgreSQL outage (postgres store)', () => {
  let apps: TestApps;
  let server: TestServer;
  let proxy: Awaited<ReturnType<typeof startProxy>>;
  before(async () => {
    apps = await startApp({
      store: 'postgres',
      databaseVia: async (url) => {
        proxy = await startProxy(new URL(url));
        return proxy.url;
      },
    });
    server = apps.servers[0]!;
  });
  after(async () => {
    proxy?.up();
    await apps?.close();
    await proxy?.close();
  });

  it('is not ready and answers 503 while it is away, and recovers by itself with nothing lost', async () => {
    const browser = server.client();
    assert.equal(
      (await browser.post('/api/auth/register', { username: newUsername('pgout'), password: PASSWORD })).status,
      201,
    );
    const deposit = (key: string) =>
      browser.request('POST', '/api/bank/deposit', { json: { amountCents: 500 }, headers: { 'idempotency-key': key } });
    assert.equal((await deposit('before')).status, 200);

    proxy.down();
    await waitFor(async () => (await server.client().get('/readyz')).status === 503, { what: 'not ready' });
    const during = await Promise.all([browser.get('/api/me'), browser.get('/api/bank/account'), deposit('during')]);
    for (const r of during) assert.equal(r.status, 503, JSON.stringify(r.body));
    assert.ok(during.every((r) => r.body.error.code === 'unavailable'));

    const backAt = Date.now();
    proxy.up();
    await waitFor(async () => (await server.client().get('/readyz')).status === 200, {
      what: 'ready again',
      timeoutMs: 15_000,
    });
    const recoveredMs = Date.now() - backAt;
    assert.ok(recoveredMs < 10_000, `ready ${recoveredMs} ms after PostgreSQL came back`);
    console.log(`ready again ${recoveredMs} ms after PostgreSQL came back`);
    assert.equal((await browser.get('/api/me')).status, 200, 'the session written before is still there');
    assert.equal((await deposit('during')).status, 200, 'the refused deposit runs when retried');
    assert.equal((await deposit('during')).headers['idempotent-replayed'], 'true', 'and only once');
    assert.equal((await browser.get('/api/bank/account')).body.balanceCents, 100_000 + 500 + 500);
  });
});
