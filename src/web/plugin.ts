import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { Type } from 'typebox';
import { AppError } from '../kernel/errors.ts';
import { noneMatchHits } from '../kernel/http-cache.ts';
import { findWebDir, StaticAssets, type Asset } from './static-assets.ts';

/** Fingerprinted names never change content: a browser or CDN may keep them for a year, unasked. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
/** The page names the current fingerprints, so it is always revalidated (cheap: 304 by ETag). */
const REVALIDATE = 'no-cache';

const tags = ['web'];
const NotModified = Type.Null({ description: 'Not modified: the If-None-Match tag is current' });

function send(request: FastifyRequest, reply: FastifyReply, asset: Asset, cacheControl: string): FastifyReply {
  reply.header('cache-control', cacheControl).header('etag', asset.etag);
  if (noneMatchHits(request.headers['if-none-match'], asset.etag)) return reply.code(304).send();
  return reply.type(asset.contentType).send(asset.body);
}

/** The web UI: `GET /` and its fingerprinted, immutable assets under `/assets/`. */
export const webPlugin = fp<{ log: FastifyBaseLogger }>(
  async (fastify, { log }) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const webDir = findWebDir();
    if (!webDir) {
      log.warn('no web/ folder with an index.html was found: the web UI is not served');
      return;
    }
    const assets = await StaticAssets.load(webDir);

    app.get(
      '/',
      {
        schema: {
          tags,
          description: `The web UI's page. Cache-Control: ${REVALIDATE}; a strong ETag; If-None-Match gives 304.`,
          produces: ['text/html'],
          response: { 200: Type.String(), 304: NotModified },
        },
      },
      async (request, reply) => send(request, reply, assets.page, REVALIDATE),
    );

    app.get(
      '/assets/:file',
      {
        schema: {
          tags,
          description: `A fingerprinted asset named by the page. Cache-Control: ${IMMUTABLE}.`,
          params: Type.Object({ file: Type.String({ maxLength: 200 }) }),
          response: { 200: Type.String(), 304: NotModified },
        },
      },
      async (request, reply) => {
        const asset = assets.asset(request.params.file);
        if (!asset) throw new AppError('not_found', `There is no asset "${request.params.file}"; GET / names them.`);
        return send(request, reply, asset, IMMUTABLE);
      },
    );
  },
  { name: 'web', fastify: '5.x' },
);
