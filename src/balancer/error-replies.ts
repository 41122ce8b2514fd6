import type { Duplex } from 'node:stream';
import type { ErrorCode } from '../server/errors.ts';

/** An answer the balancer gives itself, in the contract's error shape and codes. */
export interface BalancerError {
  status: number;
  code: ErrorCode;
  message: string;
  /** Seconds, for a Retry-After header. */
  retryAfterSeconds?: number;
}

export const noServerUp: BalancerError = {
  status: 503,
  code: 'unavailable',
  message: 'no server is up',
  retryAfterSeconds: 1,
};

/** 502, not 503: the server may have acted on the request, so the client must decide. */
export const unsafeToRepeat: BalancerError = {
  status: 502,
  code: 'unavailable',
  message: 'the server failed before answering; retry with an Idempotency-Key to make it safe',
};

export const pinnedUnavailable = (id: string): BalancerError => ({
  status: 503,
  code: 'server_unavailable',
  message: `server "${id}" is not up; send the request without X-Statewise-Server to reach any server`,
});

export const pinnedFailed = (id: string): BalancerError => ({
  status: 503,
  code: 'server_unavailable',
  message: `server "${id}" failed before answering; a pinned request is not moved to another server`,
});

/** The server took the request but did not answer properly (e.g. timed out): not retried. */
export const upstreamFailed = (id: string, code: string): BalancerError => ({
  status: code.includes('TIMEOUT') ? 504 : 502,
  code: 'unavailable',
  message: `server "${id}" failed while answering (${code})`,
});

export const methodNotAllowed = (allowed: readonly string[]): BalancerError => ({
  status: 405,
  code: 'method_not_allowed',
  message: `the load balancer forwards only ${allowed.join(', ')}`,
});

function bodyOf(error: BalancerError): string {
  return JSON.stringify({ error: { code: error.code, message: error.message } });
}

/** Any Fastify reply (the one reply-from's onError hands back is typed for any server kind). */
export interface ReplyLike {
  header(name: string, value: string): unknown;
  code(status: number): unknown;
  send(payload?: unknown): unknown;
}

export function sendError<R extends ReplyLike>(reply: R, error: BalancerError): R {
  if (error.retryAfterSeconds !== undefined) reply.header('retry-after', String(error.retryAfterSeconds));
  reply.header('content-type', 'application/json; charset=utf-8');
  reply.code(error.status);
  reply.send(bodyOf(error));
  return reply;
}

const REASONS: Record<number, string> = {
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** The same answer on a raw socket, for a WebSocket upgrade that cannot be tunnelled. */
export function writeUpgradeError(socket: Duplex, error: BalancerError): void {
  if (socket.destroyed) return;
  const body = bodyOf(error);
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
export function toBalancerError(thrown: unknown, bodyLimit: number): BalancerError {
  const e = (typeof thrown === 'object' && thrown !== null ? thrown : {}) as ThrownLike;
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return {
        status: 413,
        code: 'body_too_large',
        message: `The request body is larger than the ${bodyLimit} bytes the balancer accepts.`,
      };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return {
        status: 415,
        code: 'unsupported_media_type',
        message: 'The content-type header is not a valid media type.',
      };
  }
  if (thrown instanceof URIError) {
    return {
      status: 400,
      code: 'invalid_input',
      message: 'The path is not valid percent-encoding.',
    };
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    const message = typeof e.message === 'string' && e.message.length > 5 ? e.message : 'Invalid request.';
    return { status: 400, code: 'invalid_input', message };
  }
  return {
    status: 500,
    code: 'internal_error',
    message: 'The load balancer failed; it has been logged.',
  };
}
