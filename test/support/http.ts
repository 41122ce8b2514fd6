/**
 * A small HTTP client for tests that behaves like one browser: it keeps its cookies (by name) and
 * its own User-Agent. `api` is the typed client (src/client): the way to call the API; `request`
 * (with `get` and `post`) returns status, headers and parsed JSON of anything sent.
 */
import { createApiClient, type ApiClient } from '../../src/client/api-client.ts';
import { cookieFetch } from '../../src/client/cookie-fetch.ts';

export interface HttpResult<T = any> {
  status: number;
  headers: Headers;
  body: T;
  servedBy: string | null;
}

/** The server that gave a typed answer (X-Served-By). */
export const servedBy = (answer: { response: Response }) => answer.response.headers.get('x-served-by');

export class Browser {
  readonly cookies = new Map<string, string>();
  /** The typed API client, with this browser's cookies and User-Agent. */
  readonly api: ApiClient;
  readonly #send: (request: Request) => Promise<Response>;

  constructor(
    readonly baseUrl: string,
    readonly userAgent = 'statewise-test-browser/1.0',
  ) {
    this.#send = cookieFetch({ cookies: this.cookies, userAgent });
    this.api = this.apiWith({});
  }

  /** The typed client sending `headers` too on every request (a bearer token, a pinned server). */
  apiWith(headers: Record<string, string>): ApiClient {
    return createApiClient({ baseUrl: this.baseUrl, fetch: this.#send, redirect: 'manual', headers });
  }

  /**
   * Raw HTTP, with the same cookies: for what the typed client cannot say, on purpose: malformed
   * JSON, wrong types, unknown fields, oversized bodies, forged headers, paths outside the API.
   */
  async request<T = any>(
    method: string,
    path: string,
    options: { json?: unknown; headers?: Record<string, string>; body?: string } = {},
  ): Promise<HttpResult<T>> {
    const headers: Record<string, string> = { ...options.headers };
    let body = options.body;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers['content-type'] ??= 'application/json';
    }
    const response = await this.#send(
      new Request(`${this.baseUrl}${path}`, { method, headers, body, redirect: 'manual' }),
    );
    const text = await response.text();
    let parsed: unknown = text;
    if ((response.headers.get('content-type') ?? '').includes('json') && text) parsed = JSON.parse(text);
    return {
      status: response.status,
      headers: response.headers,
      body: parsed as T,
      servedBy: response.headers.get('x-served-by'),
    };
  }

  get = <T = any>(path: string, headers?: Record<string, string>) => this.request<T>('GET', path, { headers });
  post = <T = any>(path: string, json?: unknown, headers?: Record<string, string>) =>
    this.request<T>('POST', path, { json: json ?? {}, headers });
}
