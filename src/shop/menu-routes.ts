import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import type { App } from '../kernel/app-type.ts';
import { noneMatchHits } from '../kernel/http-cache.ts';
import type { Menu } from './menu.ts';
import { responses, Security } from '../kernel/responses.ts';
import { MenuSchema } from './schemas.ts';

/** Stock changes, so shared caches (a CDN) keep the menu briefly and then revalidate by ETag. */
const CACHE_CONTROL = 'public, max-age=5';

export function menuRoutes(app: App, menu: Menu): void {
  app.get(
    '/api/menu',
    {
      schema: {
        operationId: 'getMenu',
        summary: 'The menu, with prices and stock',
        tags: ['shop'],
        description: `The menu with prices and stock. Cache-Control: ${CACHE_CONTROL}; a strong ETag; If-None-Match gives 304.`,
        security: Security.none,
        response: responses(
          {
            200: MenuSchema,
            304: Type.Null({ description: 'Not modified: the If-None-Match tag is current' }),
          },
          [503],
        ),
      },
    },
    async (request, reply) => {
      const snapshot = await menu.read();
      // Overrides the no-store that the app sets on every /api answer.
      reply.header('cache-control', CACHE_CONTROL).header('etag', snapshot.etag);
      if (noneMatchHits(request.headers['if-none-match'], snapshot.etag)) return sendRaw(reply.code(304));
      // The hashed bytes themselves (a JSON string is sent as is), so the tag is the hash of the body.
      return sendRaw(reply.type('application/json; charset=utf-8'), snapshot.body);
    },
  );
}

/** Sends bytes already serialized (or none), outside the typed route's serializer. */
const sendRaw = (reply: FastifyReply, body?: string): FastifyReply => reply.send(body);
