/**
 * PostgreSQL itself restarts under a running server (postgres store: the records and the session
 * state both live there), stopped cleanly and SIGKILLed: while it is away the server reports not
 * ready and answers 503; once it is back the server recovers by itself, every acknowledged write
 * is still there (a SIGKILL's crash recovery included), a money movement refused meanwhile runs
 * once when retried with its Idempotency-Key, and a checkout saga caught in the middle ends,
 * confirmed or cancelled, never left pending. The PostgreSQL is this file's own, so stopping it
 * touches no other test. (A cut at the wire: postgres-outage.test.ts.)
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { freePort } from '../../src/kernel/free-port.ts';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../../src/records/embedded-postgres.ts';
import { PASSWORD, newUsername } from '../security/backends.ts';
import { startApps, statusOf, type TestApps, type TestServer } from '../support/app.ts';
import { waitFor } from '../support/wait.ts';

describe('PostgreSQL restarts under a running server (postgres store)', () => {
  let postgres: EmbeddedPostgresHandle | undefined;
  let dataDir: string;
  let port: number;
  let apps: TestApps;
  let server: TestServer;
  let other: TestServer;
  /** Errors no one listened for: in a server process of its own, each would have ended it. */
  const unheard: Error[] = [];
  const hear = (error: Error) => unheard.push(error);

  const startPostgres = async () => {
    postgres = await startEmbeddedPostgres({ dataDir, port });
  };

  before(async () => {
    dataDir = join(await mkdtemp(join(tmpdir(), 'statewise-pg-restart-')), 'data');
    port = await freePort();
    await startPostgres();
    const admin = new pg.Client(postgres!.url);
    await admin.connect();
    await admin.query('CREATE DATABASE restart_test');
    await admin.end();
    const database = new URL(postgres!.url);
    database.pathname = '/restart_test';
    // Each saga step waits inside its transaction, so the outage lands in the middle of one.
    apps = await startApps({
      store: 'postgres',
      servers: 2,
      database: database.toString(),
      env: { SW_SAGA_STEP_DELAY_MS: '300' },
    });
    [server, other] = apps.servers as [TestServer, TestServer];
    process.on('uncaughtException', hear);
  });
  after(async () => {
    process.off('uncaughtException', hear);
    await apps?.close();
    await postgres?.stop();
  });

  /** Registers, deposits, fills a cart and checks out; then `away` takes PostgreSQL down, and it comes back. */
  async function outage(away: () => Promise<void>) {
    const browser = server.client();
    const registered = browser.api.POST('/api/auth/register', {
      body: { username: newUsername('pgr'), password: PASSWORD },
    });
    assert.equal(await statusOf(registered), 201);
    const deposit = (key: string) =>
      browser.api.POST('/api/bank/deposit', {
        body: { amountCents: 500 },
        params: { header: { 'Idempotency-Key': key } },
      });
    assert.equal(await statusOf(deposit(`before-${randomUUID()}`)), 200);
    const item = (await browser.api.GET('/api/menu')).data!.items.find((i) => i.stock > 0)!;
    assert.equal(await statusOf(browser.api.POST('/api/cart/items', { body: { itemId: item.id, qty: 1 } })), 200);
    const placed = await browser.api.POST('/api/orders', {
      body: {},
      params: { header: { 'Idempotency-Key': randomUUID() } },
    });
    assert.equal(placed.response.status, 202);
    const orderId = placed.data!.order.id;

    await away();
    await waitFor(async () => (await statusOf(server.client().api.GET('/readyz'))) === 503, { what: 'not ready' });
    const during = `during-${randomUUID()}`;
    const refused = await Promise.all([
      browser.api.GET('/api/me'),
      browser.api.GET('/api/bank/account'),
      deposit(during),
    ]);
    for (const r of refused) assert.equal(r.response.status, 503, JSON.stringify(r.error));

    // Back: a SIGKILLed postmaster's backends may hold its shared memory a moment; the start is refused until they go.
    await waitFor(
      () =>
        startPostgres().then(
          () => true,
          () => false,
        ),
      { what: 'PostgreSQL started', timeoutMs: 30_000 },
    );
    const backAt = Date.now();
    await waitFor(async () => (await statusOf(server.client().api.GET('/readyz'))) === 200, {
      what: 'ready again',
      timeoutMs: 15_000,
    });
    const recoveredMs = Date.now() - backAt;
    console.log(`ready again ${recoveredMs} ms after PostgreSQL was back`);
    assert.ok(recoveredMs < 10_000, `ready ${recoveredMs} ms after PostgreSQL was back`);

    assert.equal(await statusOf(browser.api.GET('/api/me')), 200, 'the session written before is still there');
    assert.equal(await statusOf(deposit(during)), 200, 'the refused deposit runs when retried');
    assert.equal((await deposit(during)).response.headers.get('idempotent-replayed'), 'true', 'and only once');
    const order = await waitFor(
      async () => {
        const { data } = await browser.api.GET('/api/orders/{id}', { params: { path: { id: orderId } } });
        return data!.order.status === 'pending' ? undefined : data!.order;
      },
      { what: 'the saga caught in the outage ended', timeoutMs: 30_000 },
    );
    const charged = order.status === 'confirmed' ? order.totalCents : 0;
    assert.equal((await browser.api.GET('/api/bank/account')).data?.balanceCents, 100_000 + 500 + 500 - charged);

    // A revocation made on one server is still heard by the other's near cache at once.
    const username = newUsername('pgt');
    const credentials = { username, password: PASSWORD };
    assert.equal(await statusOf(server.client().api.POST('/api/auth/register', { body: credentials })), 201);
    const pair = await server.client().api.POST('/api/auth/token', { body: credentials });
    const bearer = { authorization: `Bearer ${pair.data!.accessToken}` };
    const me = () => statusOf(other.client().apiWith(bearer).GET('/api/me'));
    for (let i = 0; i < 3; i++) assert.equal(await me(), 200);
    assert.equal(await statusOf(server.client().apiWith(bearer).POST('/api/auth/logout')), 204);
    assert.equal(await me(), 401, 'refused by the other server at once');
    assert.deepEqual(unheard, [], 'no error went unheard');
  }

  it('stopped, then started', async () => {
    await outage(async () => {
      await postgres!.stop();
      postgres = undefined;
    });
  });

  it('SIGKILLed, then started (crash recovery keeps every acknowledged write)', async () => {
    await outage(async () => {
      await postgres!.kill();
      postgres = undefined;
    });
  });
});
