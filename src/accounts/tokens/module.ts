import type { App } from '../../server/app-type.ts';
import type { ServerContext } from '../../server/context.ts';
import { AppError } from '../../server/errors.ts';
import { responses } from '../../server/schemas.ts';
import type { UserId } from '../../state/types.ts';
import { credentialChecker } from '../credentials.ts';
import { RateLimiter } from '../rate-limiter.ts';
import { Credentials } from '../schemas.ts';
import { AccessTokens, revokedBeforeKey } from './access-tokens.ts';
import { KeyRing } from './key-ring.ts';
import { RefreshTokens } from './refresh-tokens.ts';
import { Jwks, RefreshRequest, TokenPair } from './schemas.ts';

const tags = ['tokens'];

/**
 * API tokens: short-lived RS256 access JWTs any server verifies on its own, rotating single-use
 * refresh tokens, and the JWKS that publishes the verification keys.
 */
export async function tokenModule(app: App, ctx: ServerContext): Promise<void> {
  const { config, users } = ctx;
  const ring = await KeyRing.open(ctx.db, config.databaseUrl);
  ctx.lifecycle.onClose('signing keys', () => ring.close());
  const access = new AccessTokens(ring, ctx.state.keys, {
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
    ttlSeconds: config.accessTokenTtlSeconds,
  });
  const refresh = new RefreshTokens(ctx.db, config.refreshTokenTtlSeconds);
  const limiter = new RateLimiter(ctx.state.keys, 'login', config.loginWindowMs);
  const checkCredentials = credentialChecker(ctx);
  ctx.auth.useTokenVerifier(access);

  // Log out everywhere: refresh families die, and access tokens issued until now are refused
  // until the longest of them would have expired anyway.
  ctx.logoutEverywhereHooks.push(async (userId) => {
    const nowSeconds = Math.floor(Date.now() / 1000);
    await Promise.all([
      refresh.revokeAllForUser(userId),
      ctx.state.keys.set(revokedBeforeKey(userId), String(nowSeconds), (config.accessTokenTtlSeconds + 120) * 1000),
    ]);
  });

  const pair = (user: { id: UserId; username: string }, refreshToken: string) => {
    const { token, expiresIn } = access.issue(user);
    return { accessToken: token, refreshToken, tokenType: 'Bearer' as const, expiresIn };
  };

  app.post(
    '/api/auth/token',
    { schema: { tags, body: Credentials, response: responses({ 200: TokenPair }, [400, 401, 429]) } },
    async (request) => {
      const { username, password } = request.body;
      const user = await checkCredentials(username, password, request.ip);
      return pair(user, await refresh.issue(user.id));
    },
  );

  app.post(
    '/api/auth/refresh',
    { schema: { tags, body: RefreshRequest, response: responses({ 200: TokenPair }, [400, 401, 429]) } },
    async (request) => {
      await limiter.hit([{ subject: `ip:${request.ip}`, max: config.loginIpLimit }]);
      const outcome = await refresh.rotate(request.body.refreshToken);
      if (outcome.kind === 'reused') {
        request.log.warn(
          { event: 'refresh_token_reuse', userId: outcome.userId },
          'refresh token reused; family revoked',
        );
        throw new AppError(
          'invalid_token',
          'This refresh token was already used; every token of its sign-in is revoked.',
        );
      }
      const user = await users.byId(outcome.userId);
      if (!user) throw new AppError('invalid_token', 'The account of this token is gone.');
      return pair(user, outcome.token);
    },
  );

  app.get('/.well-known/jwks.json', { schema: { tags, response: { 200: Jwks } } }, async (_request, reply) => {
    reply.header('cache-control', 'public, max-age=60');
    return ring.jwks();
  });
}
