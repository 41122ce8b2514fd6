import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import fp from 'fastify-plugin';
import type pg from 'pg';
import { Type } from 'typebox';
import { AppError } from '../kernel/errors.ts';
import type { Lifecycle } from '../kernel/lifecycle.ts';
import { responses, Security } from '../kernel/responses.ts';
import type { StateStore } from '../state/types.ts';

const Status = Type.Object({ status: Type.String(), server: Type.String() });
const Readiness = Type.Object({
  status: Type.String(),
  server: Type.String(),
  sessionsInMemory: Type.Union([Type.Integer(), Type.Null()], {
    description: 'live sessions only this server holds (memory store): what its crash loses; null when shared',
  }),
});

export interface HealthDeps {
  config: { serverId: string };
  db: pg.Pool;
  state: StateStore;
  lifecycle: Lifecycle;
}

/** /healthz: the process answers. /readyz: it can reach its stores and is not draining. */
export const healthPlugin = fp<HealthDeps>(
  async (fastify, { config, db, state, lifecycle }) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const server = config.serverId;
    app.get(
      '/healthz',
      {
        schema: {
          operationId: 'getHealth',
          summary: 'Is this process alive',
          description: 'Liveness: 200 whenever the process answers; it reads no store.',
          tags: ['ops'],
          security: Security.none,
          response: { 200: Status },
        },
      },
      async () => ({ status: 'ok', server }),
    );

    const readiness = {
      operationId: 'getReadiness',
      summary: 'Is this server ready for traffic',
      description:
        'Readiness, for the load balancer: 503 `shutting_down` while draining, 503 `unavailable` while a store cannot be reached.',
      tags: ['ops'],
      security: Security.none,
      response: responses({ 200: Readiness }, [503]),
    };
    app.get('/readyz', { schema: readiness }, async () => {
      if (lifecycle.draining) throw new AppError('shutting_down', `${server} is draining; use another server.`);
      try {
        await Promise.all([db.query('SELECT 1'), state.ping()]);
      } catch (error) {
        throw new AppError('unavailable', `${server} cannot reach its stores: ${(error as Error).message}`);
      }
      return { status: 'ready', server, sessionsInMemory: state.sessionsInMemory() };
    });
  },
  { name: 'health', fastify: '5.x' },
);
