/**
 * GET /metrics (Prometheus text): what it counts after real requests, and who may read it: a
 * scraper asking directly from SW_METRICS_FROM (loopback by default), never through a balancer.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startApp, statusOf, type InjectClient, type TestApps, type TestServer } from '../support/app.ts';
import { PASSWORD, newUsername } from '../security/backends.ts';
import { waitFor } from '../support/wait.ts';

/** The value of the first line of `metric` holding every one of `labels` (comma separated); 0 when none. */
const valueOf = (text: string, metric: string, labels: string) => {
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`${metric}{`) && labels.split(',').every((p) => l.includes(p)));
  return line ? Number(line.split(' ').at(-1)) : 0;
};
/** Registers a new user with `browser`: 201. */
const register = (browser: InjectClient, prefix: string) =>
  statusOf(browser.api.POST('/api/auth/register', { body: { username: newUsername(prefix), password: PASSWORD } }));
const scrape = async (server: TestServer) =>
  (await server.app.inject({ method: 'GET', url: '/metrics', remoteAddress: '127.0.0.1' })).body;

describe('GET /metrics', () => {
  let apps: TestApps;
  let server: TestServer;
  before(async () => {
    apps = await startApp({ store: 'memory', mode: 'stateful', env: { SW_LOGIN_IP_LIMIT: '2' } });
    server = apps.servers[0]!;
  });
  after(() => apps?.close());

  const scrape = async (remoteAddress = '127.0.0.1', headers: Record<string, string> = {}) =>
    server.app.inject({ method: 'GET', url: '/metrics', remoteAddress, headers });

  it('counts requests by route and status, replays, refusals, sessions held, and the process', async () => {
    const browser = server.client();
    for (let i = 0; i < 3; i++) assert.equal(await statusOf(browser.api.GET('/api/menu')), 200);
    assert.equal(await register(browser, 'm'), 201);
    const deposit = () =>
      browser.api.POST('/api/bank/deposit', {
        body: { amountCents: 100 },
        params: { header: { 'Idempotency-Key': 'metrics-key-1' } },
      });
    assert.equal(await statusOf(deposit()), 200);
    assert.equal((await deposit()).response.headers.get('idempotent-replayed'), 'true');
    const login = () =>
      statusOf(
        server.client().api.POST('/api/auth/login', { body: { username: 'nobody_here', password: 'wrong password!' } }),
      );
    const statuses = [await login(), await login(), await login()];
    assert.deepEqual(statuses, [401, 401, 429]);

    const response = await scrape();
    assert.equal(response.statusCode, 200);
    assert.match(String(response.headers['content-type']), /^text\/plain; version=0.0.4/);
    const text = response.body;
    assert.equal(valueOf(text, 'statewise_http_requests_total', 'route="/api/menu",status="200"'), 3);
    assert.equal(valueOf(text, 'statewise_http_requests_total', 'route="/api/auth/login",status="429"'), 1);
    assert.equal(valueOf(text, 'statewise_rate_limited_total', 'route="/api/auth/login"'), 1);
    assert.equal(valueOf(text, 'statewise_idempotent_replays_total', 'route="/api/bank/deposit"'), 1);
    assert.ok(valueOf(text, 'statewise_http_request_duration_seconds_count', 'route="/api/menu"') >= 3);
    assert.match(text, /^statewise_sessions_in_memory\{server="s1"\} [1-9]\d*$/m);
    assert.match(text, /^statewise_websocket_connections\{server="s1"\} 0$/m);
    assert.match(text, /^process_cpu_user_seconds_total\{server="s1"\} /m);
  });

  it('answers only a direct scraper from the allowed addresses', async () => {
    assert.equal((await scrape('127.0.0.1')).statusCode, 200);
    assert.equal((await scrape('::1')).statusCode, 200);
    assert.equal((await scrape('10.1.2.3')).statusCode, 404, 'another host');
    assert.equal(
      (await scrape('127.0.0.1', { 'x-forwarded-for': '203.0.113.9' })).statusCode,
      404,
      'through a balancer',
    );
  });
});

