/**
 * The rule that keeps the served OpenAPI document complete, for every process that serves routes
 * (the app server, the supervisor's control API): in the kernel, so neither imports the other.
 */
import type { FastifyInstance } from 'fastify';

const OPERATION_ID = /^[a-z]+[A-Za-z0-9]*$/;

/**
 * Every route the document shows must say what it is: a verb-first camelCase `operationId`
 * (unique), a `summary`, tags, who may call it (`security`: see `Security` in
 * src/kernel/responses.ts; the control API's is the admin token) and its answers. A route without
 * them fails at startup, so none can be added undocumented: the app server installs this, and so
 * does the supervisor's control API (src/supervisor/control-api.ts), whose routes the document shows
 * too. Hide a route from the document with `schema: { hide: true }`.
 */
export function requireRouteDocs(app: FastifyInstance): void {
  const seen = new Map<string, string>();
  app.addHook('onRoute', (route) => {
    const methods = [route.method].flat().map(String);
    // HEAD routes Fastify adds for each GET are not in the document.
    if (methods.every((m) => m === 'HEAD')) return;
    const schema = route.schema as
      | {
          hide?: boolean;
          operationId?: unknown;
          summary?: unknown;
          tags?: unknown;
          security?: unknown;
          response?: Record<string, unknown>;
        }
      | undefined;
    if (schema?.hide) return;
    const where = `${methods.join(',')} ${route.url}`;
    const missing = (what: string) =>
      new Error(`${where} has no ${what} in its schema: the OpenAPI document needs it.`);
    if (!schema) throw missing('schema (or schema.hide: true)');
    if (typeof schema.operationId !== 'string' || !OPERATION_ID.test(schema.operationId))
      throw missing('operationId (verb-first camelCase, e.g. addCartItem)');
    if (typeof schema.summary !== 'string' || schema.summary.length === 0) throw missing('summary');
    if (!Array.isArray(schema.tags) || schema.tags.length === 0) throw missing('tags');
    if (!Array.isArray(schema.security)) throw missing('security (Security.* of src/kernel/responses.ts)');
    const statuses = Object.keys(schema.response ?? {}).map(Number);
    if (!statuses.some((s) => s >= 200 && s < 400) && !statuses.includes(101)) throw missing('success response');
    const other = seen.get(schema.operationId);
    if (other !== undefined && other !== where)
      throw new Error(`${where} reuses the operationId "${schema.operationId}" of ${other}.`);
    seen.set(schema.operationId, where);
  });
}
