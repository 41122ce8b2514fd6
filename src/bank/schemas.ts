import { Type } from 'typebox';
import { USERNAME_PATTERN } from '../accounts/account-rules.ts';

export const MAX_AMOUNT_CENTS = 100_000_000;

const Amount = Type.Integer({ minimum: 1, maximum: MAX_AMOUNT_CENTS, description: 'integer cents, 1 to 100000000' });

// The `examples` are the served document's example bodies; they must pass their schema.
export const AmountBody = Type.Object(
  { amountCents: Amount },
  { additionalProperties: false, examples: [{ amountCents: 2500 }] },
);
export const TransferBody = Type.Object(
  {
    toUsername: Type.String({
      pattern: USERNAME_PATTERN,
      description: 'the username of the recipient: 3 to 32 characters from a-z, 0-9, _ and -',
    }),
    amountCents: Amount,
  },
  { additionalProperties: false, examples: [{ toUsername: 'bob', amountCents: 1250 }] },
);

export const TransactionSchema = Type.Object({
  id: Type.String(),
  kind: Type.String(),
  amountCents: Type.Integer(),
  balanceAfterCents: Type.Integer(),
  createdAt: Type.String({ format: 'date-time' }),
});
export const Balance = Type.Object({ balanceCents: Type.Integer() });
export const Movement = Type.Object({ balanceCents: Type.Integer(), transaction: TransactionSchema });
export const TransactionList = Type.Object({ transactions: Type.Array(TransactionSchema) });
