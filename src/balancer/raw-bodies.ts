import type { FastifyInstance } from 'fastify';

/**
 * Every body stays the bytes the client sent, whatever its content type (JSON included): it is
 * forwarded untouched, and can be sent again as it was when a request is retried on another server.
 */
export function keepBodiesRaw(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
}
