/**
 * The page's one way to the HTTP API: the typed client (src/client, generated from the OpenAPI
 * document), same origin, and every answer's server (X-Served-By) told to whoever listens, so each
 * action shows where it ran. Errors come back as ApiError with the contract's code and a sentence a
 * person can act on (errors.ts).
 */
import { createApiClient, dataOf, type Answer, type Failure } from '../../src/client/api-client.ts';
import { explain } from './errors.ts';

export type { Answer, ResponseOf } from '../../src/client/api-client.ts';

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

/** Sends one request of the client: a failure to connect is an ApiError too; an answer is reported. */
async function send(request: Request): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(request);
  } catch {
    throw new ApiError(0, 'network', 'The system could not be reached.', null);
  }
  const servedBy = response.headers.get('x-served-by');
  const path = new URL(request.url).pathname;
  for (const listener of listeners)
    listener({ method: request.method, path, status: response.status, servedBy, at: Date.now() });
  return response;
}

/** The typed client: `api.GET('/api/me')`, path parameters in `params.path`. */
export const api = createApiClient({ fetch: send, headers: { accept: 'application/json' } });

const toApiError = ({ error }: Failure, response: Response) =>
  new ApiError(response.status, error.code, error.message, response.headers.get('x-served-by'));

/** The body of a 2xx answer; otherwise throws ApiError. */
export const call = <T>(pending: Promise<Answer<T>>): Promise<T> => dataOf(pending, toApiError);

/** The body of a 2xx answer and the server that gave it; otherwise throws ApiError. */
export async function served<T>(pending: Promise<Answer<T>>): Promise<{ body: T; servedBy: string | null }> {
  const answer = await pending;
  return { body: await dataOf(answer, toApiError), servedBy: answer.response.headers.get('x-served-by') };
}

/** Sent as X-Statewise-Server: the balancer routes the request to that server ('' or none: any). */
export const pinTo = (server?: string): Record<string, string> => (server ? { 'x-statewise-server': server } : {});

/** A fresh Idempotency-Key for one money movement or checkout (a retry reuses it). */
export const newIdempotencyKey = () => crypto.randomUUID();

export const money = (cents: number) => (cents / 100).toLocaleString(undefined, { style: 'currency', currency: 'EUR' });
