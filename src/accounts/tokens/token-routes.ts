import { randomUUID } from 'node:crypto';
import type { App } from '../../kernel/app-type.ts';
import { AppError } from '../../kernel/errors.ts';
import type { UserId } from '../../kernel/ids.ts';
import { responses, Security } from '../../kernel/responses.ts';
import type { UsersTable } from '../users.ts';
import type { CheckCredentials } from '../credentials.ts';
import type { RateLimiter } from '../rate-limiter.ts';
import { Credentials } from '../schemas.ts';
import type { AccessTokens } from './access-tokens.ts';
import type { KeyRing } from './key-ring.ts';
import type { RefreshTokens } from './refresh-tokens.ts';
import { Jwks, RefreshRequest, TokenPair } from './schemas.ts';

const tags = ['tokens'];

export interface TokenRoutesDeps {
  users: UsersTable;
  access: AccessTokens;
  refresh: RefreshTokens;
  keyRing: KeyRing;
  checkCredentials: CheckCredentials;
  /** Refreshes count against the per-address login limit (the same 'login' budget). */
  refreshLimiter: RateLimiter;
  loginIpLimit: number;
}

/**
 * API tokens: short-lived RS256 access JWTs any server verifies on its own, rotating single-use
 * refresh tokens, and the JWKS that publishes the verification keys.
 */
export function tokenRoutes(app: App, deps: TokenRoutesDeps): void {
  const { users, access, refresh } = deps;

  /** An access token and the refresh token beside it, of one sign-in (the refresh token's family). */
  const pair = async (user: { id: UserId; username: string }, refreshToken: string, signIn: string) => {
    const { token, expiresIn } = await access.issue(user, signIn);
    return { accessToken: token, refreshToken, tokenType: 'Bearer' as const, expiresIn };
  };

  app.post(
    '/api/auth/token',
    {
      schema: {
        operationId: 'createToken',
        summary: 'Get an access and refresh token pair',
        description:
          'For API clients: checks the password (the same attempt limits as login) and answers a short-lived bearer access token and a single-use refresh token.',
        tags,
        security: Security.none,
        body: Credentials,
        response: responses({ 200: TokenPair }, [400, 401, 429, 503]),
      },
    },
    async (request) => {
      const { username, password } = request.body;
      const user = await deps.checkCredentials(username, password, request.ip);
      const signIn = randomUUID();
      return pair(user, await refresh.issue(user.id, signIn), signIn);
    },
  );

  app.post(
    '/api/auth/refresh',
    {
      schema: {
        operationId: 'refreshToken',
        summary: 'Swap a refresh token for a new pair',
        description:
          'Answers a new access token and a new refresh token; the one sent is used up. A refresh token used twice is refused (401 `invalid_token`) and every token of its sign-in is revoked.',
        tags,
        security: Security.none,
        body: RefreshRequest,
        response: responses({ 200: TokenPair }, [400, 401, 429, 503]),
      },
    },
    async (request) => {
      await deps.refreshLimiter.hit([{ subject: `ip:${request.ip}`, max: deps.loginIpLimit }]);
      const outcome = await refresh.rotate(request.body.refreshToken);
      if (outcome.kind === 'reused') {
        // The refresh tokens of the family died in rotate(); its access tokens die here.
        await access.revokeSignIn(outcome.userId, outcome.familyId);
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
      return pair(user, outcome.token, outcome.familyId);
    },
  );

  app.get(
    '/.well-known/jwks.json',
    {
      schema: {
        operationId: 'getJwks',
        summary: 'The public keys that sign access tokens',
        description:
          'A JSON Web Key Set (RS256), for verifying access tokens anywhere. Cache-Control: public, max-age=60.',
        tags,
        security: Security.none,
        response: { 200: Jwks },
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=60');
      return deps.keyRing.jwks();
    },
  );
}
