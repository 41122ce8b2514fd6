import type { FastifyReply } from 'fastify';
import type { Authenticator } from '../accounts/authenticate.ts';
import type { Idempotency, IdempotentResult } from '../idempotency/idempotency.ts';
import { operationOf } from '../idempotency/from-request.ts';
import { IdempotencyKeyHeader } from '../idempotency/key.ts';
import type { App } from '../kernel/app-type.ts';
import { AppError } from '../kernel/errors.ts';
import { responses, Security } from '../kernel/responses.ts';
import type { UsersTable } from '../accounts/users.ts';
import type { AtmView } from './atm-view.ts';
import type { Ledger } from './ledger.ts';
import { AmountBody, Balance, Movement, TransactionList, TransferBody } from './schemas.ts';

const tags = ['bank'];
const send = <T>(reply: FastifyReply, result: IdempotentResult<T>) =>
  reply.code(result.status).headers(result.headers).send(result.body);

export interface BankRoutesDeps {
  ledger: Ledger;
  atm: AtmView;
  idempotency: Idempotency;
  auth: Authenticator;
  users: UsersTable;
}

/** Balance, deposit, withdraw, transfer, history. The ledger guards the money; the ATM view only answers. */
export function bankRoutes(app: App, { ledger, atm, idempotency, auth, users }: BankRoutesDeps): void {
  app.get(
    '/api/bank/account',
    {
      schema: {
        operationId: 'getAccount',
        summary: 'The balance of the account',
        description: 'A new account opens with 100000 cents.',
        tags,
        security: Security.signedIn,
        response: responses({ 200: Balance }, [401]),
      },
    },
    async (request) => {
      const { userId } = await auth.requireUser(request);
      return { balanceCents: await atm.shown(userId, () => ledger.balance(userId)) };
    },
  );

  const movementDocs = {
    deposit: { summary: 'Deposit money (IK)', description: 'Adds `amountCents` to the balance.' },
    withdraw: {
      summary: 'Withdraw money (IK)',
      description:
        'Takes `amountCents` from the balance; 409 `insufficient_funds` when it is lower, and nothing moves.',
    },
  };

  const movement = (kind: 'deposit' | 'withdraw') =>
    app.post(
      `/api/bank/${kind}`,
      {
        schema: {
          operationId: kind,
          ...movementDocs[kind],
          tags,
          security: Security.signedIn,
          headers: IdempotencyKeyHeader,
          body: AmountBody,
          response: responses({ 200: Movement }, [400, 401, 409, 422]),
        },
      },
      async (request, reply) => {
        const { userId } = await auth.requireUser(request);
        const operation = operationOf(request, userId);
        const delta = kind === 'deposit' ? request.body.amountCents : -request.body.amountCents;
        const view = await atm.ahead(userId, delta);
        const result = await ledger
          .moveOnce(idempotency, operation, delta, view.shown)
          .catch(async (error: unknown) => {
            await view.settle(null);
            throw error;
          });
        const { body, headers } = result;
        // Made by this request (not replayed, not refused): the ATM keeps it.
        const made = !headers['idempotent-replayed'] && 'transaction' in body;
        await view.settle(made ? body.transaction.balanceAfterCents : null);
        return send(reply, result);
      },
    );
  movement('deposit');
  movement('withdraw');

  app.post(
    '/api/bank/transfer',
    {
      schema: {
        operationId: 'transfer',
        summary: 'Transfer money to another user (IK)',
        description:
          'Moves `amountCents` to the account of `toUsername` in one transaction: 404 `user_not_found` for an unknown user, 409 `insufficient_funds` when the balance is lower.',
        tags,
        security: Security.signedIn,
        headers: IdempotencyKeyHeader,
        body: TransferBody,
        response: responses({ 200: Movement }, [400, 401, 404, 409, 422]),
      },
    },
    async (request, reply) => {
      const { userId, username } = await auth.requireUser(request);
      const { toUsername, amountCents } = request.body;
      if (toUsername === username)
        throw new AppError('invalid_input', 'A transfer needs another account than your own.');
      const result = await idempotency.run(operationOf(request, userId), async (tx, key) => {
        const recipient = await users.byUsername(toUsername);
        if (!recipient) throw new AppError('user_not_found', `There is no user "${toUsername}".`);
        const transaction = await ledger.transfer(tx, userId, recipient.id, amountCents, key);
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
    {
      schema: {
        operationId: 'listTransactions',
        summary: 'The transactions of the account, newest first',
        tags,
        security: Security.signedIn,
        response: responses({ 200: TransactionList }, [401]),
      },
    },
    async (request) => {
      const { userId } = await auth.requireUser(request);
      return { transactions: await ledger.transactions(userId) };
    },
  );
}
