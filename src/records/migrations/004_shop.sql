-- The pizza shop: a menu with stock, orders, and each order's checkout saga.

CREATE TABLE menu_items (
  id text PRIMARY KEY CHECK (id ~ '^[a-z0-9-]{1,64}$'),
  name text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('pizza', 'drink')),
  price_cents integer NOT NULL CHECK (price_cents > 0),
  -- Taken only by a guarded UPDATE (stock = stock - qty WHERE stock >= qty); never negative.
  stock integer NOT NULL CHECK (stock >= 0),
  position integer NOT NULL
);

INSERT INTO menu_items (id, name, kind, price_cents, stock, position) VALUES
  ('margherita', 'Margherita', 'pizza', 900, 50, 1),
  ('marinara', 'Marinara', 'pizza', 800, 50, 2),
  ('funghi', 'Funghi', 'pizza', 1100, 40, 3),
  ('diavola', 'Diavola', 'pizza', 1200, 40, 4),
  ('quattro-formaggi', 'Quattro Formaggi', 'pizza', 1300, 30, 5),
  ('capricciosa', 'Capricciosa', 'pizza', 1250, 30, 6),
  ('lemonade', 'Lemonade', 'drink', 350, 80, 7),
  ('chinotto', 'Chinotto', 'drink', 300, 80, 8);

-- An order is a record: a snapshot of the cart lines with the prices of the moment of checkout.
CREATE TABLE orders (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'confirmed', 'cancelled')),
  reason text CHECK (reason IN ('out_of_stock', 'payment_failed')),
  items jsonb NOT NULL,
  total_cents bigint NOT NULL CHECK (total_cents > 0),
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  CHECK ((status = 'cancelled') = (reason IS NOT NULL))
);
CREATE INDEX orders_user ON orders (user_id, created_at DESC);

-- The checkout saga of an order: `state` says which steps are done. Every step locks this row
-- (SELECT ... FOR UPDATE) and acts only when the state is the one it expects, so a step that the
-- queue delivers twice has its effect once.
--   started --reserve--> reserved --charge--> charged --confirm--> confirmed
--   started --reserve (short)--> cancelled (out_of_stock)
--   reserved --charge (refused)--> compensating --compensate--> cancelled (payment_failed)
CREATE TABLE checkout_sagas (
  order_id uuid PRIMARY KEY REFERENCES orders (id) ON DELETE CASCADE,
  state text NOT NULL DEFAULT 'started'
    CHECK (state IN ('started', 'reserved', 'charged', 'compensating', 'confirmed', 'cancelled')),
  reason text CHECK (reason IN ('out_of_stock', 'payment_failed')),
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX checkout_sagas_open ON checkout_sagas (updated_at) WHERE state NOT IN ('confirmed', 'cancelled');

-- One row per step that committed, written in the step's own transaction: the primary key is a
-- second guard (a step can never commit twice) and the log shows which server ran each step.
CREATE TABLE checkout_saga_steps (
  order_id uuid NOT NULL REFERENCES checkout_sagas (order_id) ON DELETE CASCADE,
  step text NOT NULL CHECK (step IN ('reserve', 'charge', 'confirm', 'compensate')),
  outcome text NOT NULL,
  server_id text NOT NULL,
  at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (order_id, step)
);
