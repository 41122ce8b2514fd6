/**
 * One user of the fault experiments (atm, deploys, chat, memory): its cookies, the headers a
 * request adds (a pin to one server, an Idempotency-Key) and a time bound. A request that gets no
 * answer (connection cut, time bound) is status 0, never a throw: the experiments count those.
 */

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

  private constructor(
    readonly baseUrl: string,
    readonly username: string,
  ) {}

  /** Registers `username` (pinned to `server` when given: a stateful session lives where it was made). */
  static async register(baseUrl: string, username: string, server?: string): Promise<SignedInClient> {
    const client = new SignedInClient(baseUrl, username);
    const answer = await client.request('POST', '/api/auth/register', {
      json: { username, password: PASSWORD },
      headers: server ? { [PIN_HEADER]: server } : {},
      timeoutMs: 60_000,
    });
    if (answer.status !== 201) throw new Error(`register ${username}: ${answer.status} ${JSON.stringify(answer.body)}`);
    return client;
  }

  /** An access token (POST /api/auth/token): for a user that must reach every server in stateful mode. */
  async accessToken(): Promise<string> {
    const answer = await this.request('POST', '/api/auth/token', {
      json: { username: this.username, password: PASSWORD },
      timeoutMs: 60_000,
    });
    if (answer.status !== 200)
      throw new Error(`token ${this.username}: ${answer.status} ${JSON.stringify(answer.body)}`);
    return answer.body.accessToken as string;
  }

  /** The Cookie header: what a WebSocket of this user sends. */
  get cookie(): string {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  async request(method: string, path: string, options: RequestOptions = {}): Promise<Answer> {
    const headers: Record<string, string> = { 'user-agent': FAULT_LAB_USER_AGENT, ...options.headers };
    if (this.#cookies.size > 0) headers.cookie = this.cookie;
    if (options.json !== undefined) headers['content-type'] = 'application/json';
    try {
      const response = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers,
        body: options.json === undefined ? undefined : JSON.stringify(options.json),
        signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
      });
      for (const line of response.headers.getSetCookie()) {
        const [pair] = line.split(';');
        const at = pair!.indexOf('=');
        const name = pair!.slice(0, at).trim();
        const value = pair!.slice(at + 1).trim();
        if (value === '' || /expires=Thu, 01 Jan 1970/i.test(line)) this.#cookies.delete(name);
        else this.#cookies.set(name, value);
      }
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
