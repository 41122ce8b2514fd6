import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { AppError } from '../kernel/errors.ts';

/**
 * The answers the balancer gives itself. They are AppErrors of the one error table (kernel/errors.ts),
 * so a code means the same status whichever process sends it; kernel/http-errors.ts sends them.
 */
export const noServerUp = () => new AppError('unavailable', 'no server is up', { retryAfterSeconds: 1 });

/** 502, not 503: the server may have acted on the request, so the client must decide. */
export const unsafeToRepeat = () =>
  new AppError('bad_gateway', 'the server failed before answering; retry with an Idempotency-Key to make it safe');

export const pinnedUnavailable = (id: string) =>
  new AppError(
    'server_unavailable',
    `server "${id}" is not up; send the request without X-Statewise-Server to reach any server`,
  );

/** The same, for a balancer that cannot put the id in its answer (HAProxy's and nginx's static pages). */
export const pinNotUp = () =>
  new AppError(
    'server_unavailable',
    'the server named in X-Statewise-Server is not up; send the request without it to reach any server',
  );

export const pinnedFailed = (id: string) =>
  new AppError(
    'server_unavailable',
    `server "${id}" failed before answering; a pinned request is not moved to another server`,
  );

/** The server took the request but did not answer properly (e.g. timed out): not retried. */
export const upstreamFailed = (id: string, code: string) =>
  new AppError(
    code.includes('TIMEOUT') ? 'gateway_timeout' : 'bad_gateway',
    `server "${id}" failed while answering (${code})`,
  );

/** A server took the request and did not answer in time (HAProxy's and nginx's static page). */
export const upstreamTimedOut = () =>
  new AppError('gateway_timeout', 'a server did not answer in time; the request may or may not have taken effect');

/** The server stopped answering with this request in hand; it may have acted on it, or may yet. */
export const upstreamSilent = (id: string) =>
  new AppError(
    'gateway_timeout',
    `server "${id}" stopped answering before it answered this request, which may or may not have taken effect; retry with an Idempotency-Key to make it safe`,
  );

export const methodNotAllowed = (allowed: readonly string[]) =>
  new AppError('method_not_allowed', `the load balancer forwards only ${allowed.join(', ')}`);

export const bodyTooLarge = (limit: number) =>
  new AppError('body_too_large', `The request body is larger than the ${limit} bytes the balancer accepts.`);

export const invalidTarget = () =>
  new AppError('invalid_input', 'The request target must be a path (origin-form), e.g. /api/me.');

const REASONS: Record<number, string> = {
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** An answer of the balancer's own on a node:http response; `keepAlive` false closes the connection. */
export function writeHttpError(res: ServerResponse, error: AppError, keepAlive: boolean): void {
  if (res.headersSent || res.destroyed) return;
  const body = JSON.stringify(error.toBody());
  res.statusCode = error.status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(body));
  if (error.retryAfterSeconds !== undefined) res.setHeader('retry-after', String(error.retryAfterSeconds));
  if (!keepAlive) res.setHeader('connection', 'close');
  res.end(body);
}

/** The same answer on a raw socket, for a WebSocket upgrade that cannot be tunnelled. */
export function writeUpgradeError(socket: Duplex, error: AppError): void {
  if (socket.destroyed) return;
  const body = JSON.stringify(error.toBody());
  const head = [
    `HTTP/1.1 ${error.status} ${REASONS[error.status] ?? 'Error'}`,
    'content-type: application/json; charset=utf-8',
    `content-length: ${Buffer.byteLength(body)}`,
    ...(error.retryAfterSeconds !== undefined ? [`retry-after: ${error.retryAfterSeconds}`] : []),
    'connection: close',
  ];
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`, () => socket.destroy());
}
