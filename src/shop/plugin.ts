import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger } from 'fastify';
import fp from 'fastify-plugin';
import type pg from 'pg';
import type { Idempotency } from '../idempotency/idempotency.ts';
import type { StateStore } from '../state/types.ts';
import { cartOwners } from './cart-owner.ts';
import { cartRoutes } from './cart-routes.ts';
import { Carts, lineLimit, MAX_LINE_QTY } from './cart.ts';
import { CheckoutQueue } from './checkout-queue.ts';
import { CheckoutSaga } from './checkout-saga.ts';
import { CheckoutWorker } from './checkout-worker.ts';
import { Menu } from './menu.ts';
import { menuRoutes } from './menu-routes.ts';
import { orderRoutes } from './order-routes.ts';
import { Orders } from './orders.ts';

export interface ShopDeps {
  db: pg.Pool;
  state: StateStore;
  idempotency: Idempotency;
  config: { serverId: string; databaseUrl: string; sagaStepDelayMs: number };
  log: FastifyBaseLogger;
}

/** What the shop tells /metrics. */
export interface ShopStats {
  /** Checkout sagas this server ended, by outcome (`confirmed`, `cancelled:payment_failed`, ...). */
  sagaOutcomes(): Array<[string, number]>;
}

declare module 'fastify' {
  interface FastifyInstance {
    shop: ShopStats;
  }
}

/** The pizza shop: a cacheable menu, carts in session state, checkout as a durable saga that pays through the bank. */
export const shopPlugin = fp<ShopDeps>(
  async (fastify, { db, state, idempotency, config, log }) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const menu = new Menu(db);
    const carts = new Carts(state.hashes);
    const orders = new Orders(db);
    const saga = new CheckoutSaga(db, app.payments, {
      serverId: config.serverId,
      log,
      onConfirmed: (userId, items) => carts.takeOut({ userId }, items),
      stepDelayMs: config.sagaStepDelayMs,
    });
    app.decorate('shop', { sagaOutcomes: () => [...saga.outcomes] } satisfies ShopStats);
    const queue = new CheckoutQueue(config.databaseUrl, config.serverId, log);
    await queue.start(db);
    const worker = new CheckoutWorker(queue, (orderId) => saga.drive(orderId), log);
    worker.start();
    // After the listener closed and requests drained: sagas in flight finish or go back to the queue.
    app.addHook('onClose', async () => {
      await worker.stop();
      await queue.stop();
    });

    // A visitor who signs in brings the cart along: each line is added to the user's cart atomically,
    // and a sum past the line's limit (the stock shown, 99) is brought down to it.
    app.accounts.onVisitorSignIn(async (visitor, user) => {
      if (!user.userId) return;
      const { byId } = await menu.read();
      await carts.merge({ session: visitor }, { userId: user.userId }, (itemId) => {
        const item = byId.get(itemId);
        return item ? lineLimit(item) : MAX_LINE_QTY;
      });
    });

    const owners = cartOwners(app.auth, app.accounts.sessions);
    menuRoutes(app, menu);
    cartRoutes(app, { owners, carts, menu });
    orderRoutes(app, { auth: app.auth, idempotency, carts, orders, queue, worker });
  },
  { name: 'shop', dependencies: ['accounts', 'bank'], fastify: '5.x' },
);
