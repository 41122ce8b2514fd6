import { parseCookie, stringifySetCookie, type SetCookie } from 'cookie';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * The session cookie: `__Host-sid` over HTTPS (the prefix forces Secure, Path=/ and no Domain),
 * `sid` over plain HTTP. No Max-Age: the server enforces idle and absolute limits, not the cookie.
 * Parsed only by the requests that look for a session (no hook runs on every request).
 */
const isHttps = (request: FastifyRequest): boolean => request.protocol === 'https';

const attributes = (request: FastifyRequest): Omit<SetCookie, 'name' | 'value'> => ({
  path: '/',
  httpOnly: true,
  sameSite: 'lax',
  secure: isHttps(request),
});

export function readSessionCookie(request: FastifyRequest): string | undefined {
  const header = request.headers.cookie;
  if (!header) return undefined;
  const cookies = parseCookie(header);
  return cookies['__Host-sid'] ?? cookies.sid;
}

export function setSessionCookie(request: FastifyRequest, reply: FastifyReply, token: string): void {
  const name = isHttps(request) ? '__Host-sid' : 'sid';
  appendSetCookie(reply, stringifySetCookie({ name, value: token, ...attributes(request) }));
}

export function clearSessionCookie(request: FastifyRequest, reply: FastifyReply): void {
  const name = isHttps(request) ? '__Host-sid' : 'sid';
  appendSetCookie(reply, stringifySetCookie({ name, value: '', ...attributes(request), expires: new Date(0) }));
}

function appendSetCookie(reply: FastifyReply, cookie: string): void {
  const existing = reply.getHeader('set-cookie');
  const list = existing === undefined ? [] : Array.isArray(existing) ? existing : [String(existing)];
  reply.header('set-cookie', [...list, cookie]);
}
