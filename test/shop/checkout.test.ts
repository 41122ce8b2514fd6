/**
 * Checkout end to end: POST /api/orders (Idempotency-Key) answers 202 with a pending order, and a
 * saga on the durable queue reserves stock, charges the bank account and confirms, or cancels and
 * undoes what it did. Under contention it never oversells; under payment failures and SIGKILL of a
 * server in the middle of sagas, every order still ends confirmed (charged once, stock taken once)
 * or cancelled (net charge 0, stock back), none left pending.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startCluster, type Cluster } from '../support/cluster.ts';
import { Browser } from '../support/http.ts';
import { waitFor } from '../support/wait.ts';
import {
  addToCart,
  bounded,
  cartOf,
  checkout,
  pin,
  records,
  servedBy,
  settled,
  shopper,
  type Records,
} from './helpers.ts';

const OPENING = 100_000;

async function bankOf(b: Browser) {
  const transactions = (await b.api.GET('/api/bank/transactions')).data!.transactions;
  return {
    balance: (await b.api.GET('/api/bank/account')).data!.balanceCents,
    charges: transactions.filter((t) => t.kind === 'order_charge'),
    refunds: transactions.filter((t) => t.kind === 'order_refund'),
  };
}

describe('checkout', () => {
  let cluster: Cluster;
  let db: Records;
  before(async () => {
    // Each saga step pauses 200 ms inside its transaction, so a SIGKILL can land mid-step.
    cluster = await startCluster({ env: { SW_SAGA_STEP_DELAY_MS: '200', SW_LOGIN_LIMIT: '1000' } });
    db = records(cluster);
  });
  after(async () => {
    await db?.close();
    await cluster?.stop();
  });

  it('takes an order through the saga: 202 pending, then confirmed, charged once, stock taken, cart emptied', async () => {
    const stranger = new Browser(cluster.url);
    assert.equal((await checkout(stranger)).response.status, 401);
    const alice = await shopper(cluster, 'alice');
    // raw: without the required Idempotency-Key, which the typed client would not let be left out
    const noKey = await alice.post('/api/orders', {});
    assert.equal(noKey.status, 400);
    assert.equal(noKey.body.error.code, 'idempotency_key_required');
    const empty = await checkout(alice, 'empty-cart');
    assert.equal(empty.response.status, 400);
    assert.equal(empty.error?.error.code, 'invalid_input');

    const stockBefore = { funghi: await db.stock('funghi'), lemonade: await db.stock('lemonade') };
    await addToCart(alice, 'funghi', 2);
    await addToCart(alice, 'lemonade', 1);
    const placed = await checkout(alice, 'order-1', pin('s1'));
    assert.equal(placed.response.status, 202, JSON.stringify(placed.error));
    const order = placed.data!.order;
    assert.equal(order.status, 'pending');
    assert.equal(order.totalCents, 2 * 1100 + 350);
    assert.deepEqual(order.items, [
      { itemId: 'funghi', name: 'Funghi', qty: 2, priceCents: 1100 },
      { itemId: 'lemonade', name: 'Lemonade', qty: 1, priceCents: 350 },
    ]);

    // The same key again, on another server: the first answer, and no second order.
    const replay = await checkout(alice, 'order-1', pin('s3'));
    assert.equal(replay.response.status, 202);
    assert.equal(replay.response.headers.get('idempotent-replayed'), 'true');
    assert.equal(replay.data?.order.id, order.id);

    const orderOf = (b: Browser, id: string) => b.api.GET('/api/orders/{id}', { params: { path: { id } } });
    const confirmed = await waitFor(
      async () => {
        const r = await orderOf(alice, order.id);
        return r.data?.order.status !== 'pending' ? r.data?.order : null;
      },
      { timeoutMs: 30_000, what: 'the order to leave pending' },
    );
    assert.equal(confirmed?.status, 'confirmed');
    assert.equal(confirmed?.reason, undefined);
    const bank = await bankOf(alice);
    assert.deepEqual(
      bank.charges.map((t) => t.amountCents),
      [order.totalCents],
    );
    assert.equal(bank.refunds.length, 0);
    assert.equal(bank.balance, OPENING - order.totalCents);
    assert.equal(await db.stock('funghi'), stockBefore.funghi - 2);
    assert.equal(await db.stock('lemonade'), stockBefore.lemonade - 1);
    await waitFor(async () => (await cartOf(alice))?.items.length === 0, {
      what: 'the ordered lines to leave the cart',
    });

    // A second order; the list is newest first. Nobody else sees either order.
    await addToCart(alice, 'chinotto', 1);
    const second = (await checkout(alice, 'order-2')).data!.order;
    const list = (await alice.api.GET('/api/orders')).data!.orders;
    assert.deepEqual(
      list.map((o) => o.id),
      [second.id, order.id],
    );
    const bob = await shopper(cluster, 'bob');
    assert.equal((await orderOf(bob, order.id)).response.status, 404);
    assert.equal((await orderOf(bob, 'not-a-uuid')).response.status, 404);
    assert.deepEqual((await bob.api.GET('/api/orders')).data, { orders: [] });
    assert.equal((await orderOf(alice, randomUUID())).response.status, 404);
  });

  it('refuses a second checkout while the first is pending (409, no second order), also when they arrive together', async () => {
    const dave = await shopper(cluster, 'dave');
    await addToCart(dave, 'margherita', 1);
    // Four clicks with four keys at once, over every server: the cart still holds the lines of the
    // pending order (they leave it on confirm), so each extra order would buy them again.
    const placed = await Promise.all(['s1', 's2', 's3', 's1'].map((s) => checkout(dave, randomUUID(), pin(s))));
    const statuses = placed.map((r) => r.response.status).sort();
    assert.deepEqual(statuses, [202, 409, 409, 409], JSON.stringify(placed.map((r) => r.error)));
    for (const refused of placed.filter((r) => r.response.status === 409)) {
      assert.equal(refused.error?.error.code, 'conflict');
      assert.match(refused.error!.error.message, /still being placed/);
    }
    const id = placed.find((r) => r.response.status === 202)!.data!.order.id;
    const [row] = await settled(db, [id], 30_000);
    assert.equal(row?.status, 'confirmed');
    assert.equal(
      (await db.query('SELECT 1 FROM orders o JOIN users u ON u.id = o.user_id WHERE u.username = $1', ['dave']))
        .length,
      1,
    );
    // Settled, the next checkout is taken again (its cart has a new line).
    await addToCart(dave, 'lemonade', 1);
    assert.equal((await checkout(dave)).response.status, 202);
  });

  it('sells 10 units to 30 buyers exactly once each: 10 confirmed, 20 out_of_stock, stock never below 0', async () => {
    await db.setStock('quattro-formaggi', 10);
    const buyers = await bounded(30, 5, async (i) => {
      const b = await shopper(cluster, `buyer${i}`);
      assert.equal((await addToCart(b, 'quattro-formaggi', 1)).response.status, 200);
      return b;
    });

    let lowest = Infinity;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        lowest = Math.min(lowest, await db.stock('quattro-formaggi'));
        await new Promise((resolve) => setTimeout(resolve, 50)); // sampling pace, not synchronisation
      }
    })();
    try {
      const placed = await Promise.all(buyers.map((b) => checkout(b)));
      assert.deepEqual(
        new Set(placed.map((r) => r.response.status)),
        new Set([202]),
        JSON.stringify(
          placed.filter((r) => r.response.status !== 202).map((r) => [r.response.status, servedBy(r), r.error]),
        ),
      );
      const rows = await settled(
        db,
        placed.map((r) => r.data!.order.id),
        30_000,
      );
      const confirmed = rows.filter((r) => r.status === 'confirmed');
      assert.equal(confirmed.length, 10);
      assert.ok(rows.filter((r) => r.status === 'cancelled').every((r) => r.reason === 'out_of_stock'));
      assert.equal(await db.stock('quattro-formaggi'), 0);
      const [charges] = await db.query<{ n: string }>(
        "SELECT count(*) AS n FROM ledger WHERE kind = 'order_charge' AND user_id = ANY($1::uuid[])",
        [rows.map((r) => r.user_id)],
      );
      assert.equal(Number(charges!.n), 10, 'only the 10 buyers who got one paid');
    } finally {
      sampling = false;
      await sampler;
    }
    assert.ok(lowest >= 0, `stock seen at ${lowest}`);
  });

  it('ends every saga confirmed or cancelled with payment failures and a server SIGKILLed mid-saga', async () => {
    await db.setStock('margherita', 100);
    await db.setStock('lemonade', 100);
    const stockBefore = { margherita: 100, lemonade: 100 };
    const total = 900 + 350;
    // 20 buyers; every fifth (20 %) has 500 cents left, too little for the order.
    const buyers = await bounded(20, 5, async (i) => {
      const b = await shopper(cluster, `faulty${i}`);
      const poor = i % 5 === 0;
      if (poor) {
        const w = await b.api.POST('/api/bank/withdraw', {
          body: { amountCents: OPENING - 500 },
          params: { header: { 'Idempotency-Key': `drain-${i}` } },
        });
        assert.equal(w.response.status, 200, JSON.stringify(w.error));
      }
      await addToCart(b, 'margherita', 1);
      await addToCart(b, 'lemonade', 1);
      return { b, poor };
    });

    // Every checkout lands on s2, which wakes its own worker: s2 takes part of the sagas.
    const placed = await Promise.all(buyers.map(({ b }) => checkout(b, randomUUID(), pin('s2'))));
    assert.deepEqual(new Set(placed.map((r) => r.response.status)), new Set([202]));
    const ids = placed.map((r) => r.data!.order.id);

    // Kill s2 while it is in the middle of a saga step, for certain: freeze s2 (SIGSTOP), then look
    // for a saga row that s2's database session holds locked right now (the row's xmax is the
    // locker's transaction id; pg_stat_activity names its server). Frozen, s2 cannot commit that
    // step before the SIGKILL lands; when it holds none, it runs on and we look again.
    const s2pid = (await cluster.view()).servers.find((s) => s.id === 's2')!.pid!;
    const midway = await waitFor(
      async () => {
        process.kill(s2pid, 'SIGSTOP');
        let locked: string | undefined;
        try {
          const [row] = await db.query<{ order_id: string }>(
            `SELECT s.order_id FROM checkout_sagas s JOIN pg_stat_activity a ON a.backend_xid = s.xmax
             WHERE s.order_id = ANY($1::uuid[]) AND a.application_name = 'statewise-s2' LIMIT 1`,
            [ids],
          );
          locked = row?.order_id;
        } finally {
          if (!locked) process.kill(s2pid, 'SIGCONT');
        }
        return locked;
      },
      { timeoutMs: 15_000, intervalMs: 20, what: 's2 frozen inside a saga step' },
    );
    const killedAt = Date.now();
    await cluster.kill('s2');
    const pendingAtKill = (
      await db.query("SELECT 1 FROM orders WHERE id = ANY($1::uuid[]) AND status = 'pending'", [ids])
    ).length;
    await cluster.start('s2');

    const rows = await settled(db, ids, Math.max(1_000, 30_000 - (Date.now() - killedAt)));
    const seconds = ((Date.now() - killedAt) / 1000).toFixed(1);
    process.stderr.write(
      `saga fault test: ${pendingAtKill} of 20 pending at the kill; all settled ${seconds} s after it\n`,
    );

    const byId = new Map(rows.map((r) => [r.id, r]));
    let confirmedCount = 0;
    for (const [i, { b, poor }] of buyers.entries()) {
      const order = byId.get(ids[i]!)!;
      const bank = await bankOf(b);
      if (poor) {
        assert.equal(order.status, 'cancelled', `buyer ${i}`);
        assert.equal(order.reason, 'payment_failed');
        assert.equal(bank.charges.length, bank.refunds.length, 'net charge 0');
        assert.equal(bank.balance, 500);
        assert.equal((await cartOf(b))?.items.length, 2, 'a cancelled order leaves the cart as it was');
      } else {
        assert.equal(order.status, 'confirmed', `buyer ${i}: ${order.status} ${order.reason}`);
        assert.deepEqual(
          bank.charges.map((t) => t.amountCents),
          [total],
          'charged once',
        );
        assert.equal(bank.refunds.length, 0);
        assert.equal(bank.balance, OPENING - total);
        confirmedCount++;
      }
    }
    assert.equal(confirmedCount, 16);
    assert.equal(
      await db.stock('margherita'),
      stockBefore.margherita - 16,
      'stock taken once per confirmed order, released for the rest',
    );
    assert.equal(await db.stock('lemonade'), stockBefore.lemonade - 16);

    // Each step committed once per order (the step log's key guarantees it; check the shape).
    const steps = await db.query<{ order_id: string; steps: string[] }>(
      'SELECT order_id, array_agg(step ORDER BY at) AS steps FROM checkout_saga_steps WHERE order_id = ANY($1::uuid[]) GROUP BY order_id',
      [ids],
    );
    for (const { order_id, steps: done } of steps) {
      const expected =
        byId.get(order_id)!.status === 'confirmed'
          ? ['reserve', 'charge', 'confirm']
          : ['reserve', 'charge', 'compensate'];
      assert.deepEqual(done, expected);
    }
    // The saga s2 was in the middle of was finished through the queue's redelivery.
    const [job] = await db.query<{ state: string; retry_count: number }>(
      "SELECT state, retry_count FROM pgboss.job WHERE name = 'checkout' AND id = $1",
      [midway],
    );
    assert.equal(job?.state, 'completed');
    assert.ok(job!.retry_count >= 1, 'delivered again after the kill');
    const open = await db.query(
      "SELECT id FROM pgboss.job WHERE name = 'checkout' AND state <> 'completed' AND id = ANY($1::uuid[])",
      [ids],
    );
    assert.deepEqual(open, [], 'no job left behind');
  });

  it('lets a gracefully stopped server finish the saga step it is running', async () => {
    const carol = await shopper(cluster, 'carol');
    await addToCart(carol, 'marinara', 1);
    const order = (await checkout(carol, randomUUID(), pin('s1'))).data!.order;
    // The server running this saga (usually s1, which took the checkout and woke its worker; another
    // server's poll may get there first) committed a step and is running the next: stop it now.
    const runner = await waitFor(
      async () => {
        const rows = await db.query<{ server_id: string }>(
          'SELECT server_id FROM checkout_saga_steps WHERE order_id = $1',
          [order.id],
        );
        return rows.length === 1 ? rows[0]!.server_id : undefined;
      },
      { timeoutMs: 15_000, what: 'a server to be in the middle of the saga' },
    );
    const stopped = await cluster.controlApi.POST('/_cluster/servers/{id}/stop', { params: { path: { id: runner } } });
    assert.equal(stopped.response.status, 202);
    await waitFor(async () => (await cluster.view()).servers.find((s) => s.id === runner)?.status === 'down', {
      timeoutMs: 20_000,
      what: `${runner} to stop`,
    });
    const steps = await db.query<{ step: string; server_id: string }>(
      'SELECT step, server_id FROM checkout_saga_steps WHERE order_id = $1 ORDER BY at',
      [order.id],
    );
    assert.deepEqual(
      steps,
      [
        { step: 'reserve', server_id: runner },
        { step: 'charge', server_id: runner },
        { step: 'confirm', server_id: runner },
      ],
      'shutdown waited for the saga instead of cutting it',
    );
    const done = await carol.api.GET('/api/orders/{id}', { params: { path: { id: order.id } } });
    assert.equal(done.data?.order.status, 'confirmed');
    await cluster.start(runner);
  });

  it('documents the shop routes in the OpenAPI document', async () => {
    const doc = (await new Browser(cluster.url).get('/docs/json')).body;
    for (const path of [
      '/api/menu',
      '/api/cart',
      '/api/cart/items',
      '/api/cart/items/{itemId}',
      '/api/orders',
      '/api/orders/{id}',
    ]) {
      assert.ok(doc.paths[path], `${path} in /docs/json`);
    }
  });
});
