/**
 * The served OpenAPI document (GET /docs/json): what @fastify/swagger makes of the routes' schemas,
 * plus what no single route says: the security schemes, `servers`, the tags, the one error shape
 * with every code documented, the error answers and the `Idempotency-Key` header as shared
 * components, the supervisor's control API (same origin, other process) and the WebSocket frames.
 * src/kernel/route-docs.ts makes a route without its documentation fail at startup.
 */
import { STATUS_CODES } from 'node:http';
import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import { ERROR_STATUS, type ErrorCode } from '../../kernel/errors.ts';
import { ADMIN_TOKEN_SCHEME } from '../../supervisor/control-api-schemas.ts';
import { clusterControl } from './cluster-paths.ts';
import { errorShapeDescription } from './error-codes.ts';
import { FRAMES_DESCRIPTION, FRAMES_EXTENSION, frameSchemas } from './frames.ts';

/** The component names of the error answers, by status (only those some operation uses are kept). */
const ERROR_RESPONSES: Record<number, { name: string; title: string }> = {
  400: { name: 'BadRequest', title: 'Bad request' },
  401: { name: 'Unauthorized', title: 'Not authenticated' },
  403: { name: 'Forbidden', title: 'Forbidden' },
  404: { name: 'NotFound', title: 'Not found' },
  405: { name: 'MethodNotAllowed', title: 'Method not allowed' },
  409: { name: 'Conflict', title: 'Conflict' },
  413: { name: 'ContentTooLarge', title: 'Body too large' },
  414: { name: 'UriTooLong', title: 'Path too long' },
  415: { name: 'UnsupportedMediaType', title: 'Not JSON' },
  422: { name: 'IdempotencyKeyMismatch', title: 'Idempotency-Key reused with another body' },
  426: { name: 'UpgradeRequired', title: 'Upgrade required' },
  429: { name: 'TooManyRequests', title: 'Rate limited' },
  500: { name: 'InternalError', title: 'Server error' },
  503: { name: 'ServiceUnavailable', title: 'Unavailable' },
};

/** Answers that tell the client when to try again. */
const RETRY_AFTER_STATUSES = new Set([429, 503]);

const TAGS = [
  { name: 'accounts', description: 'Registration, sign-in with a session cookie, and the sessions of a user.' },
  { name: 'tokens', description: 'Bearer access tokens (RS256 JWTs), rotating refresh tokens, and the JWKS.' },
  { name: 'bank', description: 'The ATM: balance, deposits, withdrawals, transfers, history. Money is integer cents.' },
  { name: 'shop', description: 'The pizza shop: menu, cart (a visitor may fill one), checkout as an order saga.' },
  { name: 'chat', description: 'Rooms, messages, read marks and presence; live traffic over the WebSocket at /ws.' },
  { name: 'web', description: 'The web UI: its page, its assets, and who it is for.' },
  { name: 'ops', description: 'Liveness and readiness, for the load balancer and operators.' },
  {
    name: 'cluster',
    description:
      "Cluster control: the servers, their live feed, kill/stop/start/add/remove and rolling restarts, and the cluster metrics. Answered by the supervisor at the balancer's address (this same origin), not by an app server; the admin token, or loopback.",
  },
];

/** The WebSocket operation, which gets the frames' description and pointers. */
const SOCKET_OPERATION = 'openChatSocket';

const IDEMPOTENCY_KEY_PARAMETER = {
  name: 'Idempotency-Key',
  in: 'header',
  required: true,
  description:
    'A unique value per operation (e.g. a UUID), 1 to 255 visible ASCII characters; without it: 400 `idempotency_key_required`. Send the same key when retrying: the same body gets the first answer again (with `Idempotent-Replayed: true`), on whichever server; while the first still runs, 409 `idempotency_in_progress`; for another endpoint or with another body, 422 `idempotency_key_mismatch`. Keys are per user and kept at least 24 hours.',
  schema: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7e]+$' },
  example: '5f0c6f9e-3b7a-4c2e-9a51-2a8d7c1e4b90',
};

