import type { HashStore, SessionRecord } from '../state/types.ts';
import type { UserId } from '../kernel/ids.ts';
import type { MenuItem, MenuSnapshot } from './menu.ts';
import type { CartLine } from './types.ts';

export interface CartView {
  items: CartLine[];
  totalCents: number;
}

/** A cart lives a week after its last change (every write renews it). */
export const CART_TTL_MS = 7 * 24 * 3_600_000;
/** A line holds at most this many: a set says 0..99, an add 1..99, and adds do not sum past it. */
export const MAX_LINE_QTY = 99;

/**
 * The most a line of this item may hold: 99, and never more than the stock the menu shows (a
 * promise to no one: checkout takes stock in the database, and it may have gone by then).
 */
export const lineLimit = (item: Pick<MenuItem, 'stock'>): number => Math.max(0, Math.min(MAX_LINE_QTY, item.stock));

/** Whose cart: a signed-in user's (it follows them across sessions) or a visitor session's. */
export type CartOwner = { userId: UserId } | { session: SessionRecord };

export const cartKey = (owner: CartOwner): string =>
  'userId' in owner ? `cart:u:${owner.userId}` : `cart:s:${owner.session.id}`;

/**
 * Carts in the session-state store: a hash of item id to quantity. Each change is ONE atomic
 * operation on one line (HINCRBY, HSET, HDEL or their PostgreSQL and memory equivalents), never a
 * read-modify-write of the whole cart, so concurrent changes from any server all count.
 */
export class Carts {
  constructor(private readonly hashes: HashStore) {}

  /**
   * Adds `qty` to the line and returns the cart's lines right after (one round trip). When the line
   * would pass `limit`, the add is undone (one more atomic add) and the answer says what the line
   * would have held. Adds at once never leave a line over the limit; one may be refused while
   * another's overshoot is being undone.
   */
  async add(
    owner: CartOwner,
    itemId: string,
    qty: number,
    limit: number,
  ): Promise<{ lines: Map<string, number> } | { wouldHold: number }> {
    const key = cartKey(owner);
    const { value, fields } = await this.hashes.incrByAndGetAll(key, itemId, qty, CART_TTL_MS);
    if (value <= limit) return { lines: positiveLines(fields) };
    await this.hashes.incrBy(key, itemId, -qty, CART_TTL_MS);
    return { wouldHold: value };
  }

  /** Sets the line; 0 removes it. */
  async set(owner: CartOwner, itemId: string, qty: number): Promise<void> {
    if (qty === 0) await this.hashes.deleteField(cartKey(owner), itemId);
    else await this.hashes.set(cartKey(owner), itemId, String(qty), CART_TTL_MS);
  }

  async remove(owner: CartOwner, itemId: string): Promise<void> {
    await this.hashes.deleteField(cartKey(owner), itemId);
  }

  /** Item id to quantity, only lines with a positive quantity. */
  async lines(owner: CartOwner): Promise<Map<string, number>> {
    return positiveLines(await this.hashes.getAll(cartKey(owner)));
  }

  /** The cart with names and prices from the menu, in menu order; items no longer sold are left out. */
  async view(owner: CartOwner, menu: MenuSnapshot): Promise<CartView> {
    return priced(await this.lines(owner), menu);
  }

  /**
   * Takes ordered lines out after a confirmed checkout: subtracts what was ordered (so units added
   * while the order was pending stay) and drops a line that reaches zero.
   */
  async takeOut(owner: CartOwner, lines: ReadonlyArray<{ itemId: string; qty: number }>): Promise<void> {
    const key = cartKey(owner);
    for (const line of lines) {
      const left = await this.hashes.incrBy(key, line.itemId, -line.qty, CART_TTL_MS);
      if (left <= 0) await this.hashes.deleteField(key, line.itemId);
    }
  }

  /**
   * On sign-in: moves each visitor line into the user's cart with an atomic add, then drops that
   * visitor line, so a merge that is cut short and run again adds at most one line twice. A sum
   * past the line's limit is set down to the limit (a concurrent add may land between the two).
   */
  async merge(from: CartOwner, into: CartOwner, limitOf: (itemId: string) => number): Promise<void> {
    const key = cartKey(from);
    for (const [itemId, qty] of await this.lines(from)) {
      const sum = await this.hashes.incrBy(cartKey(into), itemId, qty, CART_TTL_MS);
      const limit = limitOf(itemId);
      if (sum > limit) await this.set(into, itemId, limit);
      await this.hashes.deleteField(key, itemId);
    }
    await this.hashes.delete(key);
  }
}

/** Item id to quantity, only lines with a positive quantity. */
function positiveLines(raw: Record<string, string>): Map<string, number> {
  const lines = new Map<string, number>();
  for (const [itemId, value] of Object.entries(raw)) {
    const qty = Number(value);
    if (Number.isSafeInteger(qty) && qty > 0) lines.set(itemId, qty);
  }
  return lines;
}

export function priced(lines: ReadonlyMap<string, number>, menu: MenuSnapshot): CartView {
  const items: CartLine[] = [];
  for (const item of menu.items) {
    const qty = lines.get(item.id);
    if (qty) items.push({ itemId: item.id, name: item.name, qty, priceCents: item.priceCents });
  }
  return { items, totalCents: items.reduce((sum, line) => sum + line.qty * line.priceCents, 0) };
}
