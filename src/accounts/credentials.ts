import type { UserRow } from '../records/users.ts';
import type { ServerContext } from '../server/context.ts';
import { AppError } from '../server/errors.ts';
import { burnPasswordCheck, verifyPassword } from './passwords.ts';
import { loginLimits, RateLimiter } from './rate-limiter.ts';

export type CheckCredentials = (username: string, password: string, ip: string) => Promise<UserRow>;

/**
 * The password check behind both a browser login and a token request. They share one limiter
 * ('login'), so switching from one to the other does not double the attempts; an unknown username
 * costs the same scrypt time and gets the same answer as a wrong password, so neither the timing
 * nor the text tells whether the account exists.
 */
export function credentialChecker(ctx: Pick<ServerContext, 'users' | 'config' | 'state'>): CheckCredentials {
  const limiter = new RateLimiter(ctx.state.keys, 'login', ctx.config.loginWindowMs);
  const refuse = () => new AppError('invalid_credentials', 'Wrong username or password.');
  return async (username, password, ip) => {
    await limiter.hit(loginLimits(ctx.config, username, ip));
    const user = await ctx.users.byUsername(username);
    if (!user) {
      await burnPasswordCheck(password);
      throw refuse();
    }
    if (!(await verifyPassword(password, user.passwordHash))) throw refuse();
    return user;
  };
}
