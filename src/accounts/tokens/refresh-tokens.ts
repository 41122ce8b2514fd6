import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type pg from 'pg';
import { inTransaction } from '../../records/pool.ts';
import { AppError } from '../../kernel/errors.ts';
import type { UserId } from '../../kernel/ids.ts';
import * as q from '../queries.ts';

const hash = (token: string) => createHash('sha256').update(token).digest('base64url');
const refused = () => new AppError('invalid_token', 'The refresh token is not valid; sign in again.');

export type RotateOutcome =
  | { kind: 'rotated'; userId: UserId; token: string; familyId: string }
  | { kind: 'reused'; userId: UserId; familyId: string };

/**
 * Opaque refresh tokens, single use and rotating (Auth0's pattern). Only their sha256 is stored.
 * Each login starts a family; every refresh marks the token used and issues its successor in the
 * same family. A used token presented again means it was stolen or replayed: the whole family is
 * revoked, the newest token included.
 */
export class RefreshTokens {
  constructor(
    private readonly db: pg.Pool,
    private readonly ttlSeconds: number,
  ) {}

  async issue(
    userId: UserId,
    familyId: string = randomUUID(),
    client: pg.Pool | pg.PoolClient = this.db,
  ): Promise<string> {
    const token = `rt_${randomBytes(32).toString('base64url')}`;
    await client.query(q.insertRefreshToken(hash(token), familyId, userId, this.ttlSeconds));
    return token;
  }

  /** Uses the token once and returns its successor; a second use revokes the family. */
  async rotate(token: string): Promise<RotateOutcome> {
    const outcome = await inTransaction(this.db, async (client) => {
      // The guarded UPDATE is the single-use check: of two concurrent uses, exactly one matches.
      const used = await client.query<{ family_id: string; user_id: UserId }>(q.useRefreshToken(hash(token)));
      const row = used.rows[0];
      if (row)
        return {
          kind: 'rotated' as const,
          userId: row.user_id,
          familyId: row.family_id,
          token: await this.issue(row.user_id, row.family_id, client),
        };
      const known = await client.query<{ family_id: string; user_id: UserId; used_at: Date | null }>(
        q.refreshTokenByHash(hash(token)),
      );
      const stale = known.rows[0];
      if (!stale) throw refused();
      if (stale.used_at) {
        await client.query(q.revokeFamily(stale.family_id));
        return { kind: 'reused' as const, userId: stale.user_id, familyId: stale.family_id };
      }
      throw refused();
    });
    return outcome;
  }

  /** Ends one sign-in: every refresh token of the family, the newest included. */
  async revokeFamily(familyId: string): Promise<void> {
    await this.db.query(q.revokeFamily(familyId));
  }

  async revokeAllForUser(userId: UserId): Promise<void> {
    await this.db.query(q.revokeUserRefreshTokens(userId));
  }
}
