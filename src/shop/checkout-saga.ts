import { setTimeout as delay } from 'node:timers/promises';
import type { FastifyBaseLogger } from 'fastify';
import type pg from 'pg';
import type { Payments } from '../bank/payments.ts';
import { inTransaction } from '../records/pool.ts';
import { retryOnSqlState } from '../records/retry.ts';
import type { UserId } from '../kernel/ids.ts';
import type { CancelReason, CartLine, OrderStatus, SagaState } from './types.ts';
import * as q from './queries.ts';

type Step = 'reserve' | 'charge' | 'confirm' | 'compensate';

const TERMINAL: ReadonlySet<SagaState> = new Set(['confirmed', 'cancelled']);

interface LockedSaga {
  state: SagaState;
  reason: CancelReason | null;
  user_id: UserId;
  items: CartLine[];
  total_cents: string;
}

interface Transition {
  step: Step;
  outcome: string;
  state: SagaState;
  status: OrderStatus;
  reason: CancelReason | null;
}

export interface SagaOptions {
  /** Written into the step log: which server ran each step. */
  serverId: string;
  log: FastifyBaseLogger;
  /** After the confirm step committed (once per order): take the ordered lines out of the cart. */
  onConfirmed: (userId: UserId, items: CartLine[]) => Promise<void>;
  /** Fault tests only: a pause inside each step's transaction, so a SIGKILL can land mid-step. */
  stepDelayMs?: number;
}

/**
 * The checkout saga: reserve stock -> charge the account -> confirm. When stock is short the order
 * is cancelled (nothing was taken); when the charge is refused the done steps are undone in
 * reverse (refund, if anything was charged; release the stock) and the order is cancelled.
 *
 * Each step is ONE PostgreSQL transaction that locks the saga row (SELECT ... FOR UPDATE), acts
 * only if the saga is in the state that step expects, and moves the state on in the same commit as
 * its effect (stock, ledger, order status). A step delivered twice (the queue is at least once:
 * a retry after a crash, or two servers holding the same job after an expiry) finds the state
 * already moved and does nothing, so every effect happens once. A crash mid-step rolls it back.
 */
export class CheckoutSaga {
  /** Sagas this server ended, by outcome: `confirmed`, or `cancelled:` and why. */
  readonly outcomes = new Map<string, number>();

  constructor(
    private readonly db: pg.Pool,
    private readonly payments: Payments,
    private readonly options: SagaOptions,
  ) {}

  /** Runs the order's remaining steps; resolves with its final state (null: no such saga). */
  async drive(orderId: string): Promise<SagaState | null> {
    for (;;) {
      const state = await this.step(orderId);
      if (state === null || TERMINAL.has(state)) return state;
    }
  }

  /** Runs the one step the saga waits for, if any; resolves with the state after it. */
  async step(orderId: string): Promise<SagaState | null> {
    /** The step that ended the saga, when this one did: known only once its transaction committed. */
    let ended: { next: Transition; saga: LockedSaga } | undefined;
    const state = await retryOnSqlState(() =>
      inTransaction(this.db, async (tx) => {
        ended = undefined;
        const { rows } = await tx.query<LockedSaga>(q.lockSaga(orderId));
        const saga = rows[0];
        if (!saga) return null;
        if (TERMINAL.has(saga.state)) return saga.state;
        const next = await this.#effect(tx, orderId, saga);
        if (this.options.stepDelayMs) await delay(this.options.stepDelayMs);
        await this.#record(tx, orderId, next);
        if (TERMINAL.has(next.state)) ended = { next, saga };
        return next.state;
      }),
    );
    if (!ended) return state;
    // After the commit, once: the step that ended the saga ran here.
    const { next, saga } = ended;
    const outcome = next.reason ? `${next.state}:${next.reason}` : next.state;
    this.outcomes.set(outcome, (this.outcomes.get(outcome) ?? 0) + 1);
    if (next.state === 'confirmed') {
      // A crash just here leaves the lines in the cart, which is harmless.
      await this.options.onConfirmed(saga.user_id, saga.items).catch((error: unknown) => {
        this.options.log.warn({ err: error, orderId }, 'confirmed order: could not take its lines out of the cart');
      });
    }
    return state;
  }

  async #effect(tx: pg.PoolClient, orderId: string, saga: LockedSaga): Promise<Transition> {
    // Stock rows are always locked in item id order, so concurrent sagas never deadlock on them.
    const lines = [...saga.items].sort((a, b) => (a.itemId < b.itemId ? -1 : 1));
    switch (saga.state) {
      case 'started': {
        await tx.query(q.reserveSavepoint());
        for (const line of lines) {
          const taken = await tx.query(q.takeStock(line.itemId, line.qty));
          if (taken.rowCount !== 1) {
            // One line short: give back the lines taken so far in this step, then cancel.
            await tx.query(q.rollbackReserve());
            return {
              step: 'reserve',
              outcome: `out_of_stock:${line.itemId}`,
              state: 'cancelled',
              status: 'cancelled',
              reason: 'out_of_stock',
            };
          }
        }
        return {
          step: 'reserve',
          outcome: 'reserved',
          state: 'reserved',
          status: 'pending',
          reason: null,
        };
      }
      case 'reserved': {
        const charged = await this.payments.chargeOrder(tx, saga.user_id, orderId, Number(saga.total_cents));
        return charged === 'charged'
          ? {
              step: 'charge',
              outcome: 'charged',
              state: 'charged',
              status: 'pending',
              reason: null,
            }
          : {
              step: 'charge',
              outcome: 'insufficient_funds',
              state: 'compensating',
              status: 'pending',
              reason: 'payment_failed',
            };
      }
      case 'charged':
        return {
          step: 'confirm',
          outcome: 'confirmed',
          state: 'confirmed',
          status: 'confirmed',
          reason: null,
        };
      case 'compensating': {
        // Undo in reverse: the charge (a no-op when it was refused), then the reservation.
        await this.payments.refundOrder(tx, saga.user_id, orderId);
        for (const line of lines) await tx.query(q.releaseStock(line.itemId, line.qty));
        return {
          step: 'compensate',
          outcome: 'released',
          state: 'cancelled',
          status: 'cancelled',
          reason: saga.reason ?? 'payment_failed',
        };
      }
      default:
        throw new Error(`checkout saga ${orderId} is in an unknown state ${String(saga.state)}`);
    }
  }

  async #record(tx: pg.PoolClient, orderId: string, next: Transition): Promise<void> {
    // The step log's primary key (order, step) makes a second commit of one step impossible.
    await tx.query(q.logStep(orderId, next.step, next.outcome, this.options.serverId));
    await tx.query(q.setSagaState(orderId, next.state, next.reason));
    await tx.query(q.setOrderStatus(orderId, next.status, next.status === 'cancelled' ? next.reason : null));
  }
}
