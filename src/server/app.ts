import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type pg from 'pg';
import type { ServerConfig } from '../config/server-config.ts';
import type { StateStore } from '../state/types.ts';
import { UsersTable } from '../records/users.ts';
import { SessionManager } from '../accounts/session-manager.ts';
import { assertSameOrigin, Authenticator } from '../accounts/authenticate.ts';
import { accountRoutes } from '../accounts/routes.ts';
import { RateLimiter } from '../accounts/rate-limiter.ts';
import type { App } from './app-type.ts';
import type { ServerContext } from './context.ts';
import { installErrorHandling } from './error-handler.ts';
import { healthRoutes } from './health-routes.ts';
import { Lifecycle } from './lifecycle.ts';
import { ErrorSchema } from './schemas.ts';
import { domainModules } from './domains.ts';

export interface AppDeps {
  config: ServerConfig;
  db: pg.Pool;
  state: StateStore;
  lifecycle?: Lifecycle;
  logger?: FastifyBaseLogger;
}

/**
 * Builds the app server. It holds no state of its own between requests: everything a request
 * needs comes from `deps.state` (session state) and `deps.db` (records), which is what lets any
 * server answer any request. In stateful mode `deps.state` is this process's memory: same code.
 */
export async function buildApp(deps: AppDeps): Promise<{ app: App; ctx: ServerContext }> {
  const { config } = deps;
  const app: App = Fastify({
    loggerInstance: deps.logger,
    // Each request logs at info with its reqId (X-Request-Id when given); set SW_LOG_LEVEL=info to see them.
    bodyLimit: config.bodyLimit,
    trustProxy: 'loopback',
    // Requests keep being served while closing; the balancer has already stopped sending new ones.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && given.length <= 128 ? given : randomUUID();
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  const lifecycle = deps.lifecycle ?? new Lifecycle();
  const sessions = new SessionManager(deps.state.sessions, {
    idleMs: config.sessionIdleMs,
    absoluteMs: config.sessionAbsoluteMs,
    bindUserAgent: config.sessionBindUserAgent,
  });
  const users = new UsersTable(deps.db);
  const unknownIds = new RateLimiter(deps.state.keys, 'unknown-sid', config.loginWindowMs);
  const ctx: ServerContext = {
    config,
    log: app.log,
    db: deps.db,
    state: deps.state,
    users,
    sessions,
    auth: new Authenticator(sessions, app.log, (ip) =>
      unknownIds.hit([{ subject: `ip:${ip}`, max: config.unknownSessionIpLimit }]),
    ),
    lifecycle,
    signInHooks: [],
    logoutEverywhereHooks: [async (userId) => void (await sessions.endAllForUser(userId))],
  };

  // The API speaks JSON only: any other body is a 415, not a string that fails validation.
  app.removeContentTypeParser('text/plain');
  app.addSchema(ErrorSchema);
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'statewise',
        version: '1',
        description: 'Stateless app servers behind a load balancer; see ../shared/API.md for the contract.',
      },
      components: {
        securitySchemes: {
          session: { type: 'apiKey', in: 'cookie', name: 'sid' },
          bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
        },
      },
    },
  });
  installErrorHandling(app);

  const servedBy = config.serverId;
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-served-by', servedBy);
    if (lifecycle.draining) reply.header('connection', 'close');
    if (request.url.startsWith('/api/')) {
      reply.header('cache-control', 'no-store');
      assertSameOrigin(request);
    }
  });

  app.get('/docs/json', { schema: { hide: true } }, async () => app.swagger());
  healthRoutes(app, ctx);
  accountRoutes(app, ctx);
  for (const register of domainModules) await register(app, ctx);
  return { app, ctx };
}
