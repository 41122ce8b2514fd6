import type { IncomingHttpHeaders } from 'node:http';

export const STICKY_COOKIE = 'sw_server';

const COOKIE_PATTERN = /(?:^|;\s*)sw_server=([^;\s]*)/;

/** The server id in the client's sw_server cookie, if any. */
export function readStickyCookie(cookieHeader: string | undefined): string | undefined {
  if (cookieHeader === undefined) return undefined;
  return COOKIE_PATTERN.exec(cookieHeader)?.[1] || undefined;
}

export function stickySetCookie(id: string): string {
  return `${STICKY_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Lax`;
}

/** Adds our Set-Cookie after the upstream's own: an app's cookies (the session) are never dropped. */
export function appendSetCookie(headers: IncomingHttpHeaders, cookie: string): void {
  // undici gives a single Set-Cookie as a string, several as an array (whatever the type says).
  const existing: unknown = headers['set-cookie'];
  if (Array.isArray(existing)) headers['set-cookie'] = [...(existing as string[]), cookie];
  else headers['set-cookie'] = typeof existing === 'string' ? [existing, cookie] : [cookie];
}
