import { AppError } from '../kernel/errors.ts';
import type { KeyStore } from '../state/types.ts';

export interface Limit {
  /** What is counted, e.g. `user:alice` or `ip:10.0.0.7`. */
  subject: string;
  max: number;
}

/**
 * Fixed-window limits kept in the shared KeyStore, so N servers enforce one limit, not N of them.
 * Every attempt counts (an atomic increment first, then the check), so concurrent attempts on
 * different servers cannot slip past the limit together.
 */
export class RateLimiter {
  constructor(
    private readonly keys: KeyStore,
    private readonly name: string,
    private readonly windowMs: number,
  ) {}

  async hit(limits: readonly Limit[]): Promise<void> {
    const results = await Promise.all(limits.map((l) => this.keys.hit(`rl:${this.name}:${l.subject}`, this.windowMs)));
    const over = results.filter((r, i) => r.count > limits[i]!.max);
    if (over.length > 0) {
      const waitMs = Math.max(...over.map((r) => r.resetInMs));
      throw new AppError('rate_limited', 'Too many attempts; wait and try again.', {
        retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)),
      });
    }
  }
}

/** The limits on password attempts (login and token): per username and per client address. */
export function loginLimits(
  config: { loginLimit: number; loginIpLimit: number },
  username: string,
  ip: string,
): Limit[] {
  return [
    { subject: `user:${username}`, max: config.loginLimit },
    { subject: `ip:${ip}`, max: config.loginIpLimit },
  ];
}
