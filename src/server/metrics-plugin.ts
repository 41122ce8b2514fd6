import fp from 'fastify-plugin';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { addressMatcher } from '../config/address-list.ts';
import { AppError } from '../kernel/errors.ts';
import { periodicFailures } from '../kernel/periodic.ts';
import type { StateStore } from '../state/types.ts';
import type { StoreMetrics } from './store-metrics.ts';

export interface MetricsDeps {
  config: { serverId: string; metricsFrom: string[] };
  state: StateStore;
  storeMetrics: StoreMetrics;
}

/** Adds what a counter's source has counted since the last scrape (sources that only count up). */
function catchUp(counter: Counter<string>, seen: Map<string, number>, label: string, now: Iterable<[string, number]>) {
  for (const [key, value] of now) {
    const delta = value - (seen.get(key) ?? 0);
    if (delta > 0) counter.inc({ [label]: key }, delta);
    seen.set(key, value);
  }
}

/**
 * `GET /metrics` in Prometheus text format (prom-client, one registry per app): requests by route
 * and status, latency, session-state store operations by backend (time, failures), idempotent
 * replays, rate-limit refusals, checkout outcomes, open WebSockets and the closes the server
 * decided, failures of periodic tasks, sessions held in memory, near-cache reads, and the process.
 * Answered only to a scraper asking directly from SW_METRICS_FROM (default loopback), never
 * through a balancer (a request with X-Forwarded-For): the public may not read it.
 */
export const metricsPlugin = fp<MetricsDeps>(
  async (app, { config, state, storeMetrics }) => {
    const registry = new Registry();
    registry.setDefaultLabels({ server: config.serverId });
    collectDefaultMetrics({ register: registry });
    for (const metric of storeMetrics.metrics) registry.registerMetric(metric);
    const allowed = addressMatcher(config.metricsFrom);

    const requests = new Counter({
      name: 'statewise_http_requests_total',
      help: 'HTTP requests answered, by route and status',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    });
    const latency = new Histogram({
      name: 'statewise_http_request_duration_seconds',
      help: 'Time to answer, by route',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    });
    const replays = new Counter({
      name: 'statewise_idempotent_replays_total',
      help: 'Answers replayed for a repeated Idempotency-Key',
      labelNames: ['route'],
      registers: [registry],
    });
    const refused = new Counter({
      name: 'statewise_rate_limited_total',
      help: 'Requests refused by a rate limit (429)',
      labelNames: ['route'],
      registers: [registry],
    });
    const closesSeen = new Map<string, number>();
    const closes = new Counter({
      name: 'statewise_websocket_server_closes_total',
      help: 'WebSockets this server closed, by close code (4001 signed out, 4008 slow, 4029 flooding, 1001 stopping)',
      labelNames: ['code'],
      registers: [registry],
      collect() {
        const realtime = app.hasDecorator('realtime') ? app.realtime : undefined;
        if (realtime) catchUp(closes, closesSeen, 'code', realtime.closesByCode());
      },
    });
    new Gauge({
      name: 'statewise_websocket_connections',
      help: 'WebSockets open on this server',
      registers: [registry],
      collect() {
        this.set(app.hasDecorator('realtime') ? app.realtime.connections() : 0);
      },
    });
    const outcomesSeen = new Map<string, number>();
    const outcomes = new Counter({
      name: 'statewise_checkout_outcomes_total',
      help: 'Checkout sagas this server ended, by outcome: confirmed, or cancelled and why (out_of_stock: nothing was taken; payment_failed: the done steps were undone)',
      labelNames: ['outcome'],
      registers: [registry],
      collect() {
        if (app.hasDecorator('shop')) catchUp(outcomes, outcomesSeen, 'outcome', app.shop.sagaOutcomes());
      },
    });
    const failuresSeen = new Map<string, number>();
    const failures = new Counter({
      name: 'statewise_periodic_task_failures_total',
      help: 'Failures of background work, by task',
      labelNames: ['task'],
      registers: [registry],
      collect() {
        catchUp(failures, failuresSeen, 'task', periodicFailures);
      },
    });
    new Gauge({
      name: 'statewise_sessions_in_memory',
      help: 'Live sessions only this server holds (memory store): what its crash loses; absent when shared',
      registers: [registry],
      collect() {
        const held = state.sessionsInMemory();
        if (held !== null) this.set(held);
      },
    });
    const cacheSeen = new Map<string, number>();
    const cacheReads = new Counter({
      name: 'statewise_near_cache_reads_total',
      help: "Reads of shared session state through this server's near cache: hit, miss, or bypass (invalidations not flowing)",
      labelNames: ['result'],
      registers: [registry],
      collect() {
        const stats = state.nearCacheStats();
        if (!stats) return;
        catchUp(
          cacheReads,
          cacheSeen,
          'result',
          Object.entries({ hit: stats.hits, miss: stats.misses, bypass: stats.bypassed }),
        );
      },
    });
    new Gauge({
      name: 'statewise_near_cache_entries',
      help: "Entries in this server's near cache (absent without one: the memory store)",
      registers: [registry],
      collect() {
        const stats = state.nearCacheStats();
        if (stats) this.set(stats.size);
      },
    });

    // The labelled children, made once per method, route and status: prom-client checks every
    // label on each inc() given an object, a few per cent of a cached GET's time.
    const children = new Map<
      string,
      { count: ReturnType<typeof requests.labels>; time: ReturnType<typeof latency.labels> }
    >();
    app.addHook('onResponse', async (request, reply) => {
      if (request.url === '/metrics') return;
      const route = request.routeOptions.url ?? 'unmatched';
      const key = `${request.method} ${reply.statusCode} ${route}`;
      let child = children.get(key);
      if (!child) {
        const labels = { method: request.method, route };
        child = {
          count: requests.labels({ ...labels, status: String(reply.statusCode) }),
          time: latency.labels(labels),
        };
        children.set(key, child);
      }
      child.count.inc();
      child.time.observe(reply.elapsedTime / 1000);
      if (reply.getHeader('idempotent-replayed') === 'true') replays.inc({ route });
      if (reply.statusCode === 429) refused.inc({ route });
    });

    app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
      if (request.headers['x-forwarded-for'] !== undefined || !allowed(request.socket.remoteAddress ?? '')) {
        throw new AppError('not_found', 'There is nothing here.');
      }
      reply.header('cache-control', 'no-store').type(registry.contentType);
      return registry.metrics();
    });
  },
  { name: 'metrics', fastify: '5.x' },
);
