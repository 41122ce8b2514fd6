import Fastify, { LogController, type FastifyBaseLogger, type FastifyPluginAsync } from 'fastify';
import { pino } from 'pino';
import { Agent } from 'undici';
import { frameworkErrorReply, sendAppError } from '../kernel/http-errors.ts';
import { methodNotAllowed } from './error-replies.ts';
import { HealthChecks } from './health-checks.ts';
import type { BalancePolicy } from './policies.ts';
import { PROXIED_METHODS, proxyRoutes } from './proxy-route.ts';
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
  /** Routes mounted on the balancer itself before proxying, e.g. the supervisor's /_cluster API. */
  control?: FastifyPluginAsync;
  /** Largest request body forwarded. @default 1 MiB */
  bodyLimit?: number;
}

export interface Balancer {
  url: string;
  /** Replaces the set; ids that stay (at the same URL) keep their health state. */
  setUpstreams(list: readonly Upstream[]): void;
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

/**
 * The load balancer for one machine, on Fastify and @fastify/reply-from (undici connection pools).
 * Round robin (stateless mode) or sticky by cookie (stateful mode); health checks on /readyz and
 * passive failure detection; requests safe to repeat are retried on another server when a
 * connection fails before any answer; WebSocket upgrades are piped to the chosen server.
 */
export async function createBalancer(options: BalancerOptions): Promise<Balancer> {
  const log = loggerFrom(options.logger);
  const bodyLimit = options.bodyLimit ?? 1024 * 1024;
  const upstreams = new UpstreamSet(log);
  const agent = new Agent(PROXY_POOL);
  const checks = new HealthChecks(upstreams, options.healthIntervalMs ?? 500);
  const tunnels = new UpgradeProxy(upstreams, options.policy);
  const app = Fastify({
    loggerInstance: log,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    // HEAD is proxied as itself, not answered from a GET.
    exposeHeadRoutes: false,
    // In-flight requests finish while closing; keep-alive clients are cut rather than waited for.
    return503OnClosing: false,
    forceCloseConnections: true,
    // Any path is forwarded as it is; the router's own errors (a malformed percent-encoding) are
    // answered in the contract's shape.
    routerOptions: { maxParamLength: 8192 },
    frameworkErrors: frameworkErrorReply(),
  });

  try {
    // Registered first, but precedence comes from the router: its paths are more specific than /*.
    if (options.control) await app.register(options.control);
    await app.register(proxyRoutes({ upstreams, policy: options.policy, agent, bodyLimit }));
    // /* matches every path, so only a method outside the proxied ones gets here.
    app.setNotFoundHandler((_request, reply) => {
      reply.header('allow', PROXIED_METHODS.join(', '));
      return sendAppError(reply, methodNotAllowed(PROXIED_METHODS));
    });
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
