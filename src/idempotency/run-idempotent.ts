import { hash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type pg from 'pg';
import { AppError, isAppError } from '../server/errors.ts';
import type { UserId } from '../state/types.ts';

export interface IdempotentResult<T> {
  status: number;
  body: T;
  headers: Record<string, string>;
}

/** How long a duplicate waits for the first request's key before answering 409 in progress. */
const IN_PROGRESS_WAIT = '1500ms';
/** A server that hangs inside the transaction loses its lock after this; a retry then takes over. */
const HUNG_SERVER_TIMEOUT = '10s';
const RETRYABLE = new Set(['40001', '40P01']);

/** JSON with sorted keys: the same body in another key order has the same fingerprint. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function idempotencyKeyOf(request: FastifyRequest): string {
  const key = request.headers['idempotency-key'];
  if (typeof key !== 'string' || key.length === 0) {
    throw new AppError(
      'idempotency_key_required',
      'Send an Idempotency-Key header (a unique value per operation, e.g. a UUID).',
    );
  }
  if (key.length > 255 || !/^[\x21-\x7e]+$/.test(key)) {
    throw new AppError('invalid_input', 'The Idempotency-Key must be 1 to 255 visible ASCII characters.');
  }
  return key;
}

/**
 * Runs an (IK) operation exactly once per user and key, whichever server each attempt reaches.
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
export async function runIdempotent<T>(
  db: pg.Pool,
  request: FastifyRequest,
  userId: UserId,
  work: (client: pg.PoolClient) => Promise<{ status: number; body: T }>,
): Promise<IdempotentResult<T>> {
  const key = idempotencyKeyOf(request);
  const fingerprint = hash(
    'sha256',
    `${request.method} ${request.routeOptions.url} ${canonical(request.body ?? null)}`,
    'base64url',
  );
  for (let attempt = 1; ; attempt++) {
    try {
      return await once(db, userId, key, fingerprint, work);
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code && RETRYABLE.has(code) && attempt < 5) continue;
      throw error;
    }
  }
}

async function once<T>(
  db: pg.Pool,
  userId: UserId,
  key: string,
  fingerprint: string,
  work: (client: pg.PoolClient) => Promise<{ status: number; body: T }>,
): Promise<IdempotentResult<T>> {
  const client = await db.connect();
  const literal = (value: string) => client.escapeLiteral(value);
  try {
    // One round trip (the simple protocol takes several statements, hence the escaped literals):
    // open the transaction, bound the wait for a duplicate's key, claim the key, and set the
    // savepoint that lets a refusal be stored without its effect.
    let claim: pg.QueryResult[];
    try {
      claim = (await client.query(
        `BEGIN;
         SET LOCAL lock_timeout = '${IN_PROGRESS_WAIT}';
         SET LOCAL idle_in_transaction_session_timeout = '${HUNG_SERVER_TIMEOUT}';
         INSERT INTO idempotency_keys (user_id, key, fingerprint, response_status, response_body)
           VALUES (${literal(userId)}, ${literal(key)}, ${literal(fingerprint)}, 0, 'null')
           ON CONFLICT (user_id, key) DO NOTHING;
         RESET lock_timeout;
         SAVEPOINT work`,
      )) as unknown as pg.QueryResult[];
    } catch (error) {
      if ((error as { code?: string }).code === '55P03') {
        throw new AppError(
          'idempotency_in_progress',
          'A request with this Idempotency-Key is still running; retry shortly.',
          { retryAfterSeconds: 1 },
        );
      }
      throw error;
    }
    const claimed = claim.find((result) => result.command === 'INSERT')!.rowCount === 1;
    if (!claimed) {
      const { rows } = await client.query<{ fingerprint: string; response_status: number; response_body: T }>({
        name: 'idempotency_stored',
        text: 'SELECT fingerprint, response_status, response_body FROM idempotency_keys WHERE user_id = $1 AND key = $2',
        values: [userId, key],
      });
      const stored = rows[0]!;
      if (stored.fingerprint !== fingerprint) {
        throw new AppError(
          'idempotency_key_mismatch',
          'This Idempotency-Key was used with another request body; use a new key.',
        );
      }
      // Nothing was written, but the transaction must end before the connection goes back to the pool.
      await client.query('COMMIT');
      return { status: stored.response_status, body: stored.response_body, headers: { 'idempotent-replayed': 'true' } };
    }
    let result: { status: number; body: T };
    try {
      result = await work(client);
    } catch (error) {
      if (!isAppError(error) || error.status >= 500) throw error;
      // A refusal is the answer to this key too: undo the effect, keep the refusal.
      await client.query('ROLLBACK TO SAVEPOINT work');
      result = { status: error.status, body: error.toBody() as T };
    }
    // The response and the commit in one round trip: the effect's row locks are held until COMMIT,
    // so every round trip saved here is time another request for the same account does not wait.
    await client.query(
      `UPDATE idempotency_keys SET response_status = ${Number(result.status)},
         response_body = ${literal(JSON.stringify(result.body))}
       WHERE user_id = ${literal(userId)} AND key = ${literal(key)};
       COMMIT`,
    );
    return { ...result, headers: {} };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/** Deletes keys older than 24 hours, the published retention, every `everyMs` (unref'd timer). */
export function startKeyCleanup(db: pg.Pool, everyMs: number): () => void {
  const timer = setInterval(() => {
    db.query("DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'").catch(() => {});
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
