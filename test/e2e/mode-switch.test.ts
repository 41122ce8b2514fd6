/**
 * POST /_cluster/mode: the dashboard's switch between the two designs, on a running cluster. Every
 * server drains and restarts in the other mode and the balancer switches policy. Entering stateful
 * mode, the shared store's sessions are not read (the servers know only their own memory) but stay
 * in PostgreSQL; leaving it, what the servers held in memory is lost and the answer counts it. A
 * server SIGKILLed in the middle of the switch does not stop it: every server comes back up.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startCluster, type Cluster, type ClusterView } from '../support/cluster.ts';
import { Browser, servedBy } from '../support/http.ts';
import { waitFor } from '../support/wait.ts';

const PASSWORD = 'correct horse battery';

/** Waits until the cluster is in `mode` and every server was restarted after `since` and is up. */
function switchedSince(cluster: Cluster, mode: ClusterView['mode'], since: number): Promise<ClusterView> {
  return waitFor(
    async () => {
      const view = await cluster.view();
      const restarted = view.servers.every(
        (s) => s.status === 'up' && s.startedAt !== null && Date.parse(s.startedAt) > since,
      );
      return view.mode === mode && restarted ? view : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 100, what: `the cluster ${mode} with every server restarted and up` },
  );
}

/** The dashboard's event log as the event stream replays it (its recent `log` events come first). */
async function eventLog(cluster: Cluster): Promise<string> {
  const abort = new AbortController();
  const { data } = await cluster.controlApi.GET('/_cluster/events', { parseAs: 'stream', signal: abort.signal });
  let text = '';
  const decoder = new TextDecoder();
  for await (const chunk of data!) {
    text += decoder.decode(chunk, { stream: true });
    if (text.includes('event: view')) break;
  }
  abort.abort();
  return text
    .split('\n')
    .filter((line) => line.startsWith('data: {"at"'))
    .map((line) => (JSON.parse(line.slice(6)) as { text: string }).text)
    .join('\n');
}

describe('switching the mode of a running cluster', () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster({ servers: 2 });
  });
  after(() => cluster?.stop());

  it('stateless -> stateful -> stateless: who keeps a session and a cart, and what the answer counts', async () => {
    const alice = new Browser(cluster.url);
    assert.equal(
      (await alice.api.POST('/api/auth/register', { body: { username: 'alice', password: PASSWORD } })).response.status,
      201,
    );
    const added = await alice.api.POST('/api/cart/items', { body: { itemId: 'margherita', qty: 2 } });
    assert.equal(added.response.status, 200);

    // Into stateful.
    let since = Date.now();
    const toStateful = await cluster.controlApi.POST('/_cluster/mode', { body: { mode: 'stateful' } });
    assert.equal(toStateful.response.status, 202);
    assert.deepEqual(toStateful.data, { mode: 'stateful', store: 'memory', servers: ['s1', 's2'], sessionsLost: null });
    const busy = await cluster.controlApi.POST('/_cluster/mode', { body: { mode: 'stateless' } });
    assert.equal(busy.response.status, 409, 'one switch at a time');
    assert.equal((await cluster.controlApi.POST('/_cluster/rolling-restart')).response.status, 409, 'nor a restart');
    const stateful = await switchedSince(cluster, 'stateful', since);
    assert.equal(stateful.store, 'memory');

    assert.equal((await alice.api.GET('/api/me')).response.status, 401, "the shared store's session is not read");
    const bob = new Browser(cluster.url);
    const registered = await bob.api.POST('/api/auth/register', { body: { username: 'bob', password: PASSWORD } });
    assert.equal(registered.response.status, 201);
    const home = servedBy(registered)!;
    assert.equal(bob.cookies.get('sw_server'), home, 'the balancer is sticky now');
    const stuck = await Promise.all(Array.from({ length: 10 }, () => bob.api.GET('/api/me')));
    assert.deepEqual(new Set(stuck.map((r) => `${r.response.status} ${servedBy(r)}`)), new Set([`200 ${home}`]));
    assert.equal((await bob.api.POST('/api/cart/items', { body: { itemId: 'diavola', qty: 1 } })).response.status, 200);
    // The count the next answer gives comes from the servers' readiness checks: wait for bob's.
    await waitFor(async () => (await cluster.view()).servers.reduce((n, s) => n + (s.sessionsInMemory ?? 0), 0) >= 1, {
      what: "bob's session counted in memory",
    });

    // Back to stateless, with a server SIGKILLed while the switch drains.
    since = Date.now();
    const toStateless = await cluster.controlApi.POST('/_cluster/mode', { body: { mode: 'stateless' } });
    assert.equal(toStateless.response.status, 202);
    assert.equal(toStateless.data?.store, 'postgres');
    assert.equal(toStateless.data?.sessionsLost, 1, "bob's session, held only in memory");
    assert.equal(
      (await cluster.controlApi.POST('/_cluster/servers/{id}/kill', { params: { path: { id: home } } })).response
        .status,
      202,
    );
    await switchedSince(cluster, 'stateless', since);

    assert.equal((await bob.api.GET('/api/me')).response.status, 401, "bob's session died with the servers' memory");
    const back = await Promise.all(Array.from({ length: 4 }, () => alice.api.GET('/api/me')));
    assert.deepEqual(
      back.map((r) => r.response.status),
      [200, 200, 200, 200],
      "alice's session waited in PostgreSQL",
    );
    assert.deepEqual(new Set(back.map(servedBy)), new Set(['s1', 's2']), 'round robin again');
    const cart = await alice.api.GET('/api/cart');
    assert.deepEqual(
      cart.data?.items.map((i) => [i.itemId, i.qty]),
      [['margherita', 2]],
      'and so did her cart',
    );
    const log = await eventLog(cluster);
    assert.match(log, /switching to stateful: s1, s2 drain and restart\n/);
    assert.match(log, /switching to stateless: s1, s2 drain and restart; 1 sessions lost with their memory/);
    assert.match(log, /now stateless: session state in postgres, round-robin balancing/);
  });
});
