import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { Idempotency, IdempotentOperation, IdempotentResult } from '../idempotency/idempotency.ts';
import { AppError, type ErrorBody } from '../kernel/errors.ts';
import type { UserId } from '../kernel/ids.ts';
import type { Payments } from './payments.ts';
import type { MovementBody, Transaction, TransactionKind } from './types.ts';
import * as q from './queries.ts';

export const OPENING_BALANCE_CENTS = 100_000;

type Db = pg.Pool | pg.PoolClient;

interface LedgerRow {
  id: string;
  kind: TransactionKind;
  amount_cents: string;
  balance_after_cents: string;
  created_at: Date;
}

const toTransaction = (row: LedgerRow): Transaction => ({
  id: row.id,
  kind: row.kind,
  amountCents: Number(row.amount_cents),
  balanceAfterCents: Number(row.balance_after_cents),
  createdAt: row.created_at.toISOString(),
});

const insufficient = () => new AppError('insufficient_funds', 'The balance is too low for this amount.');
/** The answer bank_move_once stores for a refused withdrawal: made once (an Error per call costs a stack trace). */
const REFUSAL = (() => {
  const error = insufficient();
  return { status: error.status, body: error.toBody() };
})();

/**
 * The central ledger: the one place balances change. Every movement is the guarded UPDATE
 * (GUARDED_MOVE in queries.ts) plus a posting, in the caller's transaction, or for a deposit or
 * withdrawal in bank_move_once's.
 */
export class Ledger implements Payments {
  constructor(private readonly db: pg.Pool) {}

  /** Opens the account with its starting money the first time the user touches the bank. */
  async open(db: Db, userId: UserId): Promise<boolean> {
    const opened = await db.query(q.openAccount(userId, OPENING_BALANCE_CENTS));
    return opened.rowCount === 1;
  }

  async balance(userId: UserId): Promise<number> {
    await this.open(this.db, userId);
    const { rows } = await this.db.query<{ balance_cents: string }>(q.balance(userId));
    return Number(rows[0]!.balance_cents);
  }

  /**
   * A deposit (`delta` > 0) or withdrawal (< 0) with its Idempotency-Key in ONE round trip
   * (q.moveOnce): the same answers as `idempotency.run` around a move and its posting, a refusal
   * for funds included. `shown` is the balance the answer shows; null: the ledger's after it.
   */
  moveOnce(
    idempotency: Idempotency,
    operation: IdempotentOperation,
    delta: number,
    shown: number | null,
  ): Promise<IdempotentResult<MovementBody | ErrorBody>> {
    return idempotency.runStatement(operation, (inProgressWait) =>
      q.moveOnce({
        ...operation,
        inProgressWait,
        kind: delta > 0 ? 'deposit' : 'withdrawal',
        delta,
        openingCents: OPENING_BALANCE_CENTS,
        refusal: REFUSAL,
        shown,
      }),
    );
  }

  /** Both postings in one transaction; accounts locked in id order so transfers never deadlock. */
  async transfer(tx: pg.PoolClient, from: UserId, to: UserId, amountCents: number, key: string): Promise<Transaction> {
    const lock = () => tx.query(q.lockPair(from, to));
    if ((await lock()).rowCount !== 2) {
      // First touch of the bank for one of them: open (idempotent), then lock both again.
      await this.open(tx, from);
      await this.open(tx, to);
      await lock();
    }
    const fromBalance = await this.#move(tx, from, -amountCents);
    if (fromBalance === null) throw insufficient();
    const toBalance = (await this.#move(tx, to, amountCents))!;
    const { rows } = await tx.query<LedgerRow>(
      q.postTransfer({
        from,
        to,
        amountCents,
        fromBalanceCents: fromBalance,
        toBalanceCents: toBalance,
        transferId: randomUUID(),
        key,
      }),
    );
    return toTransaction(rows.find((row) => row.kind === 'transfer_out')!);
  }

  async transactions(userId: UserId, limit = 100): Promise<Transaction[]> {
    const { rows } = await this.db.query<LedgerRow>(q.transactions(userId, limit));
    return rows.map(toTransaction);
  }

  async chargeOrder(
    tx: pg.PoolClient,
    userId: UserId,
    orderId: string,
    amountCents: number,
  ): Promise<'charged' | 'insufficient_funds'> {
    await this.open(tx, userId);
    const done = await tx.query(q.postingExists(`order:${orderId}:charge`));
    if (done.rowCount) return 'charged';
    const balance = await this.#move(tx, userId, -amountCents);
    if (balance === null) return 'insufficient_funds';
    await this.#post(tx, userId, 'order_charge', amountCents, balance, { reference: `order:${orderId}:charge` });
    return 'charged';
  }

  async refundOrder(tx: pg.PoolClient, userId: UserId, orderId: string): Promise<void> {
    const charged = await tx.query<{ amount_cents: string }>(q.postedAmount(`order:${orderId}:charge`));
    const refunded = await tx.query(q.postingExists(`order:${orderId}:refund`));
    if (!charged.rows[0] || refunded.rowCount) return;
    const amount = Number(charged.rows[0].amount_cents);
    const balance = (await this.#move(tx, userId, amount))!;
    await this.#post(tx, userId, 'order_refund', amount, balance, { reference: `order:${orderId}:refund` });
  }

  /** Adds `delta` (negative to take); null when the balance would go below zero. */
  async #move(tx: pg.PoolClient, userId: UserId, delta: number): Promise<number | null> {
    const { rows } = await tx.query<{ balance_cents: string }>(q.move(userId, delta));
    return rows[0] ? Number(rows[0].balance_cents) : null;
  }

  async #post(
    tx: pg.PoolClient,
    userId: UserId,
    kind: TransactionKind,
    amountCents: number,
    balanceAfterCents: number,
    extra: { key?: string; transferId?: string; reference?: string },
  ): Promise<Transaction> {
    const { rows } = await tx.query<LedgerRow>(q.post({ userId, kind, amountCents, balanceAfterCents, ...extra }));
    return toTransaction(rows[0]!);
  }
}
