/** The balancer's per-server request counter: monotonic across a server's restart. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clusterMetrics } from '../../src/supervisor/cluster-metrics.ts';

const server = (id: string, requests: number) => ({
  id,
  status: 'up',
  requests,
  connections: 0,
  rssBytes: null,
  sessionsInMemory: null,
});

async function requestsOf(registry: ReturnType<typeof clusterMetrics>, id: string): Promise<number> {
  const text = await registry.metrics();
  const line = new RegExp(`^statewise_balancer_requests_total\\{server="${id}"\\} (\\d+)$`, 'm').exec(text);
  return line ? Number(line[1]) : 0;
}

describe('cluster metrics', () => {
  it('counts what the balancer sent to each server, and keeps counting after a restart resets it', async () => {
    let servers = [server('s1', 10), server('s2', 4)];
    const registry = clusterMetrics(() => ({ servers }));
    assert.equal(await requestsOf(registry, 's1'), 10);
    assert.equal(await requestsOf(registry, 's2'), 4);
    servers = [server('s1', 25), server('s2', 3)]; // s2 restarted: a new process, counted from 0
    assert.equal(await requestsOf(registry, 's1'), 25);
    assert.equal(await requestsOf(registry, 's2'), 7);
  });
});
