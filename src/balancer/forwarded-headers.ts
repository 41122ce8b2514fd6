import type { IncomingHttpHeaders } from 'node:http';

type HeaderTarget = Record<string, string | string[] | number | undefined>;

/**
 * X-Forwarded-For (the client appended to any proxies before us), -Proto and -Host (as the client
 * sent them to us), so app servers see the real client and origin.
 */
export function addForwardedHeaders(
  target: HeaderTarget,
  original: IncomingHttpHeaders,
  clientAddress: string | undefined,
  proto: 'http' | 'https',
): void {
  const client = clientAddress ?? 'unknown';
  const before = original['x-forwarded-for'];
  target['x-forwarded-for'] = before ? `${before}, ${client}` : client;
  target['x-forwarded-proto'] = proto;
  if (original.host !== undefined) target['x-forwarded-host'] = original.host;
}
