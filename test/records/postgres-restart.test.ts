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
import { startApps, type TestApps, type TestServer } from '../support/app.ts';
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
    assert.equal(
      (await browser.post('/api/auth/register', { username: newUsername('pgr'), password: PASSWORD })).status,
      201,
    );
    const deposit = (key: string) =>
      browser.request('POST', '/api/bank/deposit', { json: { amountCents: 500 }, headers: { 'idempotency-key': key } });
    assert.equal((await deposit(`before-${randomUUID()}`)).status, 200);
    const item = ((await browser.get('/api/menu')).body.items as Array<{ id: string; stock: number }>).find(
      (i) => i.stock > 0,
    )!;
    assert.equal((await browser.post('/api/cart/items', { itemId: item.id, qty: 1 })).status, 200);
    const placed = await browser.request('POST', '/api/orders', {
      json: {},
      headers: { 'idempotency-key': randomUUID() },
    });
    assert.equal(placed.status, 202);

    await away();
    await waitFor(async () => (await server.client().get('/readyz')).status === 503, { what: 'not ready' });
    const during = `during-${randomUUID()}`;
    const refused = await Promise.all([browser.get('/api/me'), browser.get('/api/bank/account'), deposit(during)]);
    for (const r of refused) assert.equal(r.status, 503, JSON.stringify(r.body));

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
    await waitFor(async () => (await server.client().get('/readyz')).status === 200, {
      what: 'ready again',
      timeoutMs: 15_000,
    });
    const recoveredMs = Date.now() - backAt;
    console.log(`ready again ${recoveredMs} ms after PostgreSQL was back`);
    assert.ok(recoveredMs < 10_000, `ready ${recoveredMs} ms after PostgreSQL was back`);

    assert.equal((await browser.get('/api/me')).status, 200, 'the session written before is still there');
    assert.equal((await deposit(during)).status, 200, 'the refused deposit runs when retried');
    assert.equal((await deposit(during)).headers['idempotent-replayed'], 'true', 'and only once');
    const order = await waitFor(
      async () => {
        const { body } = await browser.get(`/api/orders/${placed.body.order.id}`);
        return body.order.status === 'pending' ? undefined : body.order;
      },
      { what: 'the saga caught in the outage ended', timeoutMs: 30_000 },
    );
    const charged = order.status === 'confirmed' ? order.totalCents : 0;
    assert.equal((await browser.get('/api/bank/account')).body.balanceCents, 100_000 + 500 + 500 - charged);

    // A revocation made on one server is still heard by the other's near cache at once.
    const username = newUsername('pgt');
    assert.equal((await server.client().post('/api/auth/register', { username, password: PASSWORD })).status, 201);
    const pair = await server.client().post('/api/auth/token', { username, password: PASSWORD });
    const bearer = { authorization: `Bearer ${pair.body.accessToken}` };
    for (let i = 0; i < 3; i++) assert.equal((await other.client().get('/api/me', bearer)).status, 200);
    assert.equal((await server.client().post('/api/auth/logout', {}, bearer)).status, 204);
    assert.equal((await other.client().get('/api/me', bearer)).status, 401, 'refused by the other server at once');
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
