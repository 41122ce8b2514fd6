/**
 * The menu and the cart on the real system (3 servers behind the balancer): the menu is cacheable
 * like a CDN wants; each cart line changes by one atomic operation, so 200 concurrent adds spread
 * over the servers take exactly the stock (50) on either store; a visitor's cart follows them into their
 * account; a cart survives SIGKILL of the server that wrote it; bad input changes nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startCluster, type Cluster } from '../support/cluster.ts';
import { Browser, type HttpResult } from '../support/http.ts';
import { waitFor } from '../support/wait.ts';
import {
  addToCart,
  bounded,
  cartOf,
  del,
  pin,
  PASSWORD,
  put,
  records,
  servedBy,
  shopper,
  type Records,
} from './helpers.ts';

const SERVERS = ['s1', 's2', 's3'];

/**
 * 200 "add 1" on one line, at most 50 in flight, pinned round robin to s1, s2, s3. Margherita's
 * stock is 50, so a line holds 50: exactly 50 adds are taken and 150 refused, none lost and the
 * line never over (a lost update would leave it short, a racy check would let it pass 50).
 */
async function concurrentAdds(cluster: Cluster, username: string) {
  const browser = await shopper(cluster, username);
  const results = await bounded(200, 50, (i) => addToCart(browser, 'margherita', 1, SERVERS[i % SERVERS.length]));
  const statuses = new Map<number, number>();
  for (const { response } of results) statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
  assert.deepEqual(
    [...statuses].sort(),
    [
      [200, 50],
      [409, 150],
    ],
    'the stock taken, the rest refused',
  );
  assert.deepEqual(new Set(results.map(servedBy)), new Set(SERVERS), 'spread over every server');
  const cart = await cartOf(browser);
  assert.deepEqual(cart?.items, [{ itemId: 'margherita', name: 'Margherita', qty: 50, priceCents: 900 }]);
  assert.equal(cart?.totalCents, 50 * 900);
}

/** A raw answer, or a typed one (its error body). */
type Answer = HttpResult | { response: Response; error?: unknown };
const statusAndBody = (result: Answer): { status: number; body: any } =>
  'response' in result ? { status: result.response.status, body: result.error } : result;

function assertError(answer: Answer, status: number, code?: string) {
  const result = statusAndBody(answer);
  assert.equal(result.status, status, JSON.stringify(result.body));
  assert.equal(typeof result.body?.error?.message, 'string', 'the contract error shape');
  if (code) assert.equal(result.body.error.code, code);
}

