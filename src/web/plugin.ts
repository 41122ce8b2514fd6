import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { Type } from 'typebox';
import { User } from '../accounts/schemas.ts';
import { AppError } from '../kernel/errors.ts';
import { noneMatchHits } from '../kernel/http-cache.ts';
import { responses, Security } from '../kernel/responses.ts';
import { findWebDir, StaticAssets, type Asset } from './static-assets.ts';

/** Fingerprinted names never change content: a browser or CDN may keep them for a year, unasked. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
/** The page names the current fingerprints, so it is always revalidated (cheap: 304 by ETag). */
const REVALIDATE = 'no-cache';

/**
 * The page's Content-Security-Policy: this origin only (`connect-src 'self'` covers same-origin
 * WebSockets in current browsers), no inline script or style, no plugins, no <base>, and no
 * framing by anyone (`frame-ancestors`; X-Frame-Options for browsers that predate it).
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "object-src 'none'",
].join('; ');

/**
 * Sent with the page and every asset (an SVG opened on its own is a document too). The app sets
 * `X-Content-Type-Options: nosniff` on every answer; the page names no other origin, so it sends
 * no Referer at all.
 */
export const DOCUMENT_HEADERS = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

const tags = ['web'];
const NotModified = Type.Null({ description: 'Not modified: the If-None-Match tag is current' });
const WebSession = Type.Object(
  { user: Type.Union([User, Type.Null()]) },
  { description: 'The signed-in user, or null for a visitor' },
);

function send(request: FastifyRequest, reply: FastifyReply, asset: Asset, cacheControl: string): FastifyReply {
  reply.headers(DOCUMENT_HEADERS).header('cache-control', cacheControl).header('etag', asset.etag);
  if (noneMatchHits(request.headers['if-none-match'], asset.etag)) return reply.code(304).send();
  return reply.type(asset.contentType).send(asset.body);
}

/**
 * The web UI: `GET /` and its fingerprinted, immutable assets under `/assets/`, and
 * `GET /web/session`, which tells the page who is signed in.
 */
export const webPlugin = fp<{ log: FastifyBaseLogger }>(
  async (fastify, { log }) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

    // The page's script asks this rather than GET /api/me, whose 401 for a visitor every
    // browser logs as an error: a first visit must not fail a request.
    app.get(
      '/web/session',
      {
        schema: {
          operationId: 'getWebSession',
          summary: 'Who the web page is for',
          tags,
          security: Security.userOrVisitor,
          description:
            'Who the page is for: 200 `{user: {id, username}}` when signed in, 200 `{user: null}` when not. Cache-Control: no-store.',
          response: responses({ 200: WebSession }, [401]),
        },
      },
      async (request, reply) => {
        reply.header('cache-control', 'no-store');
        const principal = await app.auth.optionalUser(request);
        return { user: principal ? { id: principal.userId, username: principal.username } : null };
      },
    );

    const webDir = findWebDir();
    if (!webDir) {
      log.warn('no web/ folder with an index.html was found: the web UI is not served');
      return;
    }
    const assets = await StaticAssets.load(webDir);
    log.info({ javascript: assets.appSize }, 'web app bundled');

    app.get(
      '/',
      {
        schema: {
          operationId: 'getWebPage',
          summary: 'The web UI',
          tags,
          security: Security.none,
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
          operationId: 'getWebAsset',
          summary: 'A script, style sheet or image of the web UI',
          tags,
          security: Security.none,
          description: `A fingerprinted asset named by the page. Cache-Control: ${IMMUTABLE}.`,
          params: Type.Object({ file: Type.String({ maxLength: 200 }) }),
          response: responses({ 200: Type.String(), 304: NotModified }, [404]),
        },
      },
      async (request, reply) => {
        const asset = assets.asset(request.params.file);
        if (!asset) throw new AppError('not_found', `There is no asset "${request.params.file}"; GET / names them.`);
        return send(request, reply, asset, IMMUTABLE);
      },
    );
  },
  { name: 'web', dependencies: ['accounts'], fastify: '5.x' },
);
