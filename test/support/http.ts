/**
 * A small HTTP client for tests that behaves like one browser: it keeps its cookies (by name) and
 * its own User-Agent, and returns status, headers and parsed JSON.
 */
export interface HttpResult<T = any> {
  status: number;
  headers: Headers;
  body: T;
  servedBy: string | null;
}

export class Browser {
  readonly cookies = new Map<string, string>();

  constructor(
    readonly baseUrl: string,
    readonly userAgent = 'statewise-test-browser/1.0',
  ) {}

  async request<T = any>(
    method: string,
    path: string,
    options: { json?: unknown; headers?: Record<string, string>; body?: string } = {},
  ): Promise<HttpResult<T>> {
    const headers: Record<string, string> = { 'user-agent': this.userAgent, ...options.headers };
    if (this.cookies.size > 0) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    let body = options.body;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers['content-type'] ??= 'application/json';
    }
    const response = await fetch(`${this.baseUrl}${path}`, { method, headers, body, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
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
