/** A browser-like client for the lab: its own cookies (session, sticky server), one User-Agent. */
import { createApiClient, type ApiClient } from '../client/api-client.ts';
import { cookieFetch } from '../client/cookie-fetch.ts';

export class Visitor {
  readonly #cookies = new Map<string, string>();
  /** The typed API client, with this visitor's cookies. */
  readonly api: ApiClient;
  /** The server that answered last (X-Served-By). */
  lastServer: string | null = null;

  constructor(
    baseUrl: string,
    readonly userAgent = 'statewise-lab/1.0',
  ) {
    const send = cookieFetch({ cookies: this.#cookies, userAgent });
    this.api = createApiClient({
      baseUrl,
      fetch: async (request) => {
        const response = await send(request);
        this.lastServer = response.headers.get('x-served-by');
        return response;
      },
    });
  }
}
