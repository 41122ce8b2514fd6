/** The shop's words, shared by its records, its saga and its SQL (queries.ts): no logic here. */

/** One line of a cart or an order: the price is the menu's when the line was priced. */
export interface CartLine {
  itemId: string;
  name: string;
  qty: number;
  priceCents: number;
}

export type OrderStatus = 'pending' | 'confirmed' | 'cancelled';
export type CancelReason = 'out_of_stock' | 'payment_failed';

export type SagaState = 'started' | 'reserved' | 'charged' | 'compensating' | 'confirmed' | 'cancelled';
