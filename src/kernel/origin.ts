import type { FastifyRequest } from 'fastify';

/**
 * The request's Origin when it names another host than the one asked (a page of another site), or
 * undefined (same host, or no Origin: not a browser). One check for every process: the CSRF guard
 * of /api, the /ws upgrade, and the cluster control API.
 */
export function foreignOrigin(request: FastifyRequest): string | undefined {
  const origin = request.headers.origin;
  if (origin === undefined) return undefined;
  let host: string | undefined;
  try {
    host = new URL(origin).host;
  } catch {
    host = undefined;
  }
  return host === request.host ? undefined : origin;
}
