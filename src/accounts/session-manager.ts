import { hash, randomBytes } from 'node:crypto';
import type { SessionRecord, SessionStore } from '../state/types.ts';
import type { SessionId, UserId } from '../kernel/ids.ts';

export interface SessionPolicy {
  idleMs: number;
  absoluteMs: number;
  bindUserAgent: boolean;
}

export type ResolveOutcome =
  { kind: 'ok'; session: SessionRecord } | { kind: 'none' } | { kind: 'user_agent_mismatch'; session: SessionRecord };

/**
 * Login sessions over any SessionStore. The cookie carries a 256-bit random secret; the store only
 * ever sees its sha256 (the public session id), so a leaked store dump or session listing cannot
 * be replayed as a cookie. A value the server never issued simply finds nothing: never adopted.
 */
export class SessionManager {
  /** Activity is recorded at most once per this interval: most requests are one read, no write. */
  readonly #touchEveryMs: number;

  constructor(
    private readonly store: SessionStore,
    private readonly policy: SessionPolicy,
    /** Told after a signed-in user's session ended on purpose (logout, revoke), so live connections close. */
    private readonly onUserSessionEnded: (userId: UserId) => void = () => {},
  ) {
    this.#touchEveryMs = Math.min(Math.floor(policy.idleMs / 20), 60_000);
  }

  static idOf(token: string): SessionId {
    return hash('sha256', token, 'base64url') as SessionId;
  }

  async start(
    user: { id: UserId; username: string } | null,
    userAgent: string,
  ): Promise<{ token: string; session: SessionRecord }> {
    const token = randomBytes(32).toString('base64url');
    const now = Date.now();
    const session: SessionRecord = {
      id: SessionManager.idOf(token),
      userId: user?.id ?? null,
      username: user?.username ?? null,
      createdAt: now,
      lastSeenAt: now,
      absoluteExpiresAt: now + this.policy.absoluteMs,
      userAgent: userAgent.slice(0, 512),
    };
    await this.store.create(session, Math.min(this.policy.idleMs, this.policy.absoluteMs));
    return { token, session };
  }

  /** Finds the live session for a cookie value and records activity; enforces both timeouts. */
  async resolve(token: string, userAgent: string): Promise<ResolveOutcome> {
    if (token.length !== 43) return { kind: 'none' };
    const id = SessionManager.idOf(token);
    const session = await this.store.get(id);
    if (!session) return { kind: 'none' };
    const now = Date.now();
    if (now >= session.absoluteExpiresAt || now - session.lastSeenAt >= this.policy.idleMs) {
      await this.store.destroy(id);
      return { kind: 'none' };
    }
    if (this.policy.bindUserAgent && !sameBrowser(session.userAgent, userAgent.slice(0, 512))) {
      await this.store.destroy(id);
      return { kind: 'user_agent_mismatch', session };
    }
    if (now - session.lastSeenAt >= this.#touchEveryMs) {
      const idleTtl = Math.min(this.policy.idleMs, session.absoluteExpiresAt - now);
      if (!(await this.store.touch(id, now, idleTtl))) return { kind: 'none' };
      session.lastSeenAt = now;
    }
    return { kind: 'ok', session };
  }

  async end(session: Pick<SessionRecord, 'id' | 'userId'>): Promise<boolean> {
    const ended = await this.store.destroy(session.id);
    if (ended && session.userId) this.onUserSessionEnded(session.userId);
    return ended;
  }

  listForUser(userId: UserId): Promise<SessionRecord[]> {
    return this.store.listByUser(userId);
  }

  endAllForUser(userId: UserId): Promise<number> {
    return this.store.destroyByUser(userId);
  }
}

/**
 * Whether two User-Agent strings are the same browser on the same system, whatever their versions:
 * a browser updates itself (Chrome/120 becomes Chrome/121) and must not sign its user out, while a
 * cookie replayed from another browser or system still ends the session.
 */
function sameBrowser(a: string, b: string): boolean {
  return withoutVersions(a) === withoutVersions(b);
}

const withoutVersions = (userAgent: string) => userAgent.replace(/\d+(?:[._]\d+)*/g, '#');