const SECURITY_SCHEMES = {
  session: {
    type: 'apiKey',
    in: 'cookie',
    name: 'sid',
    description:
      'The session cookie that sign-in (POST /api/auth/login or /register) sets: `sid` over HTTP, `__Host-sid` over HTTPS; HttpOnly, SameSite=Lax. A browser sends it by itself. Unsafe requests with it must come from the same site (else 403 `csrf_rejected`).',
  },
  bearer: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description:
      'An access token from POST /api/auth/token (or /refresh), valid for at most 15 minutes: `Authorization: Bearer <token>`. Any server verifies it on its own (GET /.well-known/jwks.json).',
  },
  adminToken: ADMIN_TOKEN_SCHEME,
};

type Json = Record<string, unknown>;
const METHODS = new Set(['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace']);

/** The codes a status can carry, e.g. 409 -> `conflict`, `username_taken`, ... */
const codesOf = (status: number) =>
  (Object.keys(ERROR_STATUS) as ErrorCode[]).filter((code) => ERROR_STATUS[code] === status);

function errorResponse(status: number): Json {
  const { title } = ERROR_RESPONSES[status]!;
  const codes = codesOf(status);
  return {
    description: `${title}: ${codes.map((c) => `\`${c}\``).join(', ')} (the Error schema says what each means and what to do).`,
    ...(RETRY_AFTER_STATUSES.has(status)
      ? {
          headers: {
            'Retry-After': {
              description: 'Seconds to wait before trying again.',
              schema: { type: 'integer', minimum: 0 },
            },
          },
        }
      : {}),
    content: {
      'application/json': {
        schema: { $ref: '#/components/schemas/Error' },
        example: { error: { code: codes[0], message: 'What went wrong, and what to change or when to retry.' } },
      },
    },
  };
}

/** An answer with the Error schema, whatever media type the route says it produces (errors are always JSON). */
const isErrorAnswer = (response: unknown): boolean => {
  const content = (response as { content?: Record<string, { schema?: { $ref?: string } }> } | undefined)?.content;
  return Object.values(content ?? {}).some((media) => media.schema?.$ref === '#/components/schemas/Error');
};

/** Every `$ref` in a part of the document. */
export function refsIn(value: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const v of value) refsIn(v, out);
  else if (value && typeof value === 'object') {
    for (const [key, v] of Object.entries(value)) {
      if (key === '$ref' && typeof v === 'string') out.add(v);
      else refsIn(v, out);
    }
  }
  return out;
}

/** Drops the schemas, responses and parameters nothing refers to (any more). */
function pruneComponents(doc: Json): void {
  const components = doc.components as Record<string, Record<string, unknown> | undefined>;
  for (;;) {
    const used = refsIn({ ...doc, components: { ...components, securitySchemes: undefined } });
    let dropped = false;
    for (const kind of ['schemas', 'responses', 'parameters']) {
      const group = components[kind];
      if (!group) continue;
      for (const name of Object.keys(group)) {
        if (!used.has(`#/components/${kind}/${name}`)) {
          delete group[name];
          dropped = true;
        }
      }
      if (Object.keys(group).length === 0) delete components[kind];
    }
    if (!dropped) return;
  }
}

/** Adds the control API's operations, which no app server route registers; an operationId or path twice is a bug. */
function addClusterControl(doc: Json, schemas: Record<string, unknown>): void {
  const paths = doc.paths as Record<string, Record<string, Json>>;
  const ids = new Set(Object.values(paths).flatMap((item) => Object.values(item).map((op) => op.operationId)));
  const control = clusterControl();
  for (const [path, item] of Object.entries(control.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      if (paths[path]?.[method] || ids.has(operation.operationId))
        throw new Error(`${method.toUpperCase()} ${path} (${String(operation.operationId)}) is in the document twice.`);
      (paths[path] ??= {})[method] = operation;
    }
  }
  Object.assign(schemas, control.schemas);
}

