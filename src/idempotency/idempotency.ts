import pg from 'pg';
import { AppError, isAppError } from '../kernel/errors.ts';
import type { UserId } from '../kernel/ids.ts';
import { inTransaction } from '../records/pool.ts';
import { retryOnSqlState } from '../records/retry.ts';
import type { IdempotencyKey } from './key.ts';

/** One (IK) operation as the store sees it: whose, which key, and what it asked for. */
export interface IdempotentOperation {
  userId: UserId;
  key: IdempotencyKey;
  /** fingerprintOf(method, route, body): the same key with another fingerprint is refused (422). */
  fingerprint: string;
}

export interface IdempotentResult<T> {
  status: number;
  body: T;
  headers: Record<string, string>;
}

/**
 * The row of an operation that is one statement (Idempotency.runStatement): `claimed` false means
 * the key was used before, and the rest is its stored answer.
 */
export interface StatementAnswer<T> {
  claimed: boolean;
  key_fingerprint: string;
  answer_status: number;
  answer_body: T;
}

/** The work of an operation: every write goes through `tx`, the transaction that holds the key. */
export type IdempotentWork<T> = (tx: pg.PoolClient, key: IdempotencyKey) => Promise<{ status: number; body: T }>;

/** How long a duplicate waits for the first request's key before answering 409 in progress. */
const IN_PROGRESS_WAIT = '1500ms';
/** A server that hangs inside the transaction loses its lock after this; a retry then takes over. */
const HUNG_SERVER_TIMEOUT = '10s';
const LOCK_NOT_AVAILABLE = '55P03';
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * The stored answer as jsonb accepts it: JSON.stringify writes a lone surrogate (half of a UTF-16
 * pair, which a refusal can echo from the request) as an escape jsonb refuses. It becomes U+FFFD.
 */
const storable = (body: unknown): string =>
  JSON.stringify(body, (_key, value: unknown) =>
    typeof value === 'string' ? value.replace(LONE_SURROGATE, '\ufffd') : value,
  );

const inProgress = () =>
  new AppError('idempotency_in_progress', 'A request with this Idempotency-Key is still running; retry shortly.', {
    retryAfterSeconds: 1,
  });

/** A duplicate that waited IN_PROGRESS_WAIT for the first request's key: 409 in progress. */
const inProgressOnLockTimeout = (error: unknown): never => {
  if ((error as { code?: string }).code === LOCK_NOT_AVAILABLE) throw inProgress();
  throw error;
};

/** The answer stored for a key someone else already used: replayed, or 422 for another body. */
function replayed<T>(fingerprint: string, stored: { fingerprint: string; status: number; body: T }) {
  if (stored.fingerprint !== fingerprint) {
    throw new AppError(
      'idempotency_key_mismatch',
      'This Idempotency-Key was used for another request (another endpoint, or another body); use a new key for a new operation.',
    );
  }
  return { status: stored.status, body: stored.body, headers: { 'idempotent-replayed': 'true' } };
}

/**
 * Runs (IK) operations exactly once per user and key, whichever server each attempt reaches.
 *
 * The key's row is inserted in the SAME transaction as the operation's effect and its response,
 * so the three commit together or not at all. That row is also the lock: a duplicate arriving
 * while the first is running waits on it at most IN_PROGRESS_WAIT, then gets 409 in progress.
 * When the server running the first attempt is SIGKILLed, PostgreSQL sees its connection close,
 * rolls the transaction back and frees the key: a retry on another server takes over and runs
 * the operation once. A server that hangs instead loses its transaction after HUNG_SERVER_TIMEOUT.
 * Once committed, a repeat gets the stored status and body (Idempotent-Replayed: true); the same
 * key with another body gets 422. 4xx errors of the operation (e.g. insufficient funds) are
 * stored and replayed too, with the operation's effect rolled back.
 */
export class Idempotency {
  constructor(private readonly db: pg.Pool) {}

