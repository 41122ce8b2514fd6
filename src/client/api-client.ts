/**
 * The typed client of the HTTP API: openapi-fetch over the types generated from the served OpenAPI
 * document (api-types.ts, `npm run api:types`), so a caller that no longer fits a route's schema
 * fails `npm run typecheck`. The web app, the lab and the tests all call the API through it.
 */
import createClient, { type Client, type ClientPathsWithMethod, type MethodResponse } from 'openapi-fetch';
import type { components, paths } from './api-types.ts';

export type { components, paths };
export type ApiClient = Client<paths>;

/** The body of an operation's 2xx answer, e.g. ResponseOf<'get', '/api/me'>: for values kept in state. */
export type ResponseOf<
  M extends 'get' | 'post' | 'put' | 'patch' | 'delete',
  P extends ClientPathsWithMethod<ApiClient, M>,
> = MethodResponse<ApiClient, M, P>;

/** The contract's one error shape, `{error: {code, message}}`. */
export type ErrorBody = components['schemas']['Error'];
export type ErrorCode = ErrorBody['error']['code'];

/** An answer that is not 2xx, in the contract's shape (a code `http_<status>` when it had none). */
export interface Failure {
  error: { code: ErrorCode | `http_${number}`; message: string };
}

export interface ApiClientOptions {
  /** The origin of the API; '' (the default) is the page's own. */
  baseUrl?: string;
  /** Sends each request: a browser's cookies, a report of who served, a time bound. */
  fetch?: (request: Request) => Promise<Response>;
  /** Sent with every request. */
  headers?: Record<string, string>;
  /** 'manual' for callers that look at redirects themselves. */
  redirect?: RequestInit['redirect'];
}

export function createApiClient(options: ApiClientOptions = {}): ApiClient {
  const { baseUrl = '', ...rest } = options;
  return createClient<paths>({ baseUrl, ...rest });
}

/** The error of an answer that is not 2xx as the contract's shape, whatever its body was. */
export function failureOf(error: unknown, response: Response): Failure {
  const inner = (error as { error?: { code?: unknown; message?: unknown } } | null | undefined)?.error;
  if (typeof inner?.code === 'string') {
    const message = typeof inner.message === 'string' ? inner.message : '';
    return { error: { code: inner.code as ErrorCode, message } };
  }
  // Not the servers' answer (a proxy's page, an empty 502): keep its text for a person.
  const message = typeof error === 'string' ? error : '';
  return { error: { code: `http_${response.status}`, message } };
}

/** What every typed call resolves to. */
export interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/**
 * The body of a 2xx answer; otherwise throws what `fail` makes of the failure (by default an Error
 * naming the request, the status and the code): for callers that only go on when it worked.
 */
export async function dataOf<T>(
  pending: Answer<T> | Promise<Answer<T>>,
  fail: (failure: Failure, response: Response) => Error = describe,
): Promise<T> {
  const { data, error, response } = await pending;
  if (response.ok) return data as T;
  throw fail(failureOf(error, response), response);
}

const describe = ({ error }: Failure, response: Response) =>
  new Error(
    `${new URL(response.url || 'http://unknown/').pathname}: ${response.status} ${error.code} ${error.message}`,
  );
