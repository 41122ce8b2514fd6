/**
 * One user of the fault experiments (atm, deploys, chat, memory): its cookies and its typed `api`;
 * `attempt` makes a call time-bounded and a request that gets no answer (connection cut, time
 * bound) status 0, never a throw: the experiments count those.
 */
import { createApiClient, dataOf, type Answer, type ApiClient } from '../client/api-client.ts';
import { cookieFetch, cookieHeader } from '../client/cookie-fetch.ts';
import { outcome, type Outcome } from './outcome.ts';
import { patiently } from './patiently.ts';

/** Sessions are bound to the User-Agent: every request and socket of a user sends this one. */
export const FAULT_LAB_USER_AGENT = 'statewise-lab/1.0';
export const PIN_HEADER = 'x-statewise-server';
const PASSWORD = 'a long lab password';

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
      patiently(() =>
        client.api.POST('/api/auth/register', {
          body: { username, password: PASSWORD },
          headers: server ? { [PIN_HEADER]: server } : {},
          signal: AbortSignal.timeout(60_000),
        }),
      ),
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
   * A typed call of this user's `api`, time-bounded (the call puts `signal` in its request), never
   * a throw: the experiments count the requests that got no answer (status 0).
   */
  attempt<T>(call: (signal: AbortSignal) => Promise<Answer<T>>, timeoutMs = 15_000): Promise<Outcome<T>> {
    return outcome(call(AbortSignal.timeout(timeoutMs)));
  }
}
