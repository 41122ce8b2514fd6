/**
 * A graceful stop under steady load: the balancer stops routing to the draining server, its
 * in-flight requests finish, and no client request fails.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startCluster, type Cluster } from '../support/cluster.ts';
import { Browser, servedBy as serverOf } from '../support/http.ts';
import { waitFor } from '../support/wait.ts';

describe('graceful stop of one server under load', () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster({ env: { SW_LOGIN_LIMIT: '100000', SW_LOGIN_IP_LIMIT: '100000' } });
  });
  after(() => cluster.stop());

  it('drains s2 with zero failed requests', async () => {
    const browser = new Browser(cluster.url);
    const credentials = { username: 'erin', password: 'correct horse battery' };
    assert.equal((await browser.api.POST('/api/auth/register', { body: credentials })).response.status, 201);
    const failures: string[] = [];
    const servedBy = new Map<string, number>();
    let completed = 0;
    let running = true;
    const record = (status: number, server: string | null, what: string) => {
      completed++;
      servedBy.set(server ?? '?', (servedBy.get(server ?? '?') ?? 0) + 1);
      if (status !== 200) failures.push(`${what} -> ${status}`);
    };
    const readers = Array.from({ length: 6 }, async () => {
      while (running) {
        const r = await browser.api.GET('/api/me').catch(() => null);
        record(r?.response.status ?? 0, r && serverOf(r), 'GET /api/me');
      }
    });
    // A writer without an Idempotency-Key: the balancer may not retry it, so it must never fail.
    const writer = (async () => {
      const other = new Browser(cluster.url, 'writer');
      while (running) {
        const r = await other.api.POST('/api/auth/login', { body: credentials }).catch(() => null);
        record(r?.response.status ?? 0, r && serverOf(r), 'POST /api/auth/login');
      }
    })();

    await waitFor(() => completed >= 300, { timeoutMs: 30_000, what: '300 requests before the stop' });
    assert.ok((servedBy.get('s2') ?? 0) > 0, 's2 served traffic before the stop');
    const stop = await cluster.controlApi.POST('/_cluster/servers/{id}/stop', { params: { path: { id: 's2' } } });
    assert.equal(stop.response.status, 202);
    await waitFor(async () => (await cluster.view()).servers.find((s) => s.id === 's2')?.status === 'down', {
      timeoutMs: 20_000,
      what: 's2 to finish draining',
    });
    const atStop = completed;
    await waitFor(() => completed >= atStop + 300, { timeoutMs: 30_000, what: '300 requests after the stop' });
    running = false;
    await Promise.all([...readers, writer]);

    assert.deepEqual(failures, [], 'no request failed');
    assert.ok(completed >= 600);
  });
});
