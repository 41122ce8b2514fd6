import type { FastifyInstance } from 'fastify';
import { Type, type TSchema } from 'typebox';
import { ERROR_STATUS, type ErrorCode } from './errors.ts';

/**
 * The error shape of the contract, shared by every route's OpenAPI description (the component
 * `Error`; src/server/openapi/ describes every code in it).
 */
export const ErrorSchema = Type.Object(
  {
    error: Type.Object({
      code: Type.Unsafe<ErrorCode>({
        type: 'string',
        enum: Object.keys(ERROR_STATUS),
        description: 'one of a closed set: what went wrong, for a program to act on',
      }),
      message: Type.String({ description: 'what went wrong, for a person: what to change or when to retry' }),
    }),
  },
  { $id: 'Error' },
);

/** Response schemas for a route: the success shape plus the error shape for the given statuses. */
export function responses(success: Record<number, TSchema>, errors: number[] = []): Record<number, TSchema> {
  const out: Record<number, TSchema> = { ...success };
  // A route that authenticates reads the session cookie, and a dead or made-up id there counts
  // against the id-guessing limit of the client's address: such a route can answer 429 too. And
  // it reads session state from a store that may be unreachable: 503, which the client may retry.
  const statuses = new Set(errors.includes(401) ? [...errors, 429, 503] : errors);
  for (const status of statuses) out[status] = Type.Ref('Error');
  return out;
}

/**
 * Who may call a route: its OpenAPI `security` (the schemes `session` and `bearer` are declared in
 * src/server/openapi/document.ts). Every documented route names one of these.
 */
export const Security: Record<
  'signedIn' | 'userOrVisitor' | 'sessionOptional' | 'none',
  ReadonlyArray<Readonly<Record<string, readonly string[]>>>
> = {
  /** A signed-in user: the session cookie or a bearer access token (else 401). */
  signedIn: [{ session: [] }, { bearer: [] }],
  /** Anyone; a signed-in user or a visitor's session (the cookie) is used when sent. */
  userOrVisitor: [{}, { session: [] }, { bearer: [] }],
  /** Anyone; the session cookie is used when sent (to replace it, or to carry a visitor's cart over). */
  sessionOptional: [{}, { session: [] }],
  /** Anyone: no credential is read. */
  none: [],
};

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
