import type pg from 'pg';
import type { UserId } from '../kernel/ids.ts';

/**
 * How the shop's checkout saga pays. Both calls run inside the caller's PostgreSQL transaction
 * (so a saga step and its money movement commit together or not at all) and are idempotent by
 * order id: a retried step never charges or refunds twice.
 */
export interface Payments {
  /** Debits the order total from the user's account (opened with 100000 cents if new). */
  chargeOrder(
    client: pg.PoolClient,
    userId: UserId,
    orderId: string,
    amountCents: number,
  ): Promise<'charged' | 'insufficient_funds'>;
  /** Gives back what chargeOrder took for this order; does nothing if it never charged. */
  refundOrder(client: pg.PoolClient, userId: UserId, orderId: string): Promise<void>;
}
