import type { UserRow, UsersTable } from './users.ts';
import type { KeyStore } from '../state/types.ts';
import { AppError } from '../kernel/errors.ts';
import type { WarnLog } from '../kernel/periodic.ts';
import type { PasswordHasher } from './passwords.ts';
import { loginLimits, RateLimiter } from './rate-limiter.ts';

export type CheckCredentials = (username: string, password: string, ip: string) => Promise<UserRow>;

/**
 * The password check behind both a browser login and a token request. They share one limiter
 * ('login'), so switching from one to the other does not double the attempts; an unknown username
 * costs the same scrypt time and gets the same answer as a wrong password, so neither the timing
 * nor the text tells whether the account exists. A hash made with weaker parameters than new
 * ones is replaced at the sign-in that proves the password (the only moment it is known).
 */
export function credentialChecker({
  users,
  keys,
  passwords,
  limits,
  log,
}: {
  users: UsersTable;
  keys: KeyStore;
  passwords: PasswordHasher;
  log: WarnLog;
  limits: { loginLimit: number; loginIpLimit: number; loginWindowMs: number };
}): CheckCredentials {
  const limiter = new RateLimiter(keys, 'login', limits.loginWindowMs);
  const refuse = () => new AppError('invalid_credentials', 'Wrong username or password.');
  return async (username, password, ip) => {
    await limiter.hit(loginLimits(limits, username, ip));
    const user = await users.byUsername(username);
    if (!user) {
      await passwords.burn(password);
      throw refuse();
    }
    if (!(await passwords.verify(password, user.passwordHash))) throw refuse();
    if (passwords.needsRehash(user.passwordHash)) {
      // The sign-in stands whatever happens here: the old hash still works next time.
      await passwords
        .hash(password)
        .then((stronger) => users.replacePasswordHash(user.id, user.passwordHash, stronger))
        .catch((error: unknown) => log.warn({ err: error, user: user.id }, 'password rehash failed'));
    }
    return user;
  };
}
