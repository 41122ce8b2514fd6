import type { IncomingHttpHeaders } from 'node:http';

/**
 * Appends X-Forwarded-For (the client appended to any proxies before us), -Proto and -Host (as the
 * client sent them to us) to a flat name, value list, so app servers see the real client and origin.
 */
export function forwardedHeaders(
  target: string[],
  original: IncomingHttpHeaders,
  clientAddress: string | undefined,
  proto: 'http' | 'https',
): void {
  const client = clientAddress ?? 'unknown';
  const before = original['x-forwarded-for'];
  target.push('x-forwarded-for', before ? `${before}, ${client}` : client, 'x-forwarded-proto', proto);
  if (original.host !== undefined) target.push('x-forwarded-host', original.host);
}
