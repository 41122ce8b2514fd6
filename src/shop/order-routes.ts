import type { Authenticator } from '../accounts/authenticate.ts';
import { operationOf } from '../idempotency/from-request.ts';
import type { Idempotency } from '../idempotency/idempotency.ts';
import { IdempotencyKeyHeader } from '../idempotency/key.ts';
import type { App } from '../kernel/app-type.ts';
import { AppError } from '../kernel/errors.ts';
import { responses, Security } from '../kernel/responses.ts';
import type { Carts } from './cart.ts';
import type { CheckoutQueue } from './checkout-queue.ts';
import type { CheckoutWorker } from './checkout-worker.ts';
import type { Orders } from './orders.ts';
import { CheckoutBody, OrderList, OrderParams, OrderReply } from './schemas.ts';

const tags = ['shop'];

export interface OrderRoutesDeps {
  auth: Authenticator;
  idempotency: Idempotency;
  carts: Carts;
  orders: Orders;
  queue: CheckoutQueue;
  worker: CheckoutWorker;
}

export function orderRoutes(app: App, { auth, idempotency, carts, orders, queue, worker }: OrderRoutesDeps): void {
  app.post(
    '/api/orders',
    {
      schema: {
        operationId: 'createOrder',
        summary: 'Check out the cart (IK)',
        security: Security.signedIn,
        tags,
        description:
          "Checks out the signed-in user's cart (Idempotency-Key required). 202: the order is pending; its saga reserves stock, charges the bank account and confirms, or cancels and undoes what it did. Poll GET /api/orders/:id. 409 `conflict` while another order of the user is pending: the cart keeps an order's lines until it is confirmed, so a second checkout would order them again.",
        headers: IdempotencyKeyHeader,
        body: CheckoutBody,
        response: responses({ 202: OrderReply }, [400, 401, 409, 422]),
      },
    },
    async (request, reply) => {
      const { userId } = await auth.requireUser(request);
      // One transaction: the key, the order, its saga row and its queue job commit together.
      const result = await idempotency.run(operationOf(request, userId), async (tx) => {
        const order = await orders.create(tx, userId, await carts.lines({ userId }));
        await queue.enqueue(tx, order.id);
        return { status: 202, body: { order } };
      });
      if (result.status === 202 && !result.headers['idempotent-replayed']) worker.wake();
      return reply.code(result.status).headers(result.headers).send(result.body);
    },
  );

  app.get(
    '/api/orders',
    {
      schema: {
        operationId: 'listOrders',
        summary: "The user's orders",
        tags,
        security: Security.signedIn,
        response: responses({ 200: OrderList }, [401]),
      },
    },
    async (request) => {
      const { userId } = await auth.requireUser(request);
      return { orders: await orders.list(userId) };
    },
  );

  app.get(
    '/api/orders/:id',
    {
      schema: {
        operationId: 'getOrder',
        summary: 'One order and its status',
        description: 'Status `pending`, `confirmed`, or `cancelled` with a `reason`. 404 for an order of another user.',
        tags,
        security: Security.signedIn,
        params: OrderParams,
        response: responses({ 200: OrderReply }, [401, 404]),
      },
    },
    async (request) => {
      const { userId } = await auth.requireUser(request);
      const order = await orders.get(userId, request.params.id);
      if (!order) throw new AppError('not_found', 'You have no order with that id.');
      return { order };
    },
  );
}
