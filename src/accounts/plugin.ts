import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger } from 'fastify';
import fp from 'fastify-plugin';
import type pg from 'pg';
import type { ServerConfig } from '../config/server-config.ts';
import type { UserId } from '../kernel/ids.ts';
import type { PgListener } from '../records/pg-listener.ts';
import { UsersTable } from './users.ts';
import type { SessionRecord, StateStore } from '../state/types.ts';
import { assertSameOrigin, Authenticator } from './authenticate.ts';
import { credentialChecker } from './credentials.ts';
import { PasswordHasher } from './passwords.ts';
import { RateLimiter } from './rate-limiter.ts';
import { Revocations } from './revocations.ts';
import { accountRoutes } from './routes.ts';
import { SessionManager } from './session-manager.ts';
import { AccessTokens } from './tokens/access-tokens.ts';
import { KeyEncryption } from './tokens/key-encryption.ts';
import { KeyRing } from './tokens/key-ring.ts';
import { RefreshTokens } from './tokens/refresh-tokens.ts';
import { tokenRoutes } from './tokens/token-routes.ts';

/** Called when a visitor signs in, so another part can carry visitor state over (the cart). */
export type VisitorSignInHook = (visitor: SessionRecord, user: SessionRecord) => Promise<void>;

/** What the accounts part offers the others (`app.accounts`; `app.auth` says who a request is from). */
export interface Accounts {
  readonly users: UsersTable;
  readonly sessions: SessionManager;
  /** Announcements that a user's credentials were revoked (from any server). */
  readonly revocations: Revocations;
  /** Runs `hook` whenever a visitor session becomes a user's (sign-in, registration). */
  onVisitorSignIn(hook: VisitorSignInHook): void;
}

declare module 'fastify' {
  interface FastifyInstance {
    auth: Authenticator;
    accounts: Accounts;
  }
}

/** What the accounts part needs from the composition root. */
export interface AccountsDeps {
  config: ServerConfig;
  db: pg.Pool;
  state: StateStore;
  listener: PgListener;
  log: FastifyBaseLogger;
}

/**
 * Accounts: users, browser sessions, API tokens, rate limits, and the CSRF check of every /api
 * request. Offers `auth` (who a request is from) and `accounts` to the parts that depend on it.
 */
export const accountsPlugin = fp<AccountsDeps>(
  async (fastify, { config, db, state, listener, log }) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const users = new UsersTable(db);
    const revocations = new Revocations(state.bus, log);
    const sessions = new SessionManager(
      state.sessions,
      {
        idleMs: config.sessionIdleMs,
        absoluteMs: config.sessionAbsoluteMs,
        bindUserAgent: config.sessionBindUserAgent,
      },
      (userId) => revocations.announce(userId),
    );
    const ring = await KeyRing.open(db, new KeyEncryption(config.keyEncryption), listener, log);
    app.addHook('onClose', () => ring.close());
    const access = new AccessTokens(ring, state.hashes, {
      issuer: config.jwtIssuer,
      audience: config.jwtAudience,
      ttlSeconds: config.accessTokenTtlSeconds,
    });
    const refresh = new RefreshTokens(db, config.refreshTokenTtlSeconds);
    const unknownIds = new RateLimiter(state.keys, 'unknown-sid', config.loginWindowMs);
    const auth = new Authenticator(sessions, access, log, (ip) =>
      unknownIds.hit([{ subject: `ip:${ip}`, max: config.unknownSessionIpLimit }]),
    );
    const signInHooks: VisitorSignInHook[] = [];
    const passwords = new PasswordHasher({
      concurrency: config.passwordHashConcurrency,
      maxWaiting: config.passwordHashQueue,
    });
    const checkCredentials = credentialChecker({ users, keys: state.keys, passwords, limits: config, log });

    /** Log out everywhere: sessions end, refresh families die, and access tokens issued until now are refused. */
    const logoutEverywhere = async (userId: UserId) => {
      await Promise.all([
        sessions.endAllForUser(userId),
        refresh.revokeAllForUser(userId),
        access.revokeAllForUser(userId),
      ]);
      revocations.announce(userId);
    };
    /** Log out one token sign-in: its refresh tokens die, and its access tokens are refused. */
    const logoutSignIn = async (userId: UserId, signIn: string) => {
      await Promise.all([refresh.revokeFamily(signIn), access.revokeSignIn(userId, signIn)]);
      revocations.announce(userId);
    };

    app.decorate('auth', auth);
    app.decorate('accounts', {
      users,
      sessions,
      revocations,
      onVisitorSignIn: (hook: VisitorSignInHook) => void signInHooks.push(hook),
    } satisfies Accounts);

    app.addHook('onRequest', async (request) => {
      if (request.url.startsWith('/api/')) assertSameOrigin(request);
    });
    accountRoutes(app, {
      users,
      sessions,
      auth,
      checkCredentials,
      passwords,
      logoutEverywhere,
      logoutSignIn,
      onVisitorSignIn: async (visitor, user) => {
        for (const hook of signInHooks) await hook(visitor, user);
      },
    });
    tokenRoutes(app, {
      users,
      access,
      refresh,
      checkCredentials,
      keyRing: ring,
      refreshLimiter: new RateLimiter(state.keys, 'login', config.loginWindowMs),
      loginIpLimit: config.loginIpLimit,
    });
  },
  { name: 'accounts', fastify: '5.x' },
);
