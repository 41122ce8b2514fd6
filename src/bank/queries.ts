/**
 * Every SQL statement of the bank, in one place (the way pg-boss keeps its statements in plans.ts).
 * Each function returns the whole `pg.QueryConfig`, values included, so a placeholder and the value
 * bound to it read side by side. A `name` makes the statement a prepared one on each connection:
 * names are stable, and every name has exactly one text.
 */
import type pg from 'pg';
import type { UserId } from '../kernel/ids.ts';
import type { TransactionKind } from './types.ts';

/** The columns of one posting, as `LedgerRow` in ledger.ts reads them. */
const POSTING = 'id, kind, amount_cents, balance_after_cents, created_at';

/**
 * The one guarded UPDATE every movement goes through ($1 user, $2 signed delta): a balance is never
 * negative, and two withdrawals can never both spend the same money. bank_move_once (moveOnce) runs
 * the same UPDATE inside PostgreSQL.
 */
const GUARDED_MOVE = `UPDATE accounts SET balance_cents = balance_cents + $2
  WHERE user_id = $1 AND balance_cents + $2 >= 0 RETURNING balance_cents`;

/** Opens the account with its starting money; a no-op (rowCount 0) when it is open already. */
export const openAccount = (userId: UserId, openingCents: number): pg.QueryConfig => ({
  name: 'bank_open',
  text: 'INSERT INTO accounts (user_id, balance_cents) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING',
  values: [userId, openingCents],
});

export const balance = (userId: UserId): pg.QueryConfig => ({
  name: 'bank_balance',
  text: 'SELECT balance_cents FROM accounts WHERE user_id = $1',
  values: [userId],
});

/** Locks both accounts of a transfer in id order, so two transfers never deadlock. */
export const lockPair = (from: UserId, to: UserId): pg.QueryConfig => ({
  name: 'bank_lock_pair',
  text: 'SELECT 1 FROM accounts WHERE user_id = ANY($1) ORDER BY user_id FOR UPDATE',
  values: [[from, to]],
});

/** Adds `delta` (negative to take); no row when the balance would go below zero. */
export const move = (userId: UserId, delta: number): pg.QueryConfig => ({
  name: 'bank_move',
  text: GUARDED_MOVE,
  values: [userId, delta],
});

/**
 * A deposit or withdrawal with its Idempotency-Key in ONE round trip: bank_move_once (in
 * src/records/migrations/006_bank_one_round_trip.sql) claims the key, makes the guarded move and its
 * posting, and stores the answer. Fewer round trips under the account's row lock, held until the
 * commit, means more movements per second on a busy account. Answers a StatementAnswer.
 */
export const moveOnce = (p: {
  userId: UserId;
  key: string;
  fingerprint: string;
  inProgressWait: string;
  kind: 'deposit' | 'withdrawal';
  delta: number;
  openingCents: number;
  refusal: { status: number; body: unknown };
  /** The balance the answer shows; null: the ledger's after the movement. */
  shown: number | null;
}): pg.QueryConfig => ({
  name: 'bank_move_once',
  text: 'SELECT claimed, key_fingerprint, answer_status, answer_body FROM bank_move_once($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)',
  values: [
    p.userId,
    p.key,
    p.fingerprint,
    p.inProgressWait,
    p.kind,
    p.delta,
    p.openingCents,
    p.refusal.status,
    JSON.stringify(p.refusal.body),
    p.shown,
  ],
});

/** Both postings of a transfer, one row each, sharing the transfer id; the key goes on the sender's. */
export const postTransfer = (p: {
  from: UserId;
  to: UserId;
  amountCents: number;
  fromBalanceCents: number;
  toBalanceCents: number;
  transferId: string;
  key: string;
}): pg.QueryConfig => ({
  name: 'bank_post_transfer',
  text: `INSERT INTO ledger (user_id, kind, amount_cents, balance_after_cents, transfer_id, idempotency_key)
             VALUES ($1, 'transfer_out', $3, $4, $6, $7), ($2, 'transfer_in', $3, $5, $6, NULL)
             RETURNING ${POSTING}`,
  values: [p.from, p.to, p.amountCents, p.fromBalanceCents, p.toBalanceCents, p.transferId, p.key],
});

/** One posting after a `move`. */
export const post = (p: {
  userId: UserId;
  kind: TransactionKind;
  amountCents: number;
  balanceAfterCents: number;
  transferId?: string;
  reference?: string;
  key?: string;
}): pg.QueryConfig => ({
  name: 'bank_post',
  text: `INSERT INTO ledger (user_id, kind, amount_cents, balance_after_cents, transfer_id, reference, idempotency_key)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${POSTING}`,
  values: [
    p.userId,
    p.kind,
    p.amountCents,
    p.balanceAfterCents,
    p.transferId ?? null,
    p.reference ?? null,
    p.key ?? null,
  ],
});

/** The user's postings, newest first. */
export const transactions = (userId: UserId, limit: number): pg.QueryConfig => ({
  text: `SELECT ${POSTING} FROM ledger
       WHERE user_id = $1 ORDER BY created_at DESC, id LIMIT $2`,
  values: [userId, limit],
});

/** A row when a posting with this reference (`order:<id>:charge` or `:refund`) exists: done once. */
export const postingExists = (reference: string): pg.QueryConfig => ({
  text: 'SELECT 1 FROM ledger WHERE reference = $1',
  values: [reference],
});

/** The amount of the posting with this reference (the order's charge, to refund it). */
export const postedAmount = (reference: string): pg.QueryConfig => ({
  text: 'SELECT amount_cents FROM ledger WHERE reference = $1',
  values: [reference],
});
