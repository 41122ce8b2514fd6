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
