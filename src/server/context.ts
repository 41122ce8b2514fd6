import type pg from 'pg';
import type { FastifyBaseLogger } from 'fastify';
import type { ServerConfig } from '../config/server-config.ts';
import type { StateStore, SessionRecord, UserId } from '../state/types.ts';
import type { UsersTable } from '../records/users.ts';
import type { SessionManager } from '../accounts/session-manager.ts';
import type { Authenticator } from '../accounts/authenticate.ts';
import type { Lifecycle } from './lifecycle.ts';
import type { Payments } from '../bank/payments.ts';

/** Called when a visitor signs in, so domains can carry visitor state over (the cart). */
export type SignInHook = (visitor: SessionRecord, user: SessionRecord) => Promise<void>;

/** What every domain gets: the stores chosen at start, and the shared accounts services. */
export interface ServerContext {
  config: ServerConfig;
  log: FastifyBaseLogger;
  db: pg.Pool;
  state: StateStore;
  users: UsersTable;
  sessions: SessionManager;
  auth: Authenticator;
  lifecycle: Lifecycle;
  signInHooks: SignInHook[];
  /** How the shop's checkout pays; set by the bank module. */
  payments?: Payments;
  /** "Log out everywhere" runs each of these: sessions, refresh tokens, access tokens. */
  logoutEverywhereHooks: Array<(userId: UserId) => Promise<void>>;
}
