/**
 * A fetch for Node callers that act as one browser (the lab, the tests): it sends the cookies it
 * was given (by name) and one User-Agent, and keeps what every answer's Set-Cookie says.
 */
export interface CookieFetchOptions {
  cookies: Map<string, string>;
  userAgent: string;
}

export function cookieFetch(options: CookieFetchOptions): (request: Request) => Promise<Response> {
  return async (request) => {
    const headers = new Headers(request.headers);
    // A request may pose as another browser (a test of sessions bound to the User-Agent).
    if (!headers.has('user-agent')) headers.set('user-agent', options.userAgent);
    if (options.cookies.size > 0) headers.set('cookie', cookieHeader(options.cookies));
    const response = await fetch(new Request(request, { headers }));
    keepCookies(options.cookies, response);
    return response;
  };
}

/** The Cookie header of `cookies`: what a WebSocket of the same browser sends too. */
export const cookieHeader = (cookies: Map<string, string>) =>
  [...cookies].map(([name, value]) => `${name}=${value}`).join('; ');

function keepCookies(cookies: Map<string, string>, response: Response): void {
  for (const line of response.headers.getSetCookie()) {
    const [pair = ''] = line.split(';');
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    // A cleared cookie comes back empty or already expired.
    if (value === '' || /expires=Thu, 01 Jan 1970/i.test(line)) cookies.delete(name);
    else cookies.set(name, value);
  }
}
