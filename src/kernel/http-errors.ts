import FindMyWay from 'find-my-way';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, isAppError } from './errors.ts';
import { lingerOnUnreadBody } from './linger.ts';

/**
 * The one place where anything thrown becomes an HTTP response. Client mistakes map to their 4xx
 * code; anything unexpected is logged and answered with a generic 500 that leaks nothing.
 */
export function toAppError(error: unknown): AppError {
  if (isAppError(error)) return error;
  const e = error as Partial<FastifyError> & { type?: string };
  if (e.validation) return new AppError('invalid_input', describeValidation(e));
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError('body_too_large', 'The request body is larger than this server accepts.');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AppError('unsupported_media_type', 'Send the body as application/json.');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new AppError('invalid_json', 'The body is empty; send a JSON object or no content-type.');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new AppError('invalid_input', 'The content-length does not match the body.');
    case 'FST_ERR_BAD_URL':
      return new AppError('invalid_input', 'The path is not valid percent-encoding.');
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new AppError('uri_too_long', 'A segment of the path is longer than this server accepts.');
  }
  // PostgreSQL's data exceptions (class 22: a NUL byte, a malformed escape) come from a value the
  // client sent that a schema let through: the client's mistake, and nothing was written.
  if (typeof e.code === 'string' && /^22[0-9A-Z]{3}$/.test(e.code) && 'severity' in (error as object)) {
    return new AppError('invalid_input', 'The request holds a value the database cannot store (e.g. a NUL character).');
  }
  if (storeUnreachable(error)) {
    return new AppError('unavailable', 'A store behind this server cannot be reached right now; try again shortly.', {
      retryAfterSeconds: 1,
      cause: error,
    });
  }
  if (error instanceof SyntaxError || e.statusCode === 400) {
    return new AppError('invalid_json', `The body is not valid JSON: ${e.message ?? 'parse error'}`);
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new AppError('invalid_input', e.message ?? 'Invalid request.');
  }
  return new AppError('internal_error', 'Something went wrong on the server; it has been logged.', {
    cause: error,
  });
}

/** Socket errors that mean the other end is gone or unreachable. */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'ECONNABORTED',
]);
/** What pg and ioredis say, without a code, when their connection is gone or cannot be had. */
const UNREACHABLE_MESSAGE =
  /Connection terminated|connection timeout|timeout exceeded when trying to connect|Connection is closed|max retries per request|Client has encountered a connection error/i;

/**
 * True when a store (PostgreSQL, Redis) could not be reached: a 503 the client may retry, not a
 * bug. PostgreSQL's connection exceptions (class 08), shutdown and cannot-connect-now (57P0x) and
 * too many connections (53300) count too.
 */
export function storeUnreachable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { code?: unknown; message?: unknown; name?: unknown };
  if (typeof e.code === 'string' && (UNREACHABLE.has(e.code) || /^(08...|57P0[1-3]|53300)$/.test(e.code))) return true;
  if (e.name === 'MaxRetriesPerRequestError') return true;
  return typeof e.message === 'string' && UNREACHABLE_MESSAGE.test(e.message);
}

function describeValidation(error: Partial<FastifyError>): string {
  const first = error.validation?.[0];
  if (!first) return error.message ?? 'Invalid input.';
  const where = error.validationContext ?? 'body';
  const path = first.instancePath ? `${where}${first.instancePath.replaceAll('/', '.')}` : where;
  const missing = (first.params as { missingProperty?: string } | undefined)?.missingProperty;
  if (missing) return `${path}.${missing} is required.`;
  const { parentSchema } = first as { parentSchema?: unknown }; // set by ajv when verbose
  return `${path} ${explainRule(first.keyword, parentSchema, first.message)}.`;
}

/**
 * A broken rule in words. A pattern or format is said by the field's description, not by the
 * validator's "must match pattern "^(?:[1-9]|...)$"": a regular expression tells a person nothing.
 * Shared with the live socket's frames (src/realtime/frames.ts).
 */
export function explainRule(keyword: string, schema: unknown, message: string | undefined): string {
  const description = (schema as { description?: unknown } | undefined)?.description;
  if ((keyword === 'pattern' || keyword === 'format') && typeof description === 'string') {
    return `is not valid: ${description}`;
  }
  return message ?? 'is invalid';
}

/** Any Fastify reply (HTTP/1 or 2, any type provider): only these methods are used. */
export interface ReplyLike {
  header(name: string, value: string): unknown;
  code(status: number): unknown;
  type(contentType: string): unknown;
  send(payload?: unknown): unknown;
}

export function sendAppError<R extends ReplyLike>(reply: R, error: AppError): R {
  if (error.retryAfterSeconds !== undefined) reply.header('retry-after', String(error.retryAfterSeconds));
  reply.code(error.status);
  reply.type('application/json');
  reply.send(error.toBody());
  return reply;
}

/**
 * How every Fastify instance here validates (the app server's, the balancer's control API): a
 * property the schema does not know is refused (400), never silently dropped, and nothing is coerced.
 */
export const STRICT_VALIDATION = {
  // verbose: a failed rule carries its schema, whose description explains a pattern (explainRule).
  customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false, verbose: true },
} as const;

/**
 * Fastify's `frameworkErrors` option: errors of the router itself (a malformed percent-encoding, a
 * path segment over the limit) that skip the error handler and every hook. Answered like any other.
 */
export function frameworkErrorReply(servedBy?: string) {
  return (error: unknown, request: FastifyRequest, reply: FastifyReply): void => {
    if (servedBy) reply.header('x-served-by', servedBy);
    const appError = toAppError(error);
    if (appError.status >= 500) request.log.error({ err: error }, 'request failed');
    sendAppError(reply, appError);
  };
}

/** Installs the error handler and a not-found handler that tells 404 from 405. */
export function installErrorHandling(app: FastifyInstance): void {
  // A shadow router of every registered route: lets the not-found handler see whether the path
  // exists under another method (405) or not at all (404).
  const routes = FindMyWay();
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      try {
        routes.on(method as 'GET', route.url, () => {});
      } catch {
        // The same method and path twice (HEAD added by fastify): already known.
      }
    }
  });

  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const appError = toAppError(error);
    if (appError.status >= 500) request.log.error({ err: error }, 'request failed');
    lingerOnUnreadBody(request, reply);
    return sendAppError(reply, appError);
  });

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '/';
    const allowed = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH'].filter(
      (m) => m !== request.method && routes.find(m as 'GET', path) !== null,
    );
    if (allowed.length > 0) {
      reply.header('allow', allowed.join(', '));
      return sendAppError(
        reply,
        new AppError('method_not_allowed', `${request.method} is not allowed here; use ${allowed.join(' or ')}.`),
      );
    }
    return sendAppError(reply, new AppError('not_found', `No route for ${request.method} ${path}.`));
  });
}
