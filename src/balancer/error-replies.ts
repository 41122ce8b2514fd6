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

export const methodNotAllowed = (allowed: readonly string[]) =>
  new AppError('method_not_allowed', `the load balancer forwards only ${allowed.join(', ')}`);

const REASONS: Record<number, string> = {
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

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

interface ThrownLike {
  code?: unknown;
  statusCode?: unknown;
  message?: unknown;
}

/** Errors thrown while a request is in the balancer itself (body limits, a bad path). */
export function toBalancerError(thrown: unknown, bodyLimit: number): AppError {
  const e = (typeof thrown === 'object' && thrown !== null ? thrown : {}) as ThrownLike;
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError(
        'body_too_large',
        `The request body is larger than the ${bodyLimit} bytes the balancer accepts.`,
      );
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AppError('unsupported_media_type', 'The content-type header is not a valid media type.');
  }
  if (thrown instanceof URIError) return new AppError('invalid_input', 'The path is not valid percent-encoding.');
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    const message = typeof e.message === 'string' && e.message.length > 5 ? e.message : 'Invalid request.';
    return new AppError('invalid_input', message);
  }
  return new AppError('internal_error', 'The load balancer failed; it has been logged.', { cause: thrown });
}
