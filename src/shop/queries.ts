/**
 * Every SQL statement of the shop (menu, orders, the checkout saga), in one place (the way pg-boss
 * keeps its statements in plans.ts). Each function returns the whole `pg.QueryConfig`, values
 * included, so a placeholder and the value bound to it read side by side. A `name` makes the
 * statement a prepared one on each connection: names are stable, and every name has exactly one
 * text. The cart is not here: it lives in the session-state store, not in SQL. The checkout queue's
 * statements belong to pg-boss.
 */
import type pg from 'pg';
import type { UserId } from '../kernel/ids.ts';
import type { CancelReason, CartLine, OrderStatus, SagaState } from './types.ts';

/** GET /api/orders answers the newest this many. */
export const ORDER_LIST_LIMIT = 100;

/** The columns of one order, as `OrderRow` in orders.ts reads them. */
const ORDER = 'id, status, reason, total_cents, items, created_at';

// --- Menu ---------------------------------------------------------------------------------------

/** The whole menu, in the order it is shown. */
export const menu = (): pg.QueryConfig => ({
  name: 'shop_menu',
  text: 'SELECT id, name, kind, price_cents, stock FROM menu_items ORDER BY position, id',
});

// --- Orders -------------------------------------------------------------------------------------

/** The menu as it is in the caller's transaction, for pricing an order's lines. */
export const menuPrices = (itemIds: string[]): pg.QueryConfig => ({
  text: 'SELECT id, name, price_cents FROM menu_items WHERE id = ANY($1::text[]) ORDER BY position, id',
  values: [itemIds],
});

/** A new pending order. */
/** The unique index that lets a user have one pending order at a time (migration 007). */
export const ONE_PENDING_CONSTRAINT = 'orders_one_pending';

export const insertOrder = (userId: UserId, items: CartLine[], totalCents: number): pg.QueryConfig => ({
  text: `INSERT INTO orders (user_id, items, total_cents) VALUES ($1, $2, $3) RETURNING ${ORDER}`,
  values: [userId, JSON.stringify(items), totalCents],
});

/** The order's saga, in state `started`, in the same transaction as the order. */
export const startSaga = (orderId: string): pg.QueryConfig => ({
  text: 'INSERT INTO checkout_sagas (order_id) VALUES ($1)',
  values: [orderId],
});

/** The user's own order: another user's order matches no row, just like a missing one. */
export const order = (userId: UserId, orderId: string): pg.QueryConfig => ({
  text: `SELECT ${ORDER} FROM orders WHERE id = $1 AND user_id = $2`,
  values: [orderId, userId],
});

/** The user's orders, newest first. */
export const orders = (userId: UserId): pg.QueryConfig => ({
  text: `SELECT ${ORDER} FROM orders WHERE user_id = $1 ORDER BY created_at DESC, id LIMIT ${ORDER_LIST_LIMIT}`,
  values: [userId],
});

// --- Checkout saga: every step runs these, so they are prepared -----------------------------------

/** The saga row, locked for the step's transaction, with what its steps need from the order. */
export const lockSaga = (orderId: string): pg.QueryConfig => ({
  name: 'shop_saga_lock',
  text: `SELECT s.state, s.reason, o.user_id, o.items, o.total_cents
           FROM checkout_sagas s JOIN orders o ON o.id = s.order_id
           WHERE s.order_id = $1 FOR UPDATE OF s`,
  values: [orderId],
});

/** Reserving stock: one line short rolls back to here, giving back the lines taken so far. */
export const reserveSavepoint = (): pg.QueryConfig => ({ text: 'SAVEPOINT reserve' });
export const rollbackReserve = (): pg.QueryConfig => ({ text: 'ROLLBACK TO SAVEPOINT reserve' });

/** Takes one line's stock; no row changed when there is not enough. */
export const takeStock = (itemId: string, qty: number): pg.QueryConfig => ({
  name: 'shop_stock_take',
  text: 'UPDATE menu_items SET stock = stock - $2 WHERE id = $1 AND stock >= $2',
  values: [itemId, qty],
});

/** Gives one line's stock back (compensation). */
export const releaseStock = (itemId: string, qty: number): pg.QueryConfig => ({
  name: 'shop_stock_release',
  text: 'UPDATE menu_items SET stock = stock + $2 WHERE id = $1',
  values: [itemId, qty],
});

/** The step log's primary key (order, step) makes a second commit of one step impossible. */
export const logStep = (orderId: string, step: string, outcome: string, serverId: string): pg.QueryConfig => ({
  name: 'shop_saga_log_step',
  text: 'INSERT INTO checkout_saga_steps (order_id, step, outcome, server_id) VALUES ($1, $2, $3, $4)',
  values: [orderId, step, outcome, serverId],
});

export const setSagaState = (orderId: string, state: SagaState, reason: CancelReason | null): pg.QueryConfig => ({
  name: 'shop_saga_set_state',
  text: 'UPDATE checkout_sagas SET state = $2, reason = $3, updated_at = clock_timestamp() WHERE order_id = $1',
  values: [orderId, state, reason],
});

export const setOrderStatus = (orderId: string, status: OrderStatus, reason: CancelReason | null): pg.QueryConfig => ({
  name: 'shop_order_set_status',
  text: 'UPDATE orders SET status = $2, reason = $3, updated_at = clock_timestamp() WHERE id = $1',
  values: [orderId, status, reason],
});
