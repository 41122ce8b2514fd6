/**
 * The one check of the store URLs a user gives (command line or SW_* variables). Only the scheme is
 * checked here: `new URL` cannot parse a host list such as `redis+sentinel://h:1,h:2/master`, and
 * each client reports its own parse errors with the URL in the message.
 */
const SCHEMES = {
  database: ['postgres', 'postgresql'],
  redis: ['redis', 'rediss', 'redis+sentinel', 'redis+cluster'],
} as const;

/** The problem with `url`, in words that say how to fix it, or undefined when it is usable. */
export function storeUrlProblem(kind: keyof typeof SCHEMES, url: string): string | undefined {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\/[^\s]+$/i.exec(url)?.[1]?.toLowerCase();
  const allowed: readonly string[] = SCHEMES[kind];
  if (scheme !== undefined && allowed.includes(scheme)) return undefined;
  return `must be a URL starting with ${allowed.map((s) => `${s}://`).join(', ')}; got "${url}"`;
}
