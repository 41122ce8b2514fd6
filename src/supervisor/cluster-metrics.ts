import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';

/** What the metrics read of each server (the cluster view's fields). */
interface ServerFigures {
  id: string;
  status: string;
  requests: number;
  connections: number;
  rssBytes: number | null;
  sessionsInMemory: number | null;
}

/**
 * The balancer's and supervisor's `GET /metrics` (Prometheus text): per server, the requests the
 * balancer sent it, its open WebSocket tunnels, whether it is up, its memory and the sessions only
 * it holds; and the supervisor process itself. Read from the cluster view at each scrape.
 */
export function clusterMetrics(view: () => { servers: ServerFigures[] }): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const sent = new Map<string, number>();
  const requests = new Counter({
    name: 'statewise_balancer_requests_total',
    help: 'Requests the balancer sent to each server (each retry attempt counts)',
    labelNames: ['server'],
    registers: [registry],
    collect() {
      for (const s of view().servers) {
        const before = sent.get(s.id) ?? 0;
        // Fewer than last time: the server was restarted and its count began again from zero.
        const delta = s.requests >= before ? s.requests - before : s.requests;
        if (delta > 0) requests.inc({ server: s.id }, delta);
        sent.set(s.id, s.requests);
      }
    },
  });
  const perServer = (name: string, help: string, value: (s: ServerFigures) => number | null) =>
    new Gauge({
      name,
      help,
      labelNames: ['server'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of view().servers) {
          const v = value(s);
          if (v !== null) this.set({ server: s.id }, v);
        }
      },
    });
  perServer('statewise_server_up', '1 when the server is up (listening and passing its health check)', (s) =>
    s.status === 'up' ? 1 : 0,
  );
  perServer('statewise_balancer_websocket_tunnels', 'WebSocket tunnels open to each server', (s) => s.connections);
  perServer('statewise_server_resident_bytes', 'Resident memory of each server process', (s) => s.rssBytes);
  perServer(
    'statewise_server_sessions_in_memory',
    'Sessions only that server holds (stateful mode): what its crash loses',
    (s) => s.sessionsInMemory,
  );
  return registry;
}
