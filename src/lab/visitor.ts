/** A browser-like client for the lab: its own cookies (session, sticky server), one User-Agent. */
import { createApiClient, type ApiClient } from '../client/api-client.ts';
import { cookieFetch } from '../client/cookie-fetch.ts';

export class Visitor {
  readonly #cookies = new Map<string, string>();
  readonly #send: (request: Request) => Promise<Response>;
  /** The typed API client, with this visitor's cookies. */
  readonly api: ApiClient;
  /** The server that answered last (X-Served-By). */
  lastServer: string | null = null;

  constructor(
    private readonly baseUrl: string,
    readonly userAgent = 'statewise-lab/1.0',
  ) {
    const send = cookieFetch({ cookies: this.#cookies, userAgent });
    this.#send = async (request) => {
      const response = await send(request);
      this.lastServer = response.headers.get('x-served-by');
      return response;
    };
    this.api = createApiClient({ baseUrl, fetch: this.#send });
  }

  /** Any request by method and path (experiments that pick the operation at run time). */
  async request(method: string, path: string, json?: unknown): Promise<{ status: number; body: any }> {
    const headers: Record<string, string> = json === undefined ? {} : { 'content-type': 'application/json' };
    const body = json === undefined ? undefined : JSON.stringify(json);
    const response = await this.#send(new Request(`${this.baseUrl}${path}`, { method, headers, body }));
    const text = await response.text();
    return {
      status: response.status,
      body: text && /json/.test(response.headers.get('content-type') ?? '') ? JSON.parse(text) : text,
    };
  }
}