describe('GET /metrics with a shared store', () => {
  let apps: TestApps;
  before(async () => {
    apps = await startApp({ store: 'postgres', mode: 'stateless' });
  });
  after(() => apps?.close());

  it('counts the near cache: repeat reads of a session are hits', async () => {
    const server = apps.servers[0]!;
    const browser = server.client();
    assert.equal(await register(browser, 'nc'), 201);
    for (let i = 0; i < 5; i++) assert.equal(await statusOf(browser.api.GET('/api/me')), 200);
    const text = (await server.app.inject({ method: 'GET', url: '/metrics', remoteAddress: '127.0.0.1' })).body;
    const count = (result: string) =>
      Number(
        /\d+$/.exec(text.split('\n').find((l) => l.includes(`near_cache_reads_total{result="${result}"`)) ?? '')?.[0] ??
          0,
      );
    assert.ok(count('hit') >= 3, `hits: ${count('hit')}`);
    assert.ok(count('miss') >= 1);
    assert.match(text, /^statewise_near_cache_entries\{server="s1"\} [1-9]\d*$/m);
  });

  it('times what goes to the store, by backend and operation', async () => {
    const server = apps.servers[0]!;
    const browser = server.client();
    assert.equal(await register(browser, 'so'), 201);
    const before = await scrape(server);
    for (let i = 0; i < 4; i++) assert.equal(await statusOf(browser.api.GET('/api/me')), 200);
    assert.equal(await statusOf(browser.api.POST('/api/auth/logout')), 204);
    const text = await scrape(server);
    const labels = (op: string) => `backend="postgres",operation="${op}"`;
    const grew = (metric: string, op: string) =>
      valueOf(text, metric, labels(op)) - valueOf(before, metric, labels(op));
    // Five reads of the session (four requests and the logout's), but only what went to PostgreSQL
    // is timed: the first read; the near cache answered the rest in process.
    const reads = grew('statewise_store_operation_duration_seconds_count', 'sessions.get');
    assert.ok(reads >= 1 && reads < 5, `session reads that went to the store: ${reads}`);
    assert.equal(grew('statewise_store_operation_duration_seconds_count', 'sessions.destroy'), 1);
    assert.ok(valueOf(text, 'statewise_store_operation_duration_seconds_sum', labels('sessions.destroy')) > 0);
    assert.ok(
      valueOf(text, 'statewise_store_operation_duration_seconds_bucket', `${labels('sessions.get')},le="+Inf"`) >= 1,
    );
    assert.equal(valueOf(text, 'statewise_store_operation_failures_total', labels('sessions.get')), 0);
  });

  it('counts checkout outcomes: confirmed, and cancelled with the reason', async () => {
    const server = apps.servers[0]!;
    const outcome = (text: string, value: string) =>
      valueOf(text, 'statewise_checkout_outcomes_total', `outcome="${value}"`);
    const before = await scrape(server);
    const menu = (await server.client().api.GET('/api/menu')).data!.items;
    const item = menu.find((i) => i.stock > 2)!;
    /** Registers, fills a cart, optionally spends the money first, checks out; the order's end. */
    const order = async (broke: boolean) => {
      const browser = server.client();
      assert.equal(await register(browser, 'co'), 201);
      const key = () => ({ header: { 'Idempotency-Key': randomUUID() } });
      if (broke) {
        const balance = (await browser.api.GET('/api/bank/account')).data!.balanceCents;
        const spent = browser.api.POST('/api/bank/withdraw', { body: { amountCents: balance }, params: key() });
        assert.equal(await statusOf(spent), 200);
      }
      const added = browser.api.POST('/api/cart/items', { body: { itemId: item.id, qty: 1 } });
      assert.equal(await statusOf(added), 200);
      const placed = await browser.api.POST('/api/orders', { body: {}, params: key() });
      assert.equal(placed.response.status, 202);
      const id = placed.data!.order.id;
      return waitFor(
        async () => {
          const { status, reason } = (await browser.api.GET('/api/orders/{id}', { params: { path: { id } } })).data!
            .order;
          return status === 'pending' ? undefined : `${status}${reason ? `:${reason}` : ''}`;
        },
        { what: 'the order settled', timeoutMs: 10_000 },
      );
    };
    assert.equal(await order(false), 'confirmed');
    assert.equal(await order(true), 'cancelled:payment_failed');
    const text = await scrape(server);
    assert.equal(outcome(text, 'confirmed') - outcome(before, 'confirmed'), 1);
    assert.equal(outcome(text, 'cancelled:payment_failed') - outcome(before, 'cancelled:payment_failed'), 1);
  });
});
