-- The bank: balances and the ledger are records; money never lives only in session state.
CREATE TABLE accounts (
  user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  balance_cents bigint NOT NULL CHECK (balance_cents >= 0)
);

-- One posting per account movement; a transfer writes two with the same transfer_id.
CREATE TABLE ledger (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES accounts (user_id) ON DELETE CASCADE,
  kind text NOT NULL CHECK (kind IN ('deposit', 'withdrawal', 'transfer_out', 'transfer_in', 'order_charge', 'order_refund')),
  amount_cents bigint NOT NULL CHECK (amount_cents > 0),
  balance_after_cents bigint NOT NULL,
  transfer_id uuid,
  -- Makes order charges and refunds idempotent: one of each per order, ever.
  reference text UNIQUE,
  idempotency_key text,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX ledger_user ON ledger (user_id, created_at DESC);
CREATE INDEX ledger_transfer ON ledger (transfer_id) WHERE transfer_id IS NOT NULL;
