import type { App } from '../kernel/app-type.ts';
import { AppError } from '../kernel/errors.ts';
import { responses, Security } from '../kernel/responses.ts';
import type { CartOwners } from './cart-owner.ts';
import { lineLimit, MAX_LINE_QTY, priced, type Carts } from './cart.ts';
import type { Menu, MenuItem, MenuSnapshot } from './menu.ts';
import { AddItem, CartSchema, ItemParams, SetQty } from './schemas.ts';

const tags = ['shop'];

/**
 * The cart routes. Every write is validated first (schema, then the item against the menu), so a
 * refused request changes nothing and starts no session; then ONE atomic operation on one line.
 */
/** A line refused for passing its limit: sold out, the stock shown, or 99. */
function overLimit(item: MenuItem, wouldHold: number): AppError {
  const why =
    item.stock <= 0
      ? `${item.name} is sold out`
      : item.stock < MAX_LINE_QTY
        ? `only ${item.stock} ${item.name} left`
        : `a cart line holds at most ${MAX_LINE_QTY}`;
  return new AppError('conflict', `The line would hold ${wouldHold}, but ${why}; nothing was changed.`);
}

export function cartRoutes(app: App, { owners, carts, menu }: { owners: CartOwners; carts: Carts; menu: Menu }): void {
  async function onMenu(itemId: string): Promise<MenuSnapshot> {
    const snapshot = await menu.read();
    if (!snapshot.byId.has(itemId))
      throw new AppError('not_found', `There is no "${itemId}" on the menu; GET /api/menu lists the items.`);
    return snapshot;
  }

  app.get(
    '/api/cart',
    {
      schema: {
        operationId: 'getCart',
        summary: 'The cart',
        description:
          "The signed-in user's cart, or the visitor's (by the session cookie); empty without either. Reading never starts a session.",
        tags,
        security: Security.userOrVisitor,
        response: responses({ 200: CartSchema }, [401]),
      },
    },
    async (request) => {
      const owner = await owners.current(request);
      const snapshot = await menu.read();
      return owner ? carts.view(owner, snapshot) : { items: [], totalCents: 0 };
    },
  );

  app.post(
    '/api/cart/items',
    {
      schema: {
        operationId: 'addCartItem',
        summary: 'Add an item to the cart',
        tags,
        description:
          'Adds qty (1..99) to the line: 404 for an item not on the menu, 409 `conflict` when the line would pass 99 or the stock the menu shows (nothing added; the message says which). A visitor without a session gets one (and its cookie).',
        security: Security.userOrVisitor,
        body: AddItem,
        response: responses({ 200: CartSchema }, [400, 401, 404, 409]),
      },
    },
    async (request, reply) => {
      const { itemId, qty } = request.body;
      const snapshot = await onMenu(itemId);
      const item = snapshot.byId.get(itemId)!;
      const limit = lineLimit(item);
      // Refused before a visitor gets a session: a refused write starts nothing.
      if (qty > limit) throw overLimit(item, qty);
      const owner = await owners.forWrite(request, reply);
      const outcome = await carts.add(owner, itemId, qty, limit);
      if ('wouldHold' in outcome) throw overLimit(item, outcome.wouldHold);
      return priced(outcome.lines, snapshot);
    },
  );

  app.put(
    '/api/cart/items/:itemId',
    {
      schema: {
        operationId: 'setCartItem',
        summary: 'Set the quantity of a cart line',
        tags,
        description:
          'Sets the line (0..99); 0 removes it. 404 for an item not on the menu; 409 `conflict` for more than the stock the menu shows.',
        security: Security.userOrVisitor,
        params: ItemParams,
        body: SetQty,
        response: responses({ 200: CartSchema }, [400, 401, 404, 409]),
      },
    },
    async (request, reply) => {
      const snapshot = await onMenu(request.params.itemId);
      const item = snapshot.byId.get(request.params.itemId)!;
      if (request.body.qty > lineLimit(item)) throw overLimit(item, request.body.qty);
      const owner = await owners.forWrite(request, reply);
      await carts.set(owner, request.params.itemId, request.body.qty);
      return carts.view(owner, snapshot);
    },
  );

  app.delete(
    '/api/cart/items/:itemId',
    {
      schema: {
        operationId: 'removeCartItem',
        summary: 'Remove a line from the cart',
        tags,
        security: Security.userOrVisitor,
        params: ItemParams,
        response: responses({ 200: CartSchema }, [400, 401, 404]),
      },
    },
    async (request) => {
      const snapshot = await onMenu(request.params.itemId);
      const owner = await owners.current(request);
      if (!owner) return { items: [], totalCents: 0 };
      await carts.remove(owner, request.params.itemId);
      return carts.view(owner, snapshot);
    },
  );
}
