import type { FastifyReply } from 'fastify';
import type { App } from '../server/app-type.ts';
import type { ServerContext } from '../server/context.ts';
import { AppError } from '../server/errors.ts';
import { responses } from '../server/schemas.ts';
import { runIdempotent, startKeyCleanup, type IdempotentResult } from '../idempotency/run-idempotent.ts';
import { ledgerView, serverMemoryView } from './atm-view.ts';
import { Ledger } from './ledger.ts';
import { AmountBody, Balance, IdempotencyHeader, Movement, TransactionList, TransferBody } from './schemas.ts';

const tags = ['bank'];
const send = <T>(reply: FastifyReply, result: IdempotentResult<T>) =>
  reply.code(result.status).headers(result.headers).send(result.body);

/** The bank / ATM: balances and a ledger in PostgreSQL; every money movement idempotent by key. */
export function bankModule(app: App, ctx: ServerContext): void {
  const ledger = new Ledger(ctx.db);
  ctx.payments = ledger;
  // The one place the design differs: what an ATM shows. Stateful servers remember balances.
  const atm = ctx.config.mode === 'stateful' ? serverMemoryView(ctx.state.hashes) : ledgerView;
  const stopCleanup = startKeyCleanup(ctx.db, ctx.config.idempotencySweepMs);
  ctx.lifecycle.onClose('idempotency key cleanup', async () => stopCleanup());

  app.get('/api/bank/account', { schema: { tags, response: responses({ 200: Balance }, [401]) } }, async (request) => {
    const { userId } = await ctx.auth.requireUser(request);
    return { balanceCents: await atm.shown(userId, () => ledger.balance(userId)) };
  });

  const movement = (kind: 'deposit' | 'withdraw') =>
    app.post(
      `/api/bank/${kind}`,
      {
        schema: {
          tags,
          headers: IdempotencyHeader,
          body: AmountBody,
          response: responses({ 200: Movement }, [400, 401, 409, 422]),
        },
      },
      async (request, reply) => {
        const { userId } = await ctx.auth.requireUser(request);
        const { amountCents } = request.body;
        const result = await runIdempotent(ctx.db, request, userId, async (tx) => {
          const key = request.headers['idempotency-key'] as string;
          const transaction =
            kind === 'deposit'
              ? await ledger.deposit(tx, userId, amountCents, key)
              : await ledger.withdraw(tx, userId, amountCents, key);
          const delta = kind === 'deposit' ? amountCents : -amountCents;
          return {
            status: 200,
            body: { balanceCents: await atm.after(userId, delta, transaction.balanceAfterCents), transaction },
          };
        });
        return send(reply, result);
      },
    );
  movement('deposit');
  movement('withdraw');

  app.post(
    '/api/bank/transfer',
    {
      schema: {
        tags,
        headers: IdempotencyHeader,
        body: TransferBody,
        response: responses({ 200: Movement }, [400, 401, 404, 409, 422]),
      },
    },
    async (request, reply) => {
      const { userId, username } = await ctx.auth.requireUser(request);
      const { toUsername, amountCents } = request.body;
      if (toUsername === username)
        throw new AppError('invalid_input', 'A transfer needs another account than your own.');
      const result = await runIdempotent(ctx.db, request, userId, async (tx) => {
        const recipient = await ctx.users.byUsername(toUsername);
        if (!recipient) throw new AppError('user_not_found', `There is no user "${toUsername}".`);
        const transaction = await ledger.transfer(
          tx,
          userId,
          recipient.id,
          amountCents,
          request.headers['idempotency-key'] as string,
        );
        return {
          status: 200,
          body: { balanceCents: await atm.after(userId, -amountCents, transaction.balanceAfterCents), transaction },
        };
      });
      return send(reply, result);
    },
  );

  app.get(
    '/api/bank/transactions',
    { schema: { tags, response: responses({ 200: TransactionList }, [401]) } },
    async (request) => {
      const { userId } = await ctx.auth.requireUser(request);
      return { transactions: await ledger.transactions(userId) };
    },
  );
}
