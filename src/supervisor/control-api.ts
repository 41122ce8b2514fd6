import { timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../server/errors.ts';
import { sendAppError } from '../server/error-handler.ts';
import type { Supervisor } from './supervisor.ts';

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

function allowed(request: FastifyRequest, adminToken: string): boolean {
  if (LOOPBACK.has(request.socket.remoteAddress ?? '')) return true;
  const header = request.headers.authorization ?? '';
  const given = Buffer.from(header.startsWith('Bearer ') ? header.slice(7) : '');
  const expected = Buffer.from(adminToken);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * The supervisor's /_cluster API, mounted on the load balancer's origin. Loopback callers and
 * holders of the admin token (printed at start) may use it.
 */
export function controlApi(supervisor: Supervisor, adminToken: string): FastifyPluginAsync {
  return async (app) => {
    app.addHook('onRequest', async (request, reply) => {
      if (!allowed(request, adminToken)) {
        return sendAppError(reply, new AppError('forbidden', 'Use the admin token printed by npm start.'));
      }
    });
    app.setErrorHandler((error, _request, reply) =>
      sendAppError(reply, error instanceof AppError ? error : new AppError('invalid_input', String(error))),
    );

    const find = (request: FastifyRequest) => {
      const { id } = request.params as { id: string };
      const server = supervisor.server(id);
      if (!server) throw new AppError('not_found', `No server "${id}"; GET /_cluster lists them.`);
      return server;
    };
    const accepted = (reply: FastifyReply, server: { view(): unknown }) =>
      reply.code(202).send({ server: server.view() });

    app.get('/_cluster', async () => supervisor.view());

    app.post('/_cluster/servers/:id/kill', async (request, reply) => {
      const server = find(request);
      await server.kill();
      return accepted(reply, server);
    });

    app.post('/_cluster/servers/:id/stop', async (request, reply) => {
      const server = find(request);
      void server.stop();
      return accepted(reply, server);
    });

    app.post('/_cluster/servers/:id/start', async (request, reply) => {
      const server = find(request);
      void server.start().catch(() => {});
      return accepted(reply, server);
    });

    app.post('/_cluster/servers', async (_request, reply) => {
      const server = await supervisor.add();
      return reply.code(201).send({ server: server.view() });
    });

    app.delete('/_cluster/servers/:id', async (request, reply) => {
      const server = find(request);
      void supervisor.remove(server.id);
      return reply.code(202).send({ server: server.view() });
    });
  };
}
