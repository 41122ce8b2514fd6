/**
 * The stateful design, for contrast: carts (like sessions) live in the memory of the server that
 * wrote them, so SIGKILL of that server loses them, and a restart does not bring them back.
 * The domain code is the same as in stateless mode; only the store chosen at start differs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startCluster, type Cluster } from '../support/cluster.ts';
import { Browser } from '../support/http.ts';
import { pin } from './helpers.ts';

describe('shop in stateful mode', () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster({ mode: 'stateful' });
  });
  after(() => cluster?.stop());

  it('loses the cart with the server that held it', async () => {
    const visitor = new Browser(cluster.url, 'stateful-visitor');
    const written = await visitor.post('/api/cart/items', { itemId: 'margherita', qty: 3 }, pin('s2'));
    assert.equal(written.status, 200);
    assert.equal(written.servedBy, 's2');
    const kept = await visitor.get('/api/cart', pin('s2'));
    assert.equal(kept.body.items[0].qty, 3, 'the server that wrote it has it');
    const elsewhere = await visitor.get('/api/cart', pin('s1'));
    assert.deepEqual(elsewhere.body, { items: [], totalCents: 0 }, 'another server never had it');

    await cluster.kill('s2');
    const afterKill = await visitor.get('/api/cart');
    assert.equal(afterKill.status, 200);
    assert.notEqual(afterKill.servedBy, 's2');
    assert.deepEqual(afterKill.body, { items: [], totalCents: 0 }, 'gone with its server');

    await cluster.start('s2');
    assert.deepEqual(
      (await visitor.get('/api/cart', pin('s2'))).body,
      { items: [], totalCents: 0 },
      'a restart does not bring it back',
    );
  });
});
