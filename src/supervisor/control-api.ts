import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { AppError } from '../kernel/errors.ts';
import { sendAppError, toAppError } from '../kernel/http-errors.ts';
import { checkControlAccess } from './control-access.ts';
import type { ManagedServer, ServerStatus } from './managed-server.ts';
import type { Mode } from '../config/topology.ts';
import type { StoreKind } from '../state/types.ts';

/** GET /_cluster: the mode, the store, and every server as the balancer sees it. */
export interface ClusterView {
  mode: Mode;
  store: StoreKind;
  servers: Array<{
    id: string;
    pid: number | null;
    status: ServerStatus;
    startedAt: string | null;
    requests: number;
    connections: number;
  }>;
}

/** What the control API drives: the supervisor. */
export interface ClusterControl {
  view(): ClusterView;
  server(id: string): ManagedServer | undefined;
  add(): Promise<ManagedServer>;
  remove(id: string): Promise<boolean>;
}

export interface ControlApiOptions {
  adminToken: string;
  /** The address the balancer listens on (its own name, besides the loopback ones). */
  listenHost: string;
  log: (line: string) => void;
}

const ServerParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

/**
 * The supervisor's /_cluster API, mounted on the load balancer's origin (see control-access.ts for
 * who may use it). Errors are the one table's codes, sent by the kernel like every other process's.
 */
export function controlApi(cluster: ClusterControl, options: ControlApiOptions): FastifyPluginAsync {
  return async (app) => {
    app.addHook('onRequest', async (request) => checkControlAccess(request, options));
    app.setErrorHandler((error, request, reply) => {
      const appError = toAppError(error);
      if (appError.status >= 500) request.log.error({ err: error }, 'cluster control failed');
      return sendAppError(reply, appError);
    });

    const find = (request: FastifyRequest<{ Params: { id: string } }>) => {
      const server = cluster.server(request.params.id);
      if (!server) throw new AppError('not_found', `No server "${request.params.id}"; GET /_cluster lists them.`);
      return server;
    };
    const accepted = (reply: FastifyReply, server: ManagedServer) => reply.code(202).send({ server: server.view() });
    /** Work that outlives the request: its failure is logged, never lost. */
    const inBackground = (what: string, work: Promise<unknown>) =>
      void work.catch((error: unknown) => options.log(`cluster control: ${what} failed: ${String(error)}`));
    const byId = { schema: { params: ServerParams } };

    app.get('/_cluster', async () => cluster.view());

    app.post<{ Params: { id: string } }>('/_cluster/servers/:id/kill', byId, async (request, reply) => {
      const server = find(request);
      await server.kill();
      return accepted(reply, server);
    });

    app.post<{ Params: { id: string } }>('/_cluster/servers/:id/stop', byId, async (request, reply) => {
      const server = find(request);
      inBackground(`stop ${server.id}`, server.stop());
      return accepted(reply, server);
    });

    app.post<{ Params: { id: string } }>('/_cluster/servers/:id/start', byId, async (request, reply) => {
      const server = find(request);
      inBackground(`start ${server.id}`, server.start());
      return accepted(reply, server);
    });

    app.post('/_cluster/servers', async (_request, reply) => {
      const server = await cluster.add();
      return reply.code(201).send({ server: server.view() });
    });

    app.delete<{ Params: { id: string } }>('/_cluster/servers/:id', byId, async (request, reply) => {
      const server = find(request);
      inBackground(`remove ${server.id}`, cluster.remove(server.id));
      return reply.code(202).send({ server: server.view() });
    });
  };
}
