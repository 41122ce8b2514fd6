/**
 * The stateful design, for contrast: carts (like sessions) live in the memory of the server that
 * wrote them, so SIGKILL of that server loses them, and a restart does not bring them back.
 * The domain code is the same as in stateless mode; only the store chosen at start differs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startCluster, type Cluster } from '../support/cluster.ts';
import { Browser } from '../support/http.ts';
import { addToCart, cartOf, servedBy } from './helpers.ts';

describe('shop in stateful mode', () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster({ mode: 'stateful' });
  });
  after(() => cluster?.stop());

  it('loses the cart with the server that held it', async () => {
    const visitor = new Browser(cluster.url, 'stateful-visitor');
    const written = await addToCart(visitor, 'margherita', 3, 's2');
    assert.equal(written.response.status, 200);
    assert.equal(servedBy(written), 's2');
    assert.equal((await cartOf(visitor, 's2'))?.items[0]?.qty, 3, 'the server that wrote it has it');
    assert.deepEqual(await cartOf(visitor, 's1'), { items: [], totalCents: 0 }, 'another server never had it');

    await cluster.kill('s2');
    const afterKill = await visitor.api.GET('/api/cart');
    assert.equal(afterKill.response.status, 200);
    assert.notEqual(servedBy(afterKill), 's2');
    assert.deepEqual(afterKill.data, { items: [], totalCents: 0 }, 'gone with its server');

    await cluster.start('s2');
    assert.deepEqual(await cartOf(visitor, 's2'), { items: [], totalCents: 0 }, 'a restart does not bring it back');
  });
});
