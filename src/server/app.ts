import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { accountsPlugin } from '../accounts/plugin.ts';
import { bankPlugin } from '../bank/plugin.ts';
import { chatPlugin } from '../chat/plugin.ts';
import type { App } from '../kernel/app-type.ts';
import { frameworkErrorReply, installErrorHandling, STRICT_VALIDATION } from '../kernel/http-errors.ts';
import { documentCommonErrors, ErrorSchema } from '../kernel/responses.ts';
import { realtimePlugin } from '../realtime/plugin.ts';
import { shopPlugin } from '../shop/plugin.ts';
import { webPlugin } from '../web/plugin.ts';
import { healthPlugin } from './health-plugin.ts';
import { metricsPlugin } from './metrics-plugin.ts';
import { docsPage } from './openapi/docs-page.ts';
import { requireRouteDocs } from '../kernel/route-docs.ts';
import { swaggerOptions } from './openapi/document.ts';
import type { Services } from './services.ts';

/**
 * Builds the app server from its services. It holds no state of its own between requests:
 * everything a request needs comes from `services.state` (session state) and `services.db`
 * (records), which is what lets any server answer any request. In stateful mode the state is this
 * process's memory: the same code.
 */
export async function buildApp(services: Services): Promise<App> {
  const { config } = services;
  const app: App = Fastify({
    loggerInstance: services.log,
    // Each request logs at info with its reqId (X-Request-Id when given); set SW_LOG_LEVEL=info to see them.
    bodyLimit: config.bodyLimit,
    // The client's address for per-address limits: the last hop that is not a trusted balancer.
    trustProxy: config.trustedProxies,
    // Requests keep being served while closing; the balancer has already stopped sending new ones.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && given.length <= 128 ? given : randomUUID();
    },
    ajv: STRICT_VALIDATION,
    // The longest path parameter a route documents is 200 characters (an asset's name).
    routerOptions: { maxParamLength: 256 },
    frameworkErrors: frameworkErrorReply(config.serverId),
  }).withTypeProvider<TypeBoxTypeProvider>();

  // The API speaks JSON only: any other body is a 415, not a string that fails validation.
  app.removeContentTypeParser('text/plain');
  app.addSchema(ErrorSchema);
  // Installed before any route: a route without its documentation fails here, at startup.
  requireRouteDocs(app);
  await app.register(swagger, swaggerOptions());
  installErrorHandling(app);
  documentCommonErrors(app);

  const servedBy = config.serverId;
  const { lifecycle } = services;
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-served-by', servedBy);
    // Every answer is what its Content-Type says (JSON stays JSON): no browser guesses it is HTML.
    reply.header('x-content-type-options', 'nosniff');
    if (lifecycle.draining) reply.header('connection', 'close');
    if (request.url.startsWith('/api/')) reply.header('cache-control', 'no-store');
  });

  // GET /docs (the page for people), /docs/json and /docs/yaml (the document).
  await docsPage(app);
  // Each part names the parts it needs (fastify-plugin `dependencies`); Fastify refuses a wrong order.
  await app.register(metricsPlugin, services);
  await app.register(healthPlugin, services);
  await app.register(accountsPlugin, services);
  await app.register(bankPlugin, services);
  await app.register(shopPlugin, services);
  await app.register(chatPlugin, services);
  await app.register(realtimePlugin, services);
  await app.register(webPlugin, services);
  return app;
}
