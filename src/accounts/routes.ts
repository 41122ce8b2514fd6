import type { FastifyReply, FastifyRequest } from 'fastify';
import type { App } from '../kernel/app-type.ts';
import type { UsersTable } from './users.ts';
import type { Authenticator } from './authenticate.ts';
import type { CheckCredentials } from './credentials.ts';
import type { SessionManager } from './session-manager.ts';
import { AppError } from '../kernel/errors.ts';
import { NoContent, responses, Security } from '../kernel/responses.ts';
import type { SessionRecord } from '../state/types.ts';
import type { SessionId, UserId } from '../kernel/ids.ts';
import { checkPasswordPolicy, type PasswordHasher } from './passwords.ts';
import { Credentials, Registration, SessionList, SessionParams, UserReply } from './schemas.ts';
import { clearSessionCookie, setSessionCookie } from './session-cookie.ts';

const tags = ['accounts'];

export interface AccountRoutesDeps {
  users: UsersTable;
  sessions: SessionManager;
  auth: Authenticator;
  checkCredentials: CheckCredentials;
  passwords: PasswordHasher;
  logoutEverywhere(userId: UserId): Promise<void>;
  /** Ends a token client's sign-in: its refresh tokens and every access token of it. */
  logoutSignIn(userId: UserId, signIn: string): Promise<void>;
  onVisitorSignIn(visitor: SessionRecord, user: SessionRecord): Promise<void>;
}

/** Registration, login, logout, the current user and the user's sessions. */
export function accountRoutes(app: App, deps: AccountRoutesDeps): void {
  const { users, sessions, auth, checkCredentials } = deps;

  /** Starts a fresh session for the user (a new id every time); the previous one dies. */
  async function signIn(request: FastifyRequest, reply: FastifyReply, user: { id: UserId; username: string }) {
    const previous = await auth.session(request);
    const { token, session } = await sessions.start(user, request.headers['user-agent'] ?? '');
    if (previous) {
      if (previous.userId === null) await deps.onVisitorSignIn(previous, session);
      await sessions.end(previous);
    }
    setSessionCookie(request, reply, token);
    return session;
  }

  app.post(
    '/api/auth/register',
    {
      schema: {
        operationId: 'register',
        summary: 'Create an account and sign in',
        description:
          'Creates the user and signs in: sets a new session cookie. A visitor cart in the session sent along is carried over.',
        tags,
        security: Security.sessionOptional,
        body: Registration,
        response: responses({ 201: UserReply }, [400, 409, 429, 503]),
      },
    },
    async (request, reply) => {
      const { username, password } = request.body;
      checkPasswordPolicy(password, username);
      const user = await users.insert(username, await deps.passwords.hash(password));
      if (!user) throw new AppError('username_taken', `The username "${username}" is taken; choose another.`);
      await signIn(request, reply, user);
      return reply.code(201).send({ user: { id: user.id, username: user.username } });
    },
  );

  app.post(
    '/api/auth/login',
    {
      schema: {
        operationId: 'login',
        summary: 'Sign in with a password (session cookie)',
        description:
          'Checks the password and starts a new session (a new session id every time; the session sent along ends, its visitor cart carried over). Attempts are limited per username and per address (429).',
        tags,
        security: Security.sessionOptional,
        body: Credentials,
        response: responses({ 200: UserReply }, [400, 401, 429, 503]),
      },
    },
    async (request, reply) => {
      const { username, password } = request.body;
      const user = await checkCredentials(username, password, request.ip);
      await signIn(request, reply, user);
      return { user: { id: user.id, username: user.username } };
    },
  );

  app.post(
    '/api/auth/logout',
    {
      schema: {
        operationId: 'logout',
        summary: 'Sign out of this session or token sign-in',
        description:
          'Ends the session of the cookie sent (on every server) and clears the cookie; 204 without one too. With a bearer access token: ends the sign-in that token came from (POST /api/auth/token): its refresh token and every access token of it are refused from now on, on every server; a token that is not valid is 401 `invalid_token`.',
        tags,
        security: [...Security.sessionOptional, { bearer: [] }],
        response: responses({ 204: NoContent }, [401, 429, 503]),
      },
    },
    async (request, reply) => {
      const principal = await auth.optionalUser(request);
      if (principal?.via === 'bearer') await deps.logoutSignIn(principal.userId, principal.signIn);
      const session = await auth.session(request);
      if (session) await sessions.end(session);
      clearSessionCookie(request, reply);
      return reply.code(204).send();
    },
  );

  app.get(
    '/api/me',
    {
      schema: {
        operationId: 'getMe',
        summary: 'The signed-in user',
        tags,
        security: Security.signedIn,
        response: responses({ 200: UserReply }, [401]),
      },
    },
    async (request) => {
      const principal = await auth.requireUser(request);
      return { user: { id: principal.userId, username: principal.username } };
    },
  );

  app.get(
    '/api/auth/sessions',
    {
      schema: {
        operationId: 'listSessions',
        summary: "List the user's sessions",
        description: 'Every live session of the signed-in user; `current` marks the one of this request.',
        tags,
        security: Security.signedIn,
        response: responses({ 200: SessionList }, [401]),
      },
    },
    async (request) => {
      const principal = await auth.requireUser(request);
      const currentId = principal.via === 'session' ? principal.session.id : undefined;
      const list = await sessions.listForUser(principal.userId);
      return {
        sessions: list.map((s) => ({
          id: s.id,
          current: s.id === currentId,
          createdAt: new Date(s.createdAt).toISOString(),
          lastSeenAt: new Date(s.lastSeenAt).toISOString(),
          userAgent: s.userAgent,
        })),
      };
    },
  );

  app.delete(
    '/api/auth/sessions/:id',
    {
      schema: {
        operationId: 'deleteSession',
        summary: "End one of the user's sessions",
        tags,
        security: Security.signedIn,
        params: SessionParams,
        response: responses({ 204: NoContent }, [401, 404]),
      },
    },
    async (request, reply) => {
      const principal = await auth.requireUser(request);
      const owned = (await sessions.listForUser(principal.userId)).some((s) => s.id === request.params.id);
      if (!owned) throw new AppError('not_found', 'You have no session with that id.');
      await sessions.end({ id: request.params.id as SessionId, userId: principal.userId });
      return reply.code(204).send();
    },
  );

  app.post(
    '/api/auth/logout-all',
    {
      schema: {
        operationId: 'logoutAll',
        summary: 'Sign out everywhere',
        description:
          'Ends every session of the user, revokes every refresh token and every access token issued until now, on every server.',
        tags,
        security: Security.signedIn,
        response: responses({ 204: NoContent }, [401]),
      },
    },
    async (request, reply) => {
      const principal = await auth.requireUser(request);
      await deps.logoutEverywhere(principal.userId);
      clearSessionCookie(request, reply);
      return reply.code(204).send();
    },
  );
}
