import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import { AppError, isAppError } from '../kernel/errors.ts';
import { foreignOrigin } from '../kernel/origin.ts';
import type { SessionRecord } from '../state/types.ts';
import type { UserId } from '../kernel/ids.ts';
import { readSessionCookie } from './session-cookie.ts';
import type { SessionManager } from './session-manager.ts';

export type Principal =
  { via: 'session'; userId: UserId; username: string; session: SessionRecord } | ({ via: 'bearer' } & VerifiedToken);

/** Who an access token is for, and which sign-in issued it. */
export interface VerifiedToken {
  userId: UserId;
  username: string;
  tokenId: string;
  /** The sign-in (refresh token family); a token issued before sign-ins were named: its own id. */
  signIn: string;
}

/** Checks an access token on this server alone (signature, claims, revocation). */
export interface AccessTokenVerifier {
  verify(token: string): Promise<VerifiedToken>;
}

/** The credential of a long-lived connection: who it is from, and a way to ask again later. */
export interface LiveCredential {
  principal: Principal;
  /** False once the session ended or expired, or the token was revoked or expired. */
  stillValid(): Promise<boolean>;
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Works out who a request is from: a bearer access token, else the session cookie. Resolved at
 * most once per request (memoised), so a route and a hook asking twice cost one store read.
 */
export class Authenticator {
  readonly #resolved = new WeakMap<FastifyRequest, Promise<SessionRecord | null>>();
  /** Why a request's session cookie found no session, for its 401 to say. */
  readonly #whyNoSession = new WeakMap<FastifyRequest, string>();

  constructor(
    private readonly sessions: SessionManager,
    private readonly tokens: AccessTokenVerifier,
    private readonly log: FastifyBaseLogger,
    /**
     * Counts a request whose session id is not live, per client address, and throws 429 past the
     * limit: guessing ids costs a guesser the same shared budget on every server.
     */
    private readonly countUnknownId: (ip: string) => Promise<void> = async () => {},
  ) {}

  static bearerToken(request: FastifyRequest): string | undefined {
    const header = request.headers.authorization;
    if (!header || !header.startsWith('Bearer ')) return undefined;
    return header.slice(7).trim() || undefined;
  }

  /** The cookie session (a signed-in user's or a visitor's), or null. */
  session(request: FastifyRequest): Promise<SessionRecord | null> {
    let pending = this.#resolved.get(request);
    if (!pending) {
      pending = this.#resolveSession(request);
      this.#resolved.set(request, pending);
    }
    return pending;
  }

  /** The signed-in user, or 401. */
  async requireUser(request: FastifyRequest): Promise<Principal> {
    const principal = await this.optionalUser(request);
    if (principal) return principal;
    throw this.notSignedIn(request, 'Sign in first (session cookie or bearer token).');
  }

  /** The 401 for a request found without a user: why its session cookie found none, else `hint`. */
  notSignedIn(request: FastifyRequest, hint: string): AppError {
    return new AppError('not_authenticated', this.#whyNoSession.get(request) ?? hint);
  }

  async optionalUser(request: FastifyRequest): Promise<Principal | null> {
    const bearer = Authenticator.bearerToken(request);
    if (bearer !== undefined) {
      const claims = await this.tokens.verify(bearer);
      return { via: 'bearer', ...claims };
    }
    const session = await this.session(request);
    if (!session?.userId || !session.username) return null;
    return { via: 'session', userId: session.userId, username: session.username, session };
  }

  /**
   * For a connection that outlives its request (a WebSocket): the user, by access token (`token`,
   * e.g. from the query string, since browsers cannot set headers on an upgrade; or the bearer
   * header) or else by session cookie; null when neither is valid. Asking again later re-reads the
   * store: a session's check counts as its activity, as any request would.
   */
  async liveCredential(request: FastifyRequest, token?: string): Promise<LiveCredential | null> {
    const bearer = token ?? Authenticator.bearerToken(request);
    if (bearer !== undefined) {
      const claims = await this.tokens.verify(bearer);
      return {
        principal: { via: 'bearer', ...claims },
        // A refused token is gone for good; a store that cannot answer says nothing (the error goes up).
        stillValid: () =>
          this.tokens.verify(bearer).then(
            () => true,
            (error: unknown) => {
              if (isAppError(error)) return false;
              throw error;
            },
          ),
      };
    }
    const cookie = readSessionCookie(request);
    const session = await this.session(request);
    if (!cookie || !session?.userId || !session.username) return null;
    const userAgent = request.headers['user-agent'] ?? '';
    return {
      principal: { via: 'session', userId: session.userId, username: session.username, session },
      stillValid: async () => (await this.sessions.resolve(cookie, userAgent)).kind === 'ok',
    };
  }

  async #resolveSession(request: FastifyRequest): Promise<SessionRecord | null> {
    const token = readSessionCookie(request);
    if (!token) return null;
    const userAgent = request.headers['user-agent'] ?? '';
    const outcome = await this.sessions.resolve(token, userAgent);
    if (outcome.kind === 'user_agent_mismatch') {
      this.log.warn(
        {
          event: 'session_user_agent_mismatch',
          sessionId: outcome.session.id,
          userId: outcome.session.userId,
          reqId: request.id,
        },
        'session presented with another user agent; revoked',
      );
      this.#whyNoSession.set(
        request,
        'Your session was ended: its cookie came from another browser than the one that signed in (User-Agent), as a stolen cookie would. Sign in again.',
      );
      return null;
    }
    if (outcome.kind === 'none') {
      this.#whyNoSession.set(
        request,
        'Your session has ended (signed out, timed out, or ended from another device). Sign in again.',
      );
      await this.countUnknownId(request.ip);
      return null;
    }
    return outcome.session;
  }
}

/**
 * CSRF defence for cookie-authenticated requests: an unsafe request that a browser marks as coming
 * from another site is refused. Bearer requests are exempt (a browser never adds that header on
 * its own). Clients that send neither Origin nor Sec-Fetch-Site are not browsers and pass.
 */
export function assertSameOrigin(request: FastifyRequest): void {
  if (!UNSAFE.has(request.method) || Authenticator.bearerToken(request) !== undefined) return;
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    throw new AppError('csrf_rejected', 'Cross-site requests may not change anything here.');
  }
  const origin = foreignOrigin(request);
  if (origin !== undefined)
    throw new AppError('csrf_rejected', `Requests from ${origin} may not change anything here.`);
}
