import type pg from 'pg';
import { AppError } from '../kernel/errors.ts';
import type { UserId } from '../kernel/ids.ts';
import type { CancelReason, CartLine, OrderStatus } from './types.ts';
import * as q from './queries.ts';

// GET /api/orders answers the newest ORDER_LIST_LIMIT; it lives with the statement in queries.ts.
export { ORDER_LIST_LIMIT } from './queries.ts';

export interface Order {
  id: string;
  status: OrderStatus;
  reason?: CancelReason;
  totalCents: number;
  items: CartLine[];
  createdAt: string;
}

interface OrderRow {
  id: string;
  status: OrderStatus;
  reason: CancelReason | null;
  total_cents: string;
  items: CartLine[];
  created_at: Date;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const toOrder = (row: OrderRow): Order => ({
  id: row.id,
  status: row.status,
  ...(row.reason ? { reason: row.reason } : {}),
  totalCents: Number(row.total_cents),
  items: row.items,
  createdAt: row.created_at.toISOString(),
});

/** Orders as records in PostgreSQL. */
export class Orders {
  constructor(private readonly db: pg.Pool) {}

  /**
   * Creates a pending order and its saga (state `started`) in the caller's transaction, from the
   * cart's lines priced by the menu as it is in that transaction. An empty cart is a 400; a
   * second checkout while one is pending is a 409 (the cart still holds the pending order's lines).
   */
  async create(tx: pg.PoolClient, userId: UserId, lines: ReadonlyMap<string, number>): Promise<Order> {
    const { rows: menu } = await tx.query<{ id: string; name: string; price_cents: number }>(
      q.menuPrices([...lines.keys()]),
    );
    const items: CartLine[] = menu.map((m) => ({
      itemId: m.id,
      name: m.name,
      qty: lines.get(m.id)!,
      priceCents: m.price_cents,
    }));
    if (items.length === 0)
      throw new AppError('invalid_input', 'The cart is empty; add something from the menu first.');
    const total = items.reduce((sum, line) => sum + line.qty * line.priceCents, 0);
    const { rows } = await tx.query<OrderRow>(q.insertOrder(userId, items, total)).catch((error: unknown) => {
      const e = error as { code?: string; constraint?: string };
      if (e.code !== '23505' || e.constraint !== q.ONE_PENDING_CONSTRAINT) throw error;
      throw new AppError('conflict', 'Your previous order is still being placed; wait for it to finish.');
    });
    const order = rows[0]!;
    await tx.query(q.startSaga(order.id));
    return toOrder(order);
  }

  /** The user's own order, or null (another user's order is as unknown as a missing one). */
  async get(userId: UserId, id: string): Promise<Order | null> {
    if (!UUID.test(id)) return null;
    const { rows } = await this.db.query<OrderRow>(q.order(userId, id));
    return rows[0] ? toOrder(rows[0]) : null;
  }

  /** Newest first. */
  async list(userId: UserId): Promise<Order[]> {
    const { rows } = await this.db.query<OrderRow>(q.orders(userId));
    return rows.map(toOrder);
  }
}
