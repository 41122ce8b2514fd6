import { Type } from 'typebox';
import { MAX_LINE_QTY } from './cart.ts';
import { ORDER_LIST_LIMIT } from './orders.ts';

const ItemId = Type.String({
  minLength: 1,
  maxLength: 64,
  pattern: '^[a-z0-9-]+$',
  description: 'a menu item id, e.g. "margherita"',
});

export const MenuSchema = Type.Object({
  items: Type.Array(
    Type.Object({
      id: Type.String(),
      name: Type.String(),
      kind: Type.String({ description: 'pizza or drink' }),
      priceCents: Type.Integer(),
      stock: Type.Integer(),
    }),
  ),
});

const Line = Type.Object({
  itemId: Type.String(),
  name: Type.String(),
  qty: Type.Integer(),
  priceCents: Type.Integer(),
});
export const CartSchema = Type.Object({ items: Type.Array(Line), totalCents: Type.Integer() });

export const AddItem = Type.Object(
  {
    itemId: ItemId,
    qty: Type.Integer({
      minimum: 1,
      maximum: MAX_LINE_QTY,
      description: 'added to the line, 1 to 99',
    }),
  },
  // The served document's example body (examples[0]); it must pass this schema.
  { additionalProperties: false, examples: [{ itemId: 'margherita', qty: 2 }] },
);
export const SetQty = Type.Object(
  {
    qty: Type.Integer({
      minimum: 0,
      maximum: MAX_LINE_QTY,
      description: 'the new quantity, 0 to 99; 0 removes the line',
    }),
  },
  { additionalProperties: false, examples: [{ qty: 3 }] },
);
export const ItemParams = Type.Object({ itemId: ItemId });

export const OrderSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  status: Type.Union([Type.Literal('pending'), Type.Literal('confirmed'), Type.Literal('cancelled')]),
  reason: Type.Optional(
    Type.Union([Type.Literal('out_of_stock'), Type.Literal('payment_failed')], {
      description: 'why it was cancelled',
    }),
  ),
  totalCents: Type.Integer(),
  items: Type.Array(Line, {
    description: 'the cart lines at checkout, with the prices of that moment',
  }),
  createdAt: Type.String({ format: 'date-time' }),
});
export const OrderReply = Type.Object({ order: OrderSchema });
export const OrderList = Type.Object({
  orders: Type.Array(OrderSchema, { description: `newest first, at most ${ORDER_LIST_LIMIT}` }),
});
export const OrderParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
/** Checkout takes the cart as it is: the body is an empty object. */
export const CheckoutBody = Type.Object({}, { additionalProperties: false, examples: [{}] });
