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
import { startApp, statusOf, type TestApps, type TestServer } from '../support/app.ts';
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
    const registered = browser.api.POST('/api/auth/register', {
      body: { username: newUsername('pgout'), password: PASSWORD },
    });
    assert.equal(await statusOf(registered), 201);
    const deposit = (key: string) =>
      browser.api.POST('/api/bank/deposit', {
        body: { amountCents: 500 },
        params: { header: { 'Idempotency-Key': key } },
      });
    assert.equal(await statusOf(deposit('before')), 200);

    proxy.down();
    await waitFor(async () => (await statusOf(server.client().api.GET('/readyz'))) === 503, { what: 'not ready' });
    const during = await Promise.all([
      browser.api.GET('/api/me'),
      browser.api.GET('/api/bank/account'),
      deposit('during'),
    ]);
    for (const r of during) assert.equal(r.response.status, 503, JSON.stringify(r.error));
    assert.ok(during.every((r) => r.error?.error.code === 'unavailable'));

    const backAt = Date.now();
    proxy.up();
    await waitFor(async () => (await statusOf(server.client().api.GET('/readyz'))) === 200, {
      what: 'ready again',
      timeoutMs: 15_000,
    });
    const recoveredMs = Date.now() - backAt;
    assert.ok(recoveredMs < 10_000, `ready ${recoveredMs} ms after PostgreSQL came back`);
    console.log(`ready again ${recoveredMs} ms after PostgreSQL came back`);
    assert.equal(await statusOf(browser.api.GET('/api/me')), 200, 'the session written before is still there');
    assert.equal(await statusOf(deposit('during')), 200, 'the refused deposit runs when retried');
    assert.equal((await deposit('during')).response.headers.get('idempotent-replayed'), 'true', 'and only once');
    assert.equal((await browser.api.GET('/api/bank/account')).data?.balanceCents, 100_000 + 500 + 500);
  });
});
