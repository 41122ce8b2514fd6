import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { CONTENT_SECURITY_POLICY, DOCUMENT_HEADERS } from '../../web/plugin.ts';

/**
 * The docs page's headers: the web UI's (this origin only, nothing inline, no framing), plus the
 * data: fonts Swagger UI ships. Its scripts, styles and icons come from the @fastify/swagger-ui
 * package (no CDN); its logo is a data: image; "Try it out" calls this origin.
 */
const DOCS_HEADERS = {
  ...DOCUMENT_HEADERS,
  'content-security-policy': `${CONTENT_SECURITY_POLICY}; font-src 'self' data:`,
};

/**
 * The docs page for people at /docs: Swagger UI, served from its package, on the document of
 * GET /docs/json (and /docs/yaml). Same origin as the API, so "Try it out" sends the visitor's
 * session cookie (or a bearer token given under "Authorize"). Its routes are hidden from the
 * document; the headers above apply to them only (an encapsulated scope), not to the rest.
 */
export async function docsPage(app: FastifyInstance): Promise<void> {
  await app.register(async (scope) => {
    scope.addHook('onRequest', async (_request, reply) => {
      reply.headers(DOCS_HEADERS);
    });
    await scope.register(swaggerUi, {
      routePrefix: '/docs',
      theme: { title: 'statewise API' },
      uiConfig: {
        // No top bar: it only offers to load another document URL, and its logo is an SVG with an
        // inline <style> that the policy above refuses.
        layout: 'BaseLayout',
        deepLinking: true,
        displayOperationId: true,
        displayRequestDuration: true,
        defaultModelsExpandDepth: 0,
        // Same origin: the session cookie goes along with "Try it out".
        withCredentials: true,
      },
      validatorUrl: false,
    });
  });
}
