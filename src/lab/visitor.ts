/** A browser-like client for the lab: its own cookies (session, sticky server), one User-Agent. */
export class Visitor {
  readonly #cookies = new Map<string, string>();
  /** The server that answered last (X-Served-By). */
  lastServer: string | null = null;

  constructor(
    private readonly baseUrl: string,
    readonly userAgent = 'statewise-lab/1.0',
  ) {}

  async request(method: string, path: string, json?: unknown): Promise<{ status: number; body: any }> {
    const headers: Record<string, string> = { 'user-agent': this.userAgent };
    if (this.#cookies.size > 0) headers.cookie = [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    if (json !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers,
      body: json === undefined ? undefined : JSON.stringify(json),
    });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const at = pair!.indexOf('=');
      const name = pair!.slice(0, at);
      const value = pair!.slice(at + 1);
      if (/expires=Thu, 01 Jan 1970/i.test(line) || value === '') this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
    this.lastServer = response.headers.get('x-served-by');
    const text = await response.text();
    return {
      status: response.status,
      body: text && /json/.test(response.headers.get('content-type') ?? '') ? JSON.parse(text) : text,
    };
  }
}