describe('shop on the postgres store (stateless)', () => {
  let cluster: Cluster;
  let db: Records;
  before(async () => {
    cluster = await startCluster({ env: { SW_LOGIN_LIMIT: '1000' } });
    db = records(cluster);
  });
  after(async () => {
    await db?.close();
    await cluster?.stop();
  });

  it('serves the menu with a strong ETag, public max-age=5 and 304 on If-None-Match, the same on every server', async () => {
    const client = new Browser(cluster.url);
    const menu = (headers: Record<string, string>) => client.api.GET('/api/menu', { headers });
    const first = await menu(pin('s1'));
    assert.equal(first.response.status, 200);
    assert.ok(first.data!.items.length >= 8);
    for (const item of first.data!.items) {
      assert.deepEqual(Object.keys(item).sort(), ['id', 'kind', 'name', 'priceCents', 'stock']);
      assert.ok(Number.isInteger(item.priceCents) && Number.isInteger(item.stock));
    }
    const etag = first.response.headers.get('etag')!;
    assert.match(etag, /^"[^"]+"$/, 'a strong validator (no W/)');
    assert.equal(first.response.headers.get('cache-control'), 'public, max-age=5');
    assert.equal(first.response.headers.get('set-cookie'), null, 'nothing private in a shared-cacheable answer');

    for (const server of SERVERS) {
      const again = await menu(pin(server));
      assert.equal(again.response.headers.get('etag'), etag, `${server} gives the same tag for the same menu`);
      const notModified = await menu({ ...pin(server), 'if-none-match': etag });
      assert.equal(notModified.response.status, 304);
      assert.equal(notModified.error, '', 'no body');
      assert.equal(notModified.response.headers.get('etag'), etag);
      assert.equal(notModified.response.headers.get('cache-control'), 'public, max-age=5');
    }
    assert.equal(
      (await menu({ 'if-none-match': `"other", W/${etag}` })).response.status,
      304,
      'list and weak comparison',
    );
    assert.equal((await menu({ 'if-none-match': '"stale"' })).response.status, 200);
    assert.equal((await menu({ 'if-none-match': '*' })).response.status, 304);

    // Stock changes: the tag changes with it, and the old one no longer gives 304.
    await db.setStock('chinotto', 7);
    const changed = await waitFor(async () => {
      const r = await menu({ 'if-none-match': etag });
      return r.response.status === 200 ? r : null;
    });
    assert.notEqual(changed.response.headers.get('etag'), etag);
    assert.equal(changed.data?.items.find((i) => i.id === 'chinotto')?.stock, 7);
  });

  it('keeps a cart per visitor: the first write starts a session, PUT sets, 0 and DELETE remove', async () => {
    const visitor = new Browser(cluster.url, 'visitor-agent');
    assert.deepEqual(await cartOf(visitor), { items: [], totalCents: 0 });
    assert.equal(visitor.cookies.size, 0, 'reading starts no session');
    const added = await addToCart(visitor, 'funghi', 2);
    assert.equal(added.response.status, 200);
    assert.equal(visitor.cookies.size, 1, 'the first write sets the session cookie');
    assert.deepEqual(added.data, {
      items: [{ itemId: 'funghi', name: 'Funghi', qty: 2, priceCents: 1100 }],
      totalCents: 2200,
    });
    await addToCart(visitor, 'lemonade', 3);
    await addToCart(visitor, 'funghi', 1);
    const line = (itemId: string) => ({ params: { path: { itemId } } });
    const set = (await visitor.api.PUT('/api/cart/items/{itemId}', { ...line('lemonade'), body: { qty: 1 } })).data;
    assert.deepEqual(
      set?.items.map((l) => [l.itemId, l.qty]),
      [
        ['funghi', 3],
        ['lemonade', 1],
      ],
    );
    assert.equal(set?.totalCents, 3 * 1100 + 350);
    const zero = (await visitor.api.PUT('/api/cart/items/{itemId}', { ...line('lemonade'), body: { qty: 0 } })).data;
    assert.deepEqual(
      zero?.items.map((l) => l.itemId),
      ['funghi'],
    );
    const removed = await visitor.api.DELETE('/api/cart/items/{itemId}', line('funghi'));
    assert.deepEqual(removed.data, { items: [], totalCents: 0 });
    assert.equal(
      (await visitor.api.DELETE('/api/cart/items/{itemId}', line('funghi'))).response.status,
      200,
      'removing a line that is not there is fine',
    );
  });

  it('counts 200 concurrent adds of 1 on one line over 3 servers exactly, up to the stock', async () => {
    await concurrentAdds(cluster, 'adder_pg');
  });

  it('merges the visitor cart into the user cart on sign-in, line by line', async () => {
    const user = await shopper(cluster, 'merger');
    await addToCart(user, 'margherita', 2);
    await addToCart(user, 'funghi', 30);
    assert.equal((await user.api.POST('/api/auth/logout')).response.status, 204);

    const visitor = new Browser(cluster.url, 'shop-test-merger'); // the same person, not signed in
    await addToCart(visitor, 'margherita', 1, 's3');
    await addToCart(visitor, 'funghi', 30, 's3');
    await addToCart(visitor, 'chinotto', 4, 's1');
    const credentials = { username: 'merger', password: PASSWORD };
    const login = await visitor.api.POST('/api/auth/login', { body: credentials, headers: pin('s2') });
    assert.equal(login.response.status, 200);
    const merged = await cartOf(visitor);
    assert.deepEqual(
      merged?.items.map((l) => [l.itemId, l.qty]),
      [
        ['margherita', 3],
        ['funghi', 40], // 30 + 30, brought down to the stock shown
        ['chinotto', 4],
      ],
    );
    // The cart is the user's now: another session of the same user sees it.
    const elsewhere = new Browser(cluster.url, 'another-device');
    assert.equal((await elsewhere.api.POST('/api/auth/login', { body: credentials })).response.status, 200);
    assert.deepEqual(await cartOf(elsewhere), merged);
  });

  it('keeps the cart when the server that wrote it is SIGKILLed', async () => {
    const visitor = new Browser(cluster.url, 'kill-visitor');
    const user = await shopper(cluster, 'survivor');
    assert.equal(servedBy(await addToCart(visitor, 'diavola', 2, 's2')), 's2');
    assert.equal(servedBy(await addToCart(user, 'marinara', 5, 's2')), 's2');
    await cluster.kill('s2');
    try {
      for (const server of ['s1', 's3']) {
        const v = await cartOf(visitor, server);
        assert.deepEqual(
          v?.items.map((l) => [l.itemId, l.qty]),
          [['diavola', 2]],
        );
        const u = await cartOf(user, server);
        assert.deepEqual(
          u?.items.map((l) => [l.itemId, l.qty]),
          [['marinara', 5]],
        );
      }
      assert.equal((await addToCart(user, 'marinara', 1)).data?.items[0]?.qty, 6, 'and it takes writes');
    } finally {
      await cluster.start('s2');
    }
  });

  it('answers bad input with a 4xx and changes nothing', async () => {
    const user = await shopper(cluster, 'careless');
    await addToCart(user, 'capricciosa', 2);
    const before = await cartOf(user);

    // Raw on purpose: every request here but the unknown items' is one the schema (or the parser) refuses.
    const add = (body: unknown) => user.post('/api/cart/items', body); // raw: bodies the schema refuses
    const json = (method: string, path: string, body: string, type = 'application/json') =>
      user.request(method, path, { body, headers: { 'content-type': type } });
    const hawaii = { params: { path: { itemId: 'hawaii' } } };
    const bad: Array<[Promise<Answer>, number, string?]> = [
      [add({ itemId: 'capricciosa', qty: 0 }), 400, 'invalid_input'],
      [add({ itemId: 'capricciosa', qty: 100 }), 400, 'invalid_input'],
      [add({ itemId: 'capricciosa', qty: -1 }), 400, 'invalid_input'],
      [add({ itemId: 'capricciosa', qty: 1.5 }), 400, 'invalid_input'],
      [add({ itemId: 'capricciosa', qty: '1' }), 400, 'invalid_input'],
      [add({ itemId: 'capricciosa' }), 400, 'invalid_input'],
      [add({ qty: 1 }), 400, 'invalid_input'],
      [add({ itemId: 'capricciosa', qty: 1, price: 1 }), 400, 'invalid_input'],
      [add({ itemId: 'Capricciosa!', qty: 1 }), 400, 'invalid_input'],
      [addToCart(user, 'hawaii', 1), 404, 'not_found'],
      [add([]), 400, 'invalid_input'],
      [json('POST', '/api/cart/items', '{"itemId": "capricciosa", "qty": 1'), 400, 'invalid_json'],
      [json('POST', '/api/cart/items', 'itemId=capricciosa&qty=1', 'application/x-www-form-urlencoded'), 415],
      [
        json('POST', '/api/cart/items', JSON.stringify({ itemId: 'capricciosa', qty: 1, pad: 'x'.repeat(70_000) })),
        413,
      ],
      [put(user, '/api/cart/items/capricciosa', { qty: 100 }), 400, 'invalid_input'],
      [put(user, '/api/cart/items/capricciosa', { qty: -1 }), 400, 'invalid_input'],
      [put(user, '/api/cart/items/capricciosa', { qty: 2.5 }), 400, 'invalid_input'],
      [put(user, '/api/cart/items/capricciosa', {}), 400, 'invalid_input'],
      [user.api.PUT('/api/cart/items/{itemId}', { ...hawaii, body: { qty: 1 } }), 404, 'not_found'],
      [user.api.DELETE('/api/cart/items/{itemId}', hawaii), 404, 'not_found'],
      [del(user, `/api/cart/items/${'x'.repeat(65)}`), 400, 'invalid_input'],
    ];
    for (const [pending, status, code] of bad) assertError(await pending, status, code);
    assert.deepEqual(await cartOf(user), before, 'the cart is unchanged');

    // Refused writes start no visitor session either.
    const stranger = new Browser(cluster.url);
    assertError(await addToCart(stranger, 'hawaii', 1), 404, 'not_found');
    assert.equal(stranger.cookies.size, 0);
  });

  it('a line holds at most the stock the menu shows and 99, by adds or a set; a refusal says which and changes nothing', async () => {
    const user = await shopper(cluster, 'hoarder');
    const line = (itemId: string, qty: number) =>
      user.api.PUT('/api/cart/items/{itemId}', { params: { path: { itemId } }, body: { qty } });
    const refusal = (answer: Answer, message: RegExp) => {
      assertError(answer, 409, 'conflict');
      assert.match(statusAndBody(answer).body.error.message, message);
    };
    assert.equal((await line('funghi', 40)).response.status, 200, 'the whole stock (40)');
    refusal(await line('funghi', 41), /would hold 41, but only 40 Funghi left/);
    refusal(await addToCart(user, 'funghi', 1), /would hold 41, but only 40 Funghi left/);

    // With more stock than 99, 99 is the line's limit.
    await db.setStock('marinara', 500);
    await db.setStock('chinotto', 0);
    // Each server reads the menu again after a second: wait until every one shows the new stock.
    const showsNewStock = async (server: string) => {
      const menu = (await user.api.GET('/api/menu', { headers: pin(server) })).data!.items;
      return menu.find((i) => i.id === 'marinara')?.stock === 500 && menu.find((i) => i.id === 'chinotto')?.stock === 0;
    };
    await waitFor(async () => (await Promise.all(SERVERS.map(showsNewStock))).every(Boolean), {
      what: 'the new stock on every server',
      timeoutMs: 15_000,
    });
    assert.equal((await line('marinara', 98)).response.status, 200);
    assert.equal((await addToCart(user, 'marinara', 1)).response.status, 200);
    refusal(await addToCart(user, 'marinara', 1), /a cart line holds at most 99/);
    refusal(await addToCart(user, 'chinotto', 1), /Chinotto is sold out/);
    assert.deepEqual(
      (await cartOf(user))?.items.map((l) => [l.itemId, l.qty]),
      [
        ['marinara', 99],
        ['funghi', 40],
      ],
    );
    const stranger = new Browser(cluster.url);
    refusal(await addToCart(stranger, 'chinotto', 1), /sold out/);
    assert.equal(stranger.cookies.size, 0, 'a refused add starts no visitor session');
  });
});

describe('shop on the redis store (stateless)', () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster({ store: 'redis' });
  });
  after(() => cluster?.stop());

  it('counts 200 concurrent adds of 1 on one line over 3 servers exactly, up to the stock', async () => {
    await concurrentAdds(cluster, 'adder_redis');
  });

  it('keeps the cart when the server that wrote it is SIGKILLed', async () => {
    const visitor = new Browser(cluster.url, 'kill-visitor');
    assert.equal(servedBy(await addToCart(visitor, 'diavola', 2, 's3')), 's3');
    await cluster.kill('s3');
    const cart = await cartOf(visitor);
    assert.deepEqual(
      cart?.items.map((l) => [l.itemId, l.qty]),
      [['diavola', 2]],
    );
  });
});
