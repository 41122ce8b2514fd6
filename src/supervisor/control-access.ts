import { timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { AppError } from '../kernel/errors.ts';
import { foreignOrigin } from '../kernel/origin.ts';

const LOOPBACK_ADDRESSES = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);
const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];
const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

function hasAdminToken(request: FastifyRequest, adminToken: string): boolean {
  const header = request.headers.authorization ?? '';
  const given = Buffer.from(header.startsWith('Bearer ') ? header.slice(7) : '');
  const expected = Buffer.from(adminToken);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * The names this balancer answers to on loopback: `localhost:PORT` and the loopback addresses, plus
 * the address it was told to listen on. A page on another name that resolves to 127.0.0.1 (DNS
 * rebinding) sends its own name as Host, so it is not trusted as a loopback caller.
 */
function isOwnHost(request: FastifyRequest, listenHost: string): boolean {
  const port = request.socket.localPort;
  const names = [...LOOPBACK_NAMES, listenHost.includes(':') ? `[${listenHost}]` : listenHost];
  return names.some((name) => request.headers.host === `${name}:${port}`);
}

/** A browser's marks that an unsafe request comes from a page of another origin. */
function crossSite(request: FastifyRequest): string | undefined {
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return `Sec-Fetch-Site: ${site}`;
  const origin = foreignOrigin(request);
  return origin === undefined ? undefined : `Origin ${origin}`;
}

/**
 * Who may use /_cluster. A page on any other origin may not change anything (the browser of a
 * visitor on loopback would otherwise obey it); loopback callers that name this balancer as their
 * Host, or holders of the admin token, may use it.
 */
export function checkControlAccess(request: FastifyRequest, options: { adminToken: string; listenHost: string }): void {
  if (UNSAFE.has(request.method)) {
    const why = crossSite(request);
    if (why) throw new AppError('forbidden', `Cluster control refuses requests from another site (${why}).`);
  }
  if (hasAdminToken(request, options.adminToken)) return;
  const loopback = LOOPBACK_ADDRESSES.has(request.socket.remoteAddress ?? '');
  if (loopback && isOwnHost(request, options.listenHost)) return;
  throw new AppError('forbidden', 'Use the admin token printed by npm start (Authorization: Bearer <token>).');
}
