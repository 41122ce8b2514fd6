/** The bank's words, shared by the ledger and its SQL (queries.ts): no logic here. */

export type TransactionKind =
  'deposit' | 'withdrawal' | 'transfer_out' | 'transfer_in' | 'order_charge' | 'order_refund';

/** One posting of the ledger, as the API shows it. */
export interface Transaction {
  id: string;
  kind: TransactionKind;
  amountCents: number;
  balanceAfterCents: number;
  createdAt: string;
}

/** The answer to a deposit, withdrawal or transfer (Movement in schemas.ts). */
export interface MovementBody {
  balanceCents: number;
  transaction: Transaction;
}
