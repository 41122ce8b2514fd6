import { isIP } from 'node:net';
import { ConfigError } from './read-env.ts';

/** Names proxy-addr (Fastify's trustProxy) knows for ranges of addresses. */
const NAMED_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * SW_TRUSTED_PROXIES: the balancers whose X-Forwarded-For is believed, as a comma-separated list
 * of addresses, CIDRs (10.0.0.0/8, fd00::/8) or the names loopback, linklocal, uniquelocal. The
 * client's address is then the last one in the chain that is not a trusted proxy: an
 * X-Forwarded-For a client writes itself is never believed, since its own address is not trusted.
 */
export function parseTrustedProxies(name: string, value: string | undefined): string[] {
  if (value === undefined || value.trim() === '') return ['loopback'];
  const entries = value.split(',').map((entry) => entry.trim());
  for (const entry of entries) {
    if (NAMED_RANGES.has(entry)) continue;
    const [address, bits, extra] = entry.split('/');
    const family = isIP(address ?? '');
    const maxBits = family === 6 ? 128 : 32;
    const bitsOk = bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= maxBits);
    if (family === 0 || !bitsOk || extra !== undefined) {
      throw new ConfigError(
        name,
        `must list addresses, CIDRs or loopback/linklocal/uniquelocal (e.g. "loopback,10.0.0.0/8"), got "${entry}"`,
      );
    }
  }
  return entries;
}