  run<T>(operation: IdempotentOperation, work: IdempotentWork<T>): Promise<IdempotentResult<T>> {
    return retryOnSqlState(() => this.#once(operation, work));
  }

  async #once<T>({ userId, key, fingerprint }: IdempotentOperation, work: IdempotentWork<T>) {
    const literal = pg.escapeLiteral;
    // Sent with BEGIN in one round trip (the simple protocol, hence literals): bound the wait for a
    // duplicate's key, claim the key, and set the savepoint that lets a refusal be stored without
    // its effect.
    const claim = `SET LOCAL lock_timeout = '${IN_PROGRESS_WAIT}';
      SET LOCAL idle_in_transaction_session_timeout = '${HUNG_SERVER_TIMEOUT}';
      INSERT INTO idempotency_keys (user_id, key, fingerprint, response_status, response_body)
        VALUES (${literal(userId)}, ${literal(key)}, ${literal(fingerprint)}, 0, 'null')
        ON CONFLICT (user_id, key) DO NOTHING;
      RESET lock_timeout;
      SAVEPOINT work`;
    try {
      return await inTransaction(
        this.db,
        async (tx, control): Promise<IdempotentResult<T>> => {
          const claimed = control.preludeResults.find((result) => result.command === 'INSERT')!.rowCount === 1;
          if (!claimed) return this.#stored<T>(tx, userId, key, fingerprint);
          let result: { status: number; body: T };
          try {
            result = await work(tx, key);
          } catch (error) {
            if (!isAppError(error) || error.status >= 500) throw error;
            // A refusal is the answer to this key too: undo the effect, keep the refusal.
            await tx.query('ROLLBACK TO SAVEPOINT work');
            result = { status: error.status, body: error.toBody() as T };
          }
          await control.commitWith(
            `UPDATE idempotency_keys SET response_status = ${Number(result.status)},
               response_body = ${literal(storable(result.body))}
             WHERE user_id = ${literal(userId)} AND key = ${literal(key)}`,
          );
          return { ...result, headers: {} };
        },
        { prelude: claim },
      );
    } catch (error) {
      return inProgressOnLockTimeout(error);
    }
  }

  /**
   * Runs an (IK) operation that is ONE statement, so one round trip instead of run's three: e.g.
   * bank_move_once (src/records/migrations/006_bank_one_round_trip.sql). The statement keeps run's
   * semantics itself: it claims the key, waiting for a duplicate's at most `inProgressWait`, makes
   * the effect (none for a refusal) and stores the answer, and it answers a StatementAnswer.
   */
  runStatement<T>(
    { fingerprint }: IdempotentOperation,
    statement: (inProgressWait: string) => pg.QueryConfig,
  ): Promise<IdempotentResult<T>> {
    return retryOnSqlState(async () => {
      const { rows } = await this.db
        .query<StatementAnswer<T>>(statement(IN_PROGRESS_WAIT))
        .catch(inProgressOnLockTimeout);
      const { claimed, key_fingerprint, answer_status: status, answer_body: body } = rows[0]!;
      if (claimed) return { status, body, headers: {} };
      return replayed(fingerprint, { fingerprint: key_fingerprint, status, body });
    });
  }

  /** The answer stored for a key already used, read in run's transaction. */
  async #stored<T>(tx: pg.PoolClient, userId: UserId, key: string, fingerprint: string) {
    const { rows } = await tx.query<{ fingerprint: string; status: number; body: T }>({
      name: 'idempotency_stored',
      text: `SELECT fingerprint, response_status AS status, response_body AS body
             FROM idempotency_keys WHERE user_id = $1 AND key = $2`,
      values: [userId, key],
    });
    return replayed(fingerprint, rows[0]!);
  }

  /** Deletes keys older than 24 hours, the published retention. */
  async sweep(): Promise<number> {
    const { rowCount } = await this.db.query(
      "DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'",
    );
    return rowCount ?? 0;
  }
}
