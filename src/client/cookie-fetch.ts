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
    // The headers are set on the request itself (each is made for one call), not on a copy: the
    // abort signal of a Request copied from another can be collected on Node 20, and a call whose
    // time limit was lost that way hangs for good (seen in the network-partition test).
    const { headers } = request;
    // A request may pose as another browser (a test of sessions bound to the User-Agent).
    if (!headers.has('user-agent')) headers.set('user-agent', options.userAgent);
    if (options.cookies.size > 0) headers.set('cookie', cookieHeader(options.cookies));
    const response = await fetch(request);
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
