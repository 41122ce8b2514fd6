import type { SessionId, SessionRecord, UserId } from '../../src/state/types.ts';

let n = 0;
/** A name no other test in this run uses. */
export const unique = (prefix: string) => `${prefix}-${process.pid}-${++n}`;

/** A live session record of a new user (override any field), for the state-layer tests. */
export function sessionRecord(overrides: Partial<SessionRecord> = {}): SessionRecord {
  const now = Date.now();
  return {
    id: unique('sess') as SessionId,
    userId: unique('user') as UserId,
    username: 'alice',
    createdAt: now,
    lastSeenAt: now,
    absoluteExpiresAt: now + 60_000,
    userAgent: 'test-agent',
    ...overrides,
  };
}
