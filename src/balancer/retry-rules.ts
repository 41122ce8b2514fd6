import type { IncomingHttpHeaders } from 'node:http';

/** Methods that mean the same thing when sent twice (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

/**
 * Errors that mean the connection failed before the server answered anything: refused, reset or
 * closed before the response head, or a connect timeout. (UND_ERR_CLOSED is our own pool closing.)
 */
const CONNECTION_FAILURES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

interface ErrorLike {
  code?: unknown;
  cause?: unknown;
  errors?: unknown;
}

/** Every error code in an error, its causes and (AggregateError) its parts. */
function* codes(error: unknown, depth = 0): Generator<string> {
  if (typeof error !== 'object' || error === null || depth > 5) return;
  const e = error as ErrorLike;
  if (typeof e.code === 'string') yield e.code;
  yield* codes(e.cause, depth + 1);
  if (Array.isArray(e.errors)) for (const part of e.errors) yield* codes(part, depth + 1);
}

/** Safe to send again after a connection failed: the method is idempotent, or the client made it so. */
export function safeToRepeat(method: string, headers: IncomingHttpHeaders): boolean {
  return IDEMPOTENT.has(method) || typeof headers['idempotency-key'] === 'string';
}

export function failedBeforeAnswer(error: unknown): boolean {
  for (const code of codes(error)) if (CONNECTION_FAILURES.has(code)) return true;
  return false;
}

/** Nothing listens there: no doubt the server is gone, no need for a second failure. */
export function refusedConnection(error: unknown): boolean {
  for (const code of codes(error)) if (code === 'ECONNREFUSED') return true;
  return false;
}

/** No answer in time (a connect, a response head or a body): silence rather than a refusal. */
export function timedOut(error: unknown): boolean {
  for (const code of codes(error)) if (code.includes('TIMEOUT') || code === 'ETIMEDOUT') return true;
  return false;
}

/** The most specific code, for logs and messages (undici wraps the socket's error as its cause). */
export function errorCode(error: unknown): string {
  let last = 'error';
  for (const code of codes(error)) last = code;
  return last;
}
