import type pg from 'pg';
import { AppError } from '../kernel/errors.ts';
import type { UserId } from '../kernel/ids.ts';
import type { CartLine } from './cart.ts';

export type OrderStatus = 'pending' | 'confirmed' | 'cancelled';
export type CancelReason = 'out_of_stock' | 'payment_failed';

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

const COLUMNS = 'id, status, reason, total_cents, items, created_at';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** GET /api/orders answers the newest this many. */
export const ORDER_LIST_LIMIT = 100;

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
   * cart's lines priced by the menu as it is in that transaction. An empty cart is a 400.
   */
  async create(tx: pg.PoolClient, userId: UserId, lines: ReadonlyMap<string, number>): Promise<Order> {
    const { rows: menu } = await tx.query<{ id: string; name: string; price_cents: number }>(
      'SELECT id, name, price_cents FROM menu_items WHERE id = ANY($1::text[]) ORDER BY position, id',
      [[...lines.keys()]],
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
    const { rows } = await tx.query<OrderRow>(
      `INSERT INTO orders (user_id, items, total_cents) VALUES ($1, $2, $3) RETURNING ${COLUMNS}`,
      [userId, JSON.stringify(items), total],
    );
    const order = rows[0]!;
    await tx.query('INSERT INTO checkout_sagas (order_id) VALUES ($1)', [order.id]);
    return toOrder(order);
  }

  /** The user's own order, or null (another user's order is as unknown as a missing one). */
  async get(userId: UserId, id: string): Promise<Order | null> {
    if (!UUID.test(id)) return null;
    const { rows } = await this.db.query<OrderRow>(`SELECT ${COLUMNS} FROM orders WHERE id = $1 AND user_id = $2`, [
      id,
      userId,
    ]);
    return rows[0] ? toOrder(rows[0]) : null;
  }

  /** Newest first. */
  async list(userId: UserId): Promise<Order[]> {
    const { rows } = await this.db.query<OrderRow>(
      `SELECT ${COLUMNS} FROM orders WHERE user_id = $1 ORDER BY created_at DESC, id LIMIT ${ORDER_LIST_LIMIT}`,
      [userId],
    );
    return rows.map(toOrder);
  }
}
