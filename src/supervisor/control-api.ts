import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../kernel/errors.ts';
import { sendAppError, toAppError } from '../kernel/http-errors.ts';
import { ErrorSchema } from '../kernel/responses.ts';
import { requireRouteDocs } from '../kernel/route-docs.ts';
import { checkControlAccess, type ControlAccessOptions } from './control-access.ts';
import {
  CONTROL_ROUTES,
  type ClusterView,
  type ManagedServerView,
  type RollingRestartAnswer,
  type ServerParams,
  type SwitchModeAnswer,
  type SwitchModeBody,
} from './control-api-schemas.ts';
import type { ManagedServer, ServerStatus } from './managed-server.ts';
import type { ClusterEvents } from './cluster-events.ts';
import { clusterMetrics } from './cluster-metrics.ts';

export type { ClusterView } from './control-api-schemas.ts';

/** How often the event stream sends the cluster's view. */
const VIEW_EVERY_MS = 1_000;

/** What the control API does to one server (a ManagedServer). */
export type ControlledServer = Pick<ManagedServer, 'id' | 'view' | 'kill' | 'stop' | 'start'>;

/** What the control API drives: the supervisor. */
export interface ClusterControl {
  view(): ClusterView;
  readonly events: ClusterEvents;
  server(id: string): ControlledServer | undefined;
  add(): Promise<ControlledServer>;
  /** Starts a rolling restart (409 `conflict` while one runs); `done` settles when it ends. */
  rollingRestart(): Promise<{ servers: string[]; sessionsAtRisk: number | null; done: Promise<void> }>;
  remove(id: string): Promise<boolean>;
  /** Restarts every server in `mode` (409 `conflict` when in it already, or busy); `done` settles when they are up. */
  switchMode(mode: SwitchModeBody['mode']): Promise<{ answer: SwitchModeAnswer; done: Promise<void> }>;
  /** The sessions only these servers hold, as they say now; null when sessions are shared. */
  sessionsHeld(ids: readonly string[]): Promise<number | null>;
}

export interface ControlApiOptions extends ControlAccessOptions {
  log: (line: string) => void;
}

/** The paths the control API owns on the balancer's origin: they are never proxied to a server. */
export const CONTROL_PREFIXES = ['/_cluster', '/metrics'] as const;

/**
 * The supervisor's /_cluster API, mounted on the load balancer's origin (see control-access.ts for
 * who may use it). Its routes and their schemas are CONTROL_ROUTES (control-api-schemas.ts), which
 * the served OpenAPI document describes. Errors are the one table's codes, sent by the kernel like
 * every other process's.
 */
