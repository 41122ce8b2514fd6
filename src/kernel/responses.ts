import type { FastifyInstance } from 'fastify';
import { Type, type TSchema } from 'typebox';
import { ERROR_STATUS } from './errors.ts';

/** The error shape of the contract, shared by every route's OpenAPI description. */
export const ErrorSchema = Type.Object(
  {
    error: Type.Object({
      code: Type.Union(Object.keys(ERROR_STATUS).map((code) => Type.Literal(code))),
      message: Type.String(),
    }),
  },
  { $id: 'Error' },
);

/** Response schemas for a route: the success shape plus the error shape for the given statuses. */
export function responses(success: Record<number, TSchema>, errors: number[] = []): Record<number, TSchema> {
  const out: Record<number, TSchema> = { ...success };
  // A route that authenticates reads the session cookie, and a dead or made-up id there counts
  // against the id-guessing limit of the client's address: such a route can answer 429 too.
  const statuses = errors.includes(401) && !errors.includes(429) ? [...errors, 429] : errors;
  for (const status of statuses) out[status] = Type.Ref('Error');
  return out;
}

export const NoContent = Type.Null({ description: 'No content' });

const WITH_BODY = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Keeps the served OpenAPI document true about the answers every route can give whatever its
 * handler does: 400 (a malformed path or query) and 414 (a path segment too long) anywhere; 413
 * and 415 where a body is taken; 403 where the CSRF check of /api runs (unsafe methods).
 * Installed before the routes (an onRoute hook sees each as it is added).
 */
export function documentCommonErrors(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    const schema = route.schema as { response?: Record<number, unknown>; hide?: boolean } | undefined;
    if (!schema?.response || schema.hide) return;
    const methods = [route.method].flat().map(String);
    const unsafe = methods.some((m) => WITH_BODY.has(m));
    const statuses = [
      400,
      414,
      ...(unsafe ? [413, 415] : []),
      ...(unsafe && route.url.startsWith('/api/') ? [403] : []),
    ];
    for (const status of statuses) schema.response[status] ??= Type.Ref('Error');
  });
}
