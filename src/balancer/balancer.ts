import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyPluginAsync } from 'fastify';
import { pino } from 'pino';
import { Agent } from 'undici';
import { frameworkErrorReply, installErrorHandling, STRICT_VALIDATION } from '../kernel/http-errors.ts';
import { HealthChecks } from './health-checks.ts';
import { createHttpProxy } from './http-proxy.ts';
import type { BalancePolicy } from './policies.ts';
import { UpstreamSet, type Upstream } from './upstreams.ts';
import { UpgradeProxy } from './ws-proxy.ts';

export type { Upstream } from './upstreams.ts';
export type { BalancePolicy } from './policies.ts';

export interface BalancerOptions {
  /** 0 = any free port. */
  port: number;
  /** @default '127.0.0.1' */
  host?: string;
  policy: BalancePolicy;
  /** @default 500 */
  healthIntervalMs?: number;
  /** @default a pino logger at level warn (nothing per request); false for none. */
  logger?: FastifyBaseLogger | false;
  /** Routes served by the balancer itself, e.g. the supervisor's /_cluster API: never proxied. */
  control?: ControlRoutes;
  /** Largest request body forwarded. @default 1 MiB */
  bodyLimit?: number;
}

export interface ControlRoutes {
  plugin: FastifyPluginAsync;
  /** Paths that belong to the control routes, e.g. '/_cluster' (itself and everything under it). */
  prefixes: readonly string[];
}

export interface Balancer {
  url: string;
  /** Replaces the set; ids that stay (at the same URL) keep their health state. */
  setUpstreams(list: readonly Upstream[]): void;
  /** Routes by `policy` from the next request on (the supervisor switching the cluster's mode). */
  setPolicy(policy: BalancePolicy): void;
  /** The supervisor knows a server died (SIGKILL) or is draining: stop routing to it at once. */
  markDown(id: string): void;
  /** `requests` and `connections` (open WebSocket tunnels) feed GET /_cluster. */
  health(): Array<{
    id: string;
    healthy: boolean;
    requests: number;
    connections: number;
    sessionsInMemory: number | null;
  }>;
  close(): Promise<void>;
}

/** Pool for proxied requests: keep-alive connections to every upstream, shared by all requests. */
const PROXY_POOL = {
  connections: 128,
  pipelining: 1,
  // On one machine a connect answers at once or is refused; a slow one means the server is stuck.
  connect: { timeout: 2000 },
  // A server cut off by the network answers nothing and closes nothing: without a bound a request
  // already sent to it would wait undici's default 300 s (seen in the network-partition test).
  headersTimeout: 30_000,
} as const;

function loggerFrom(option: FastifyBaseLogger | false | undefined): FastifyBaseLogger {
  if (option === false) return pino({ enabled: false });
  return option ?? pino({ level: 'warn' });
}

function publicUrl(host: string | undefined, port: number): string {
  // A wildcard address is not somewhere to send requests: name the loopback instead.
  const name = host === undefined || host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `http://${name.includes(':') ? `[${name}]` : name}:${port}`;
}

/** Whether a request target is under one of the prefixes (the path itself, or below it). */
function underPrefix(url: string, prefixes: readonly string[]): boolean {
  for (const prefix of prefixes) {
    if (!url.startsWith(prefix)) continue;
    const next = url.charCodeAt(prefix.length);
    if (Number.isNaN(next) || next === 47 /* / */ || next === 63 /* ? */) return true;
  }
  return false;
}

/**
 * The load balancer for one machine: a node:http server whose hot path streams into undici's
 * connection pools (http-proxy.ts), and Fastify for the control routes only. Round robin
 * (stateless mode) or sticky by cookie (stateful mode); health checks on /readyz and passive
 * failure detection; requests safe to repeat are retried on another server when a connection
 * fails before any answer; WebSocket upgrades are piped to the chosen server.
 */
export async function createBalancer(options: BalancerOptions): Promise<Balancer> {
  const log = loggerFrom(options.logger);
  const bodyLimit = options.bodyLimit ?? 1024 * 1024;
  // A silent server's waiting requests move on (or get their 504) and its tunnels close at once,
  // rather than each waiting for its own timeout.
  const upstreams = new UpstreamSet(log, (upstream) => {
    const requests = proxy.abandon(upstream);
    const sockets = tunnels.closeTo(upstream);
    if (requests + sockets > 0)
      log.warn(
        { server: upstream.id, requests, sockets },
        `${upstream.id} went silent: ${requests} waiting requests moved or answered 504, ${sockets} WebSockets closed`,
      );
  });
  const agent = new Agent(PROXY_POOL);
  let policy = options.policy;
  const currentPolicy = () => policy;
  const tunnels = new UpgradeProxy(upstreams, currentPolicy);
  const proxy = createHttpProxy({
    upstreams,
    policy: currentPolicy,
    agent,
    bodyLimit,
    onError: (error, server) => log.error({ err: error, server }, 'server failed to answer'),
  });
  const checks = new HealthChecks(upstreams, options.healthIntervalMs ?? 500);
  const prefixes = options.control?.prefixes ?? [];
  const app = Fastify({
    // Every request reaches the proxy unless it is for the control routes; Fastify sees only those.
    serverFactory: (control: RequestListener) =>
      createServer((req: IncomingMessage, res: ServerResponse) =>
        prefixes.length > 0 && underPrefix(req.url ?? '', prefixes) ? control(req, res) : proxy.handle(req, res),
      ),
    loggerInstance: log,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    // In-flight requests finish while closing; keep-alive clients are cut rather than waited for.
    return503OnClosing: false,
    forceCloseConnections: true,
    // The router's own errors (a malformed percent-encoding) are answered in the contract's shape.
    frameworkErrors: frameworkErrorReply(),
    ajv: STRICT_VALIDATION,
  });

  try {
    // As on the app server: a known path with another method is 405 with Allow, an unknown one 404.
    installErrorHandling(app);
    if (options.control) await app.register(options.control.plugin);
    app.server.on('upgrade', tunnels.handle);
    await app.listen({ port: options.port, host: options.host ?? '127.0.0.1' });
  } catch (error) {
    await app.close().catch(() => {});
    await agent.destroy();
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  checks.start();

  return {
    url: publicUrl(options.host, port),
    setUpstreams(list) {
      // New servers are checked at once: they get traffic as soon as they are ready.
      for (const added of upstreams.replace(list)) void checks.check(added);
    },
    setPolicy: (next) => void (policy = next),
    markDown: (id) => upstreams.markDown(id),
    health: () =>
      upstreams.all().map(({ id, status, requests, connections, sessionsInMemory }) => ({
        id,
        healthy: status === 'healthy',
        requests,
        connections,
        sessionsInMemory,
      })),
    async close() {
      await checks.stop();
      tunnels.closeAll();
      await app.close();
      await agent.destroy();
    },
  };
}
