/**
 * The page's one way to the HTTP API: JSON in and out, same origin, and every answer's server
 * (X-Served-By) told to whoever listens, so each action shows where it ran. Errors come back as
 * ApiError with the contract's code and a sentence a person can act on (errors.ts).
 */
import { explain } from './errors.ts';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly servedBy: string | null,
  ) {
    super(explain(code, detail));
  }
}

export interface Served {
  method: string;
  path: string;
  status: number;
  servedBy: string | null;
  at: number;
}

const listeners = new Set<(served: Served) => void>();

/** Calls `listener` after every API answer (the "served by" trail). */
export function onServed(listener: (served: Served) => void): () => void {
  listeners.add(listener);
  return () => void listeners.delete(listener);
}

export interface RequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
  /** Sent as X-Statewise-Server: the balancer routes the request to that server. */
  server?: string;
}

/** The answer's body and the server that gave it. */
export async function request<T>(
  method: string,
  path: string,
  options: RequestOptions = {},
): Promise<{ body: T; servedBy: string | null }> {
  const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (options.server) headers['x-statewise-server'] = options.server;
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      credentials: 'same-origin',
    });
  } catch {
    throw new ApiError(0, 'network', 'The system could not be reached.', null);
  }
  const servedBy = response.headers.get('x-served-by');
  for (const listener of listeners) listener({ method, path, status: response.status, servedBy, at: Date.now() });
  const text = await response.text();
  const body: unknown = text && (response.headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = (body as { error?: { code?: string; message?: string } } | null)?.error;
    throw new ApiError(response.status, error?.code ?? `http_${response.status}`, error?.message ?? text, servedBy);
  }
  return { body: body as T, servedBy };
}

/** The answer's body. */
export const api = async <T>(method: string, path: string, options: RequestOptions = {}): Promise<T> =>
  (await request<T>(method, path, options)).body;

/** A fresh Idempotency-Key for one money movement or checkout (a retry reuses it). */
export const newIdempotencyKey = () => crypto.randomUUID();

export const money = (cents: number) => (cents / 100).toLocaleString(undefined, { style: 'currency', currency: 'EUR' });
