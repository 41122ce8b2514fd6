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
function isOwnHost(request: FastifyRequest, listenHost: string, port: number | undefined): boolean {
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
export interface ControlAccessOptions {
  adminToken: string;
  listenHost: string;
  /**
   * HAProxy or nginx on this machine listens on this public port and forwards /_cluster here with
   * X-Forwarded-For: then the client is the address that balancer appended last (a client's own
   * X-Forwarded-For comes before it), and its Host names the public port.
   */
  forwardedFrom?: { port: number };
}

/** The caller's address: the socket's, or behind our own local balancer, the one it forwarded. */
function clientAddress(request: FastifyRequest, options: ControlAccessOptions): string {
  const peer = request.socket.remoteAddress ?? '';
  if (!options.forwardedFrom || !LOOPBACK_ADDRESSES.has(peer)) return peer;
  const forwarded = request.headers['x-forwarded-for'];
  const last = (Array.isArray(forwarded) ? forwarded.join(',') : (forwarded ?? '')).split(',').at(-1)?.trim();
  return last || peer;
}

export function checkControlAccess(request: FastifyRequest, options: ControlAccessOptions): void {
  if (UNSAFE.has(request.method)) {
    const why = crossSite(request);
    if (why) throw new AppError('forbidden', `Cluster control refuses requests from another site (${why}).`);
  }
  if (hasAdminToken(request, options.adminToken)) return;
  const loopback = LOOPBACK_ADDRESSES.has(clientAddress(request, options));
  const port = options.forwardedFrom?.port ?? request.socket.localPort;
  if (loopback && isOwnHost(request, options.listenHost, port)) return;
  throw new AppError('forbidden', 'Use the admin token printed by npm start (Authorization: Bearer <token>).');
}
