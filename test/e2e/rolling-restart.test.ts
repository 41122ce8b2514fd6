/**
 * POST /_cluster/rolling-restart: every server drained and restarted, one at a time. Under load in
 * stateless mode no request fails; in stateful mode every session dies with its server's memory,
 * and the answer says how many beforehand.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startCluster, type Cluster, type ClusterView } from '../support/cluster.ts';
import { Browser } from '../support/http.ts';
import { waitFor } from '../support/wait.ts';

const LIMITS = { SW_LOGIN_LIMIT: '100000', SW_LOGIN_IP_LIMIT: '100000' };

/** Waits until every server listed was restarted after `since` and is up again. */
async function restartedSince(cluster: Cluster, ids: string[], since: number): Promise<ClusterView> {
  return waitFor(
    async () => {
      const view = await cluster.view();
      const done = ids.every((id) => {
        const s = view.servers.find((v) => v.id === id);
        return s?.status === 'up' && s.startedAt !== null && Date.parse(s.startedAt) > since;
      });
      return done ? view : undefined;
    },
    { timeoutMs: 90_000, intervalMs: 100, what: 'every server restarted and up' },
  );
}

describe('rolling restart, stateless', () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster({ env: LIMITS });
  });
  after(() => cluster?.stop());

  it('restarts every server under load with zero failed requests', async () => {
    const browser = new Browser(cluster.url);
    const registered = await browser.api.POST('/api/auth/register', {
      body: { username: 'rolly', password: 'correct horse battery' },
    });
    assert.equal(registered.response.status, 201);
    const failures: string[] = [];
    let completed = 0;
    let running = true;
    const readers = Array.from({ length: 4 }, async () => {
      while (running) {
        const r = await browser.api.GET('/api/me').catch((e: Error) => ({ response: { status: 0 }, error: e.message }));
        completed++;
        if (r.response.status !== 200) failures.push(`GET /api/me -> ${r.response.status} ${JSON.stringify(r.error)}`);
      }
    });
    await waitFor(() => completed >= 200, { what: '200 requests first' });

    const since = Date.now();
    const answer = await cluster.controlApi.POST('/_cluster/rolling-restart');
    assert.equal(answer.response.status, 202);
    assert.deepEqual(answer.data, { servers: ['s1', 's2', 's3'], sessionsAtRisk: null });
    const again = await cluster.controlApi.POST('/_cluster/rolling-restart');
    assert.equal(again.response.status, 409, 'one rolling restart at a time');

    await restartedSince(cluster, ['s1', 's2', 's3'], since);
    // The balancer's own metrics see it all (asked from loopback, as the cluster API allows); the
    // server restarted last may not have had a request yet when the restart ends.
    const seen = (metrics: string) =>
      ['s1', 's2', 's3'].every(
        (id) =>
          new RegExp(`^statewise_server_up\\{server="${id}"\\} 1$`, 'm').test(metrics) &&
          new RegExp(`^statewise_balancer_requests_total\\{server="${id}"\\} [1-9]\\d*$`, 'm').test(metrics),
      );
    await waitFor(async () => seen(await (await fetch(`${cluster.url}/metrics`)).text()), {
      what: 'every server up and sent requests, in the balancer metrics',
    });
    const atEnd = completed;
    await waitFor(() => completed >= atEnd + 100, { what: '100 requests after' });
    running = false;
    await Promise.all(readers);
    assert.deepEqual(failures, []);
  });
});

describe('rolling restart, stateful', () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster({ mode: 'stateful', env: LIMITS });
  });
  after(() => cluster?.stop());

  it('says how many sessions it will lose, and loses them', async () => {
    const browsers = Array.from({ length: 6 }, (_, i) => new Browser(cluster.url, `rolling-${i}`));
    for (const [i, b] of browsers.entries()) {
      const body = { username: `stateful_${i}`, password: 'correct horse battery' };
      assert.equal((await b.api.POST('/api/auth/register', { body })).response.status, 201);
    }
    // The balancer learns each server's count from its readiness checks.
    await waitFor(
      async () =>
        (
          (await cluster.view()) as ClusterView & { servers: Array<{ sessionsInMemory: number | null }> }
        ).servers.reduce((n, s) => n + (s.sessionsInMemory ?? 0), 0) >= 6,
      { what: 'the servers to report 6 sessions' },
    );
    const since = Date.now();
    const answer = await cluster.controlApi.POST('/_cluster/rolling-restart');
    assert.equal(answer.response.status, 202);
    const body = answer.data!;
    assert.deepEqual(body.servers, ['s1', 's2', 's3']);
    assert.ok((body.sessionsAtRisk ?? 0) >= 6, `${body.sessionsAtRisk} sessions at risk`);
    await restartedSince(cluster, body.servers, since);
    for (const b of browsers)
      assert.equal((await b.api.GET('/api/me')).response.status, 401, 'the session died with its server');
  });
});
