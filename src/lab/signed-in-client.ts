/**
 * One user of the fault experiments (atm, deploys, chat, memory): its cookies, the headers a
 * request adds (a pin to one server, an Idempotency-Key) and a time bound. A request that gets no
 * answer (connection cut, time bound) is status 0, never a throw: the experiments count those.
 */
import { createApiClient, dataOf, type ApiClient } from '../client/api-client.ts';
import { cookieFetch, cookieHeader } from '../client/cookie-fetch.ts';

/** Sessions are bound to the User-Agent: every request and socket of a user sends this one. */
export const FAULT_LAB_USER_AGENT = 'statewise-lab/1.0';
export const PIN_HEADER = 'x-statewise-server';
const PASSWORD = 'a long lab password';

export interface Answer {
  /** 0: no answer (connection cut, refused, timed out). */
  status: number;
  body: any;
  /** X-Served-By. */
  server: string | null;
  /** Idempotent-Replayed: true. */
  replayed: boolean;
}

export interface RequestOptions {
  json?: unknown;
  headers?: Record<string, string>;
  /** @default 15000 */
  timeoutMs?: number;
}

export class SignedInClient {
  readonly #cookies = new Map<string, string>();
  readonly #send = cookieFetch({ cookies: this.#cookies, userAgent: FAULT_LAB_USER_AGENT });
  /** The typed API client, with this user's cookies. */
  readonly api: ApiClient;

  private constructor(
    readonly baseUrl: string,
    readonly username: string,
  ) {
    this.api = createApiClient({ baseUrl, fetch: this.#send });
  }

  /** Registers `username` (pinned to `server` when given: a stateful session lives where it was made). */
  static async register(baseUrl: string, username: string, server?: string): Promise<SignedInClient> {
    const client = new SignedInClient(baseUrl, username);
    await dataOf(
      client.api.POST('/api/auth/register', {
        body: { username, password: PASSWORD },
        headers: server ? { [PIN_HEADER]: server } : {},
        signal: AbortSignal.timeout(60_000),
      }),
    );
    return client;
  }

  /** An access token (POST /api/auth/token): for a user that must reach every server in stateful mode. */
  async accessToken(): Promise<string> {
    const { accessToken } = await dataOf(
      this.api.POST('/api/auth/token', {
        body: { username: this.username, password: PASSWORD },
        signal: AbortSignal.timeout(60_000),
      }),
    );
    return accessToken;
  }

  /** The Cookie header: what a WebSocket of this user sends. */
  get cookie(): string {
    return cookieHeader(this.#cookies);
  }

  /**
   * Any request by method and path, never a throw (the experiments pick the operation at run time
   * and count the requests that got no answer).
   */
  async request(method: string, path: string, options: RequestOptions = {}): Promise<Answer> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.json !== undefined) headers['content-type'] = 'application/json';
    try {
      const response = await this.#send(
        new Request(`${this.baseUrl}${path}`, {
          method,
          headers,
          body: options.json === undefined ? undefined : JSON.stringify(options.json),
          signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
        }),
      );
      const text = await response.text();
      return {
        status: response.status,
        body: text && /json/.test(response.headers.get('content-type') ?? '') ? JSON.parse(text) : text,
        server: response.headers.get('x-served-by'),
        replayed: response.headers.get('idempotent-replayed') === 'true',
      };
    } catch (error) {
      return { status: 0, body: String(error), server: null, replayed: false };
    }
  }
}
