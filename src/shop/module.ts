import type { App } from '../server/app-type.ts';
import type { ServerContext } from '../server/context.ts';
import { cartRoutes } from './cart-routes.ts';
import { Carts } from './cart.ts';
import { CheckoutQueue } from './checkout-queue.ts';
import { CheckoutSaga } from './checkout-saga.ts';
import { CheckoutWorker } from './checkout-worker.ts';
import { Menu } from './menu.ts';
import { menuRoutes } from './menu-routes.ts';
import { orderRoutes } from './order-routes.ts';
import { Orders } from './orders.ts';

/** The pizza shop: a cacheable menu, carts in session state, checkout as a durable saga. */
export async function shopModule(app: App, ctx: ServerContext): Promise<void> {
  if (!ctx.payments) throw new Error('the shop needs the bank module (ctx.payments) mounted before it');
  const menu = new Menu(ctx.db);
  const carts = new Carts(ctx.state.hashes);
  const orders = new Orders(ctx.db);
  const saga = new CheckoutSaga(ctx.db, ctx.payments, {
    serverId: ctx.config.serverId,
    log: ctx.log,
    onConfirmed: (userId, items) => carts.takeOut({ userId }, items),
    stepDelayMs: ctx.config.sagaStepDelayMs,
  });
  const queue = new CheckoutQueue(ctx.config.databaseUrl, ctx.config.serverId, ctx.log);
  await queue.start(ctx.db);
  const worker = new CheckoutWorker(queue, (orderId) => saga.drive(orderId), ctx.log);
  worker.start();
  // Close phase, before the database pool closes: sagas in flight finish or go back to the queue.
  ctx.lifecycle.onClose('checkout sagas', async () => {
    await worker.stop();
    await queue.stop();
  });

  // A visitor who signs in brings the cart along: each line is added to the user's cart atomically.
  ctx.signInHooks.push(async (visitor, user) => {
    if (user.userId) await carts.merge({ session: visitor }, { userId: user.userId });
  });

  menuRoutes(app, menu);
  cartRoutes(app, ctx, carts, menu);
  orderRoutes(app, ctx, carts, orders, queue, worker);
}