/** The frames as components, and the WebSocket operation's pointers to them. */
function addFrames(doc: Json, schemas: Record<string, unknown>): void {
  const socket = Object.values(doc.paths as Record<string, Record<string, Json>>)
    .flatMap((item) => Object.values(item))
    .find((op) => op.operationId === SOCKET_OPERATION);
  if (!socket) return;
  Object.assign(schemas, frameSchemas());
  socket.description = `${String(socket.description ?? '')}\n\n${FRAMES_DESCRIPTION}`;
  Object.assign(socket, FRAMES_EXTENSION);
}

/**
 * What no route says on its own: the control API and the frames, error answers and the
 * Idempotency-Key as shared components, the Error schema's documentation, and no component that
 * nothing uses.
 */
export function finishDocument(doc: Json): Json {
  const components = (doc.components ??= {}) as Record<string, Record<string, unknown>>;
  const responses: Record<string, unknown> = (components.responses ??= {});
  const parameters: Record<string, unknown> = (components.parameters ??= {});
  parameters.IdempotencyKey = IDEMPOTENCY_KEY_PARAMETER;
  const schemas = (components.schemas ??= {}) as Record<string, Json>;
  addClusterControl(doc, schemas);
  addFrames(doc, schemas);

  for (const item of Object.values(doc.paths as Record<string, Record<string, Json>>)) {
    for (const [method, operation] of Object.entries(item)) {
      if (!METHODS.has(method)) continue;
      const params = operation.parameters as Json[] | undefined;
      if (params) {
        operation.parameters = params.map((p) =>
          p.in === 'header' && String(p.name).toLowerCase() === 'idempotency-key'
            ? { $ref: '#/components/parameters/IdempotencyKey' }
            : p,
        );
      }
      const answers = operation.responses as Record<string, Json>;
      for (const [status, answer] of Object.entries(answers)) {
        // @fastify/swagger's placeholder for a success answer without a description: the status text.
        if (answer.description === 'Default Response') answer.description = STATUS_CODES[status] ?? status;
        const shared = ERROR_RESPONSES[Number(status)];
        if (!shared || !isErrorAnswer(answer)) continue;
        responses[shared.name] ??= errorResponse(Number(status));
        answers[status] = { $ref: `#/components/responses/${shared.name}` };
      }
    }
  }

  if (schemas.Error) schemas.Error = { ...schemas.Error, description: errorShapeDescription() };
  pruneComponents(doc);
  return doc;
}

/** The options of @fastify/swagger for the app server's document. */
export function swaggerOptions(): FastifyDynamicSwaggerOptions {
  return {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'statewise',
        version: '1',
        description: [
          'The public API of statewise: accounts and sessions, API tokens, a bank (ATM), a pizza shop and a chat, served by stateless app servers behind one load balancer. The contract is API.md (v1); this document is generated from the routes themselves.',
          '',
          '- Requests and answers are JSON (`content-type: application/json`), UTF-8. Money is integer cents; times are ISO 8601 UTC.',
          '- Sign in with a session cookie (browsers) or a bearer access token (API clients): every `/api` route that needs a user takes either.',
          '- Routes marked (IK) take an `Idempotency-Key` header; a retry with the same key and body gets the first answer again.',
          '- Every error is `{"error": {"code", "message"}}`: see the `Error` schema for every code, what it means and what to do.',
          '- Every answer from an app server carries `X-Served-By: <server-id>`; `X-Statewise-Server: <server-id>` routes a request to that server.',
        ].join('\n'),
      },
      servers: [
        {
          url: '/',
          description: 'The origin that serves this document: the load balancer (npm start: http://localhost:8080)',
        },
      ],
      tags: TAGS,
      components: { securitySchemes: SECURITY_SCHEMES } as never,
    },
    // Shared schemas (app.addSchema) are components named by their $id, e.g. `#/components/schemas/Error`.
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`),
    },
    transformObject: (document) =>
      finishDocument(('openapiObject' in document ? document.openapiObject : {}) as Json) as never,
  };
}
