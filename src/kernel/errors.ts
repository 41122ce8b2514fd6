/**
 * The closed set of error codes of the public contract, each with its HTTP status: one table for
 * every process (app server, load balancer, supervisor). Every error a client can see is one of
 * these, made with `new AppError(code, message)`; the status always comes from this table, and
 * `toAppError` (http-errors.ts) is the only place that turns anything else thrown into one.
 */
export const ERROR_STATUS = {
  invalid_input: 400,
  invalid_json: 400,
  idempotency_key_required: 400,
  not_authenticated: 401,
  invalid_credentials: 401,
  invalid_token: 401,
  session_expired: 401,
  forbidden: 403,
  csrf_rejected: 403,
  not_found: 404,
  user_not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  username_taken: 409,
  insufficient_funds: 409,
  idempotency_in_progress: 409,
  body_too_large: 413,
  /** A path segment longer than the router takes. */
  uri_too_long: 414,
  unsupported_media_type: 415,
  /** A plain request to a WebSocket endpoint (/ws). */
  upgrade_required: 426,
  idempotency_key_mismatch: 422,
  rate_limited: 429,
  internal_error: 500,
  /** The balancer: a server failed before or while answering, so the outcome is unknown. */
  bad_gateway: 502,
  unavailable: 503,
  shutting_down: 503,
  server_unavailable: 503,
  /** The balancer: a server took the request and did not answer in time. */
  gateway_timeout: 504,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Seconds for a `Retry-After` header (429 and 503). */
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, message: string, options?: { retryAfterSeconds?: number; cause?: unknown }) {
    super(message, { cause: options?.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }

  toBody(): ErrorBody {
    return { error: { code: this.code, message: this.message } };
  }
}

export const isAppError = (value: unknown): value is AppError => value instanceof AppError;
