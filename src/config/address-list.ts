import { BlockList, isIP, isIPv6 } from 'node:net';
import { ConfigError } from './read-env.ts';

/** Names proxy-addr (Fastify's trustProxy) knows for ranges of addresses. */
const NAMED_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * A setting that names hosts (SW_TRUSTED_PROXIES, SW_METRICS_FROM): a comma-separated list of
 * addresses, CIDRs (10.0.0.0/8, fd00::/8) or the names loopback, linklocal, uniquelocal (as
 * Fastify's trustProxy takes them). Empty: loopback.
 */
export function parseAddressList(name: string, value: string | undefined): string[] {
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

/** The named ranges of the address settings, as subnets. */
const NAMED: Record<string, Array<[string, number, 'ipv4' | 'ipv6']>> = {
  loopback: [
    ['127.0.0.0', 8, 'ipv4'],
    ['::1', 128, 'ipv6'],
  ],
  linklocal: [
    ['169.254.0.0', 16, 'ipv4'],
    ['fe80::', 10, 'ipv6'],
  ],
  uniquelocal: [
    ['10.0.0.0', 8, 'ipv4'],
    ['172.16.0.0', 12, 'ipv4'],
    ['192.168.0.0', 16, 'ipv4'],
    ['fc00::', 7, 'ipv6'],
  ],
};

/** An address list (parseAddressList) as a matcher of client addresses (IPv4-mapped IPv6 too). */
export function addressMatcher(entries: string[]): (address: string) => boolean {
  const list = new BlockList();
  for (const entry of entries) {
    for (const [net, bits, type] of NAMED[entry] ?? []) list.addSubnet(net, bits, type);
    if (NAMED[entry]) continue;
    const [address, bits] = entry.split('/') as [string, string | undefined];
    const type = isIPv6(address) ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(bits), type);
  }
  return (address) => {
    const plain = address.replace(/^::ffff:(?=\d+\.)/, '');
    return list.check(plain, isIPv6(plain) ? 'ipv6' : 'ipv4');
  };
}
