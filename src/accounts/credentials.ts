import type { UserRow, UsersTable } from './users.ts';
import type { KeyStore } from '../state/types.ts';
import { AppError } from '../kernel/errors.ts';
import { burnPasswordCheck, verifyPassword } from './passwords.ts';
import { loginLimits, RateLimiter } from './rate-limiter.ts';

export type CheckCredentials = (username: string, password: string, ip: string) => Promise<UserRow>;

/**
 * The password check behind both a browser login and a token request. They share one limiter
 * ('login'), so switching from one to the other does not double the attempts; an unknown username
 * costs the same scrypt time and gets the same answer as a wrong password, so neither the timing
 * nor the text tells whether the account exists.
 */
export function credentialChecker({
  users,
  keys,
  limits,
}: {
  users: UsersTable;
  keys: KeyStore;
  limits: { loginLimit: number; loginIpLimit: number; loginWindowMs: number };
}): CheckCredentials {
  const limiter = new RateLimiter(keys, 'login', limits.loginWindowMs);
  const refuse = () => new AppError('invalid_credentials', 'Wrong username or password.');
  return async (username, password, ip) => {
    await limiter.hit(loginLimits(limits, username, ip));
    const user = await users.byUsername(username);
    if (!user) {
      await burnPasswordCheck(password);
      throw refuse();
    }
    if (!(await verifyPassword(password, user.passwordHash))) throw refuse();
    return user;
  };
}
