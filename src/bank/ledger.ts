import type pg from 'pg';
import { AppError } from '../server/errors.ts';
import type { UserId } from '../state/types.ts';
import type { Payments } from './payments.ts';

export const OPENING_BALANCE_CENTS = 100_000;

export type TransactionKind =
  'deposit' | 'withdrawal' | 'transfer_out' | 'transfer_in' | 'order_charge' | 'order_refund';

export interface Transaction {
  id: string;
  kind: TransactionKind;
  amountCents: number;
  balanceAfterCents: number;
  createdAt: string;
}

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

/**
 * The central ledger: the one place balances change. Every movement is a guarded UPDATE
 * (`... WHERE balance_cents >= amount`, so a balance is never negative and two withdrawals can
 * never both spend the same money) plus a posting, in the caller's transaction.
 */
export class Ledger implements Payments {
  constructor(private readonly db: pg.Pool) {}

  /** Opens the account with its starting money the first time the user touches the bank. */
  async open(db: Db, userId: UserId): Promise<void> {
    await db.query({
      name: 'bank_open',
      text: 'INSERT INTO accounts (user_id, balance_cents) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING',
      values: [userId, OPENING_BALANCE_CENTS],
    });
  }

  async balance(userId: UserId): Promise<number> {
    await this.open(this.db, userId);
    const { rows } = await this.db.query<{ balance_cents: string }>({
      name: 'bank_balance',
      text: 'SELECT balance_cents FROM accounts WHERE user_id = $1',
      values: [userId],
    });
    return Number(rows[0]!.balance_cents);
  }

  async deposit(tx: pg.PoolClient, userId: UserId, amountCents: number, key: string): Promise<Transaction> {
    await this.open(tx, userId);
    const balance = (await this.#move(tx, userId, amountCents))!;
    return this.#post(tx, userId, 'deposit', amountCents, balance, { key });
  }

  async withdraw(tx: pg.PoolClient, userId: UserId, amountCents: number, key: string): Promise<Transaction> {
    await this.open(tx, userId);
    const balance = await this.#move(tx, userId, -amountCents);
    if (balance === null) throw insufficient();
    return this.#post(tx, userId, 'withdrawal', amountCents, balance, { key });
  }

  /** Both postings in one transaction; accounts locked in id order so transfers never deadlock. */
  async transfer(tx: pg.PoolClient, from: UserId, to: UserId, amountCents: number, key: string): Promise<Transaction> {
    await this.open(tx, from);
    await this.open(tx, to);
    await tx.query('SELECT 1 FROM accounts WHERE user_id = ANY($1) ORDER BY user_id FOR UPDATE', [[from, to]]);
    const fromBalance = await this.#move(tx, from, -amountCents);
    if (fromBalance === null) throw insufficient();
    const toBalance = (await this.#move(tx, to, amountCents))!;
    const { rows } = await tx.query<{ id: string }>('SELECT gen_random_uuid() AS id');
    const transferId = rows[0]!.id;
    const out = await this.#post(tx, from, 'transfer_out', amountCents, fromBalance, { key, transferId });
    await this.#post(tx, to, 'transfer_in', amountCents, toBalance, { transferId });
    return out;
  }

  async transactions(userId: UserId, limit = 100): Promise<Transaction[]> {
    const { rows } = await this.db.query<LedgerRow>(
      `SELECT id, kind, amount_cents, balance_after_cents, created_at FROM ledger
       WHERE user_id = $1 ORDER BY created_at DESC, id LIMIT $2`,
      [userId, limit],
    );
    return rows.map(toTransaction);
  }

  async chargeOrder(
    tx: pg.PoolClient,
    userId: UserId,
    orderId: string,
    amountCents: number,
  ): Promise<'charged' | 'insufficient_funds'> {
    await this.open(tx, userId);
    const done = await tx.query('SELECT 1 FROM ledger WHERE reference = $1', [`order:${orderId}:charge`]);
    if (done.rowCount) return 'charged';
    const balance = await this.#move(tx, userId, -amountCents);
    if (balance === null) return 'insufficient_funds';
    await this.#post(tx, userId, 'order_charge', amountCents, balance, { reference: `order:${orderId}:charge` });
    return 'charged';
  }

  async refundOrder(tx: pg.PoolClient, userId: UserId, orderId: string): Promise<void> {
    const charged = await tx.query<{ amount_cents: string }>('SELECT amount_cents FROM ledger WHERE reference = $1', [
      `order:${orderId}:charge`,
    ]);
    const refunded = await tx.query('SELECT 1 FROM ledger WHERE reference = $1', [`order:${orderId}:refund`]);
    if (!charged.rows[0] || refunded.rowCount) return;
    const amount = Number(charged.rows[0].amount_cents);
    const balance = (await this.#move(tx, userId, amount))!;
    await this.#post(tx, userId, 'order_refund', amount, balance, { reference: `order:${orderId}:refund` });
  }

  /** Adds `delta` (negative to take); null when the balance would go below zero. */
  async #move(tx: pg.PoolClient, userId: UserId, delta: number): Promise<number | null> {
    const { rows } = await tx.query<{ balance_cents: string }>({
      name: 'bank_move',
      text: `UPDATE accounts SET balance_cents = balance_cents + $2
             WHERE user_id = $1 AND balance_cents + $2 >= 0 RETURNING balance_cents`,
      values: [userId, delta],
    });
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
    const { rows } = await tx.query<LedgerRow>({
      name: 'bank_post',
      text: `INSERT INTO ledger (user_id, kind, amount_cents, balance_after_cents, transfer_id, reference, idempotency_key)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, kind, amount_cents, balance_after_cents, created_at`,
      values: [
        userId,
        kind,
        amountCents,
        balanceAfterCents,
        extra.transferId ?? null,
        extra.reference ?? null,
        extra.key ?? null,
      ],
    });
    return toTransaction(rows[0]!);
  }
}