export function controlApi(cluster: ClusterControl, options: ControlApiOptions): FastifyPluginAsync {
  return async (app) => {
    // The same rule as the app server's: a route without its documentation fails at startup.
    requireRouteDocs(app);
    // The error answers' schema (`$ref: 'Error'`), as on the app server.
    app.addSchema(ErrorSchema);
    // JSON only, as on the app server: any other body is a 415, not a string that fails validation.
    app.removeContentTypeParser('text/plain');
    app.addHook('onRequest', async (request) => checkControlAccess(request, options));
    app.setErrorHandler((error, request, reply) => {
      const appError = toAppError(error);
      if (appError.status >= 500) request.log.error({ err: error }, 'cluster control failed');
      return sendAppError(reply, appError);
    });

    const find = (request: FastifyRequest<{ Params: ServerParams }>) => {
      const server = cluster.server(request.params.id);
      if (!server) throw new AppError('not_found', `No server "${request.params.id}"; GET /_cluster lists them.`);
      return server;
    };
    /** An action on a server in a state it does not apply to is a 409 that changes nothing. */
    const inState = (server: ControlledServer, allowed: readonly ServerStatus[], otherwise: string) => {
      const { status } = server.view();
      if (!allowed.includes(status)) throw new AppError('conflict', `${server.id} is ${otherwise} (${status}).`);
      return server;
    };
    const accepted = (reply: FastifyReply, server: ControlledServer) =>
      reply.code(202).send({ server: server.view() satisfies ManagedServerView });
    /** Work that outlives the request: its failure is logged, never lost. */
    const inBackground = (what: string, work: Promise<unknown>) =>
      void work.catch((error: unknown) => options.log(`cluster control: ${what} failed: ${String(error)}`));
    const { getCluster, getClusterMetrics, streamClusterEvents, killServer, stopServer, startServer } = CONTROL_ROUTES;
    const { addServer, removeServer, rollingRestart, switchMode } = CONTROL_ROUTES;

    app.route({ ...getCluster, handler: async () => cluster.view() satisfies ClusterView });

    // The balancer's and supervisor's metrics (the app servers have their own, asked directly).
    const metrics = clusterMetrics(() => cluster.view());
    app.route({
      ...getClusterMetrics,
      handler: async (_request, reply) => {
        reply.header('cache-control', 'no-store').type(metrics.contentType);
        return metrics.metrics();
      },
    });

    // The dashboard's live feed (server-sent events): the view every second, and each event as it
    // happens. Read with fetch (an EventSource cannot send the admin token's header).
    app.route({
      ...streamClusterEvents,
      handler: async (request, reply) => {
        reply.hijack();
        const out = reply.raw;
        out.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-store',
          'x-content-type-options': 'nosniff',
        });
        const send = (event: string, data: unknown) => out.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
        for (const event of cluster.events.recent) send('log', event);
        send('view', cluster.view());
        const timer = setInterval(() => send('view', cluster.view()), VIEW_EVERY_MS);
        const stop = cluster.events.on((event) => {
          send('log', event);
          send('view', cluster.view());
        });
        request.raw.once('close', () => {
          clearInterval(timer);
          stop();
        });
      },
    });

    app.route<{ Params: ServerParams }>({
      ...killServer,
      handler: async (request, reply) => {
        const server = inState(find(request), ['starting', 'up', 'draining'], 'down already');
        const held = await cluster.sessionsHeld([server.id]);
        await server.kill();
        cluster.events.emit(
          held === null
            ? `${server.id} killed (SIGKILL): 0 sessions lost (they live in ${cluster.view().store})`
            : `${server.id} killed (SIGKILL): ${held} sessions lost with its memory`,
        );
        return accepted(reply, server);
      },
    });

    app.route<{ Params: ServerParams }>({
      ...stopServer,
      handler: async (request, reply) => {
        const server = inState(find(request), ['starting', 'up'], 'stopping or down already');
        cluster.events.emit(`${server.id} asked to stop: draining, then exit`);
        inBackground(`stop ${server.id}`, server.stop());
        return accepted(reply, server);
      },
    });

    app.route<{ Params: ServerParams }>({
      ...startServer,
      handler: async (request, reply) => {
        const server = inState(find(request), ['down'], 'running already');
        cluster.events.emit(`${server.id} asked to start`);
        inBackground(`start ${server.id}`, server.start());
        return accepted(reply, server);
      },
    });

    app.route({
      ...rollingRestart,
      handler: async (_request, reply) => {
        const { servers, sessionsAtRisk, done } = await cluster.rollingRestart();
        inBackground('rolling restart', done);
        return reply.code(202).send({ servers, sessionsAtRisk } satisfies RollingRestartAnswer);
      },
    });

    app.route<{ Body: SwitchModeBody }>({
      ...switchMode,
      handler: async (request, reply) => {
        const { answer, done } = await cluster.switchMode(request.body.mode);
        inBackground('mode switch', done);
        return reply.code(202).send(answer);
      },
    });

    app.route({
      ...addServer,
      handler: async (_request, reply) => {
        const server = await cluster.add();
        cluster.events.emit(`${server.id} added`);
        return reply.code(201).send({ server: server.view() satisfies ManagedServerView });
      },
    });

    app.route<{ Params: ServerParams }>({
      ...removeServer,
      handler: async (request, reply) => {
        const server = find(request);
        cluster.events.emit(`${server.id} removed: draining, then gone`);
        inBackground(`remove ${server.id}`, cluster.remove(server.id));
        return reply.code(202).send({ server: server.view() satisfies ManagedServerView });
      },
    });
  };
}
