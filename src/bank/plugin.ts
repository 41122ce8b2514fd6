import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger } from 'fastify';
import fp from 'fastify-plugin';
import type pg from 'pg';
import type { Idempotency } from '../idempotency/idempotency.ts';
import { everyInterval } from '../kernel/periodic.ts';
import type { AtmView } from './atm-view.ts';
import { bankRoutes } from './routes.ts';
import { Ledger } from './ledger.ts';
import type { Payments } from './payments.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** How other parts (the shop's checkout) move money: in their own transaction, idempotent. */
    payments: Payments;
  }
}

export interface BankDeps {
  db: pg.Pool;
  /** What an ATM shows (from the topology): the ledger, or a balance the server remembers. */
  atm: AtmView;
  idempotency: Idempotency;
  config: { idempotencySweepMs: number };
  log: FastifyBaseLogger;
}

/** The bank / ATM: balances and a ledger in PostgreSQL; every money movement idempotent by key. */
export const bankPlugin = fp<BankDeps>(
  async (fastify, { db, atm, idempotency, config, log }) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const ledger = new Ledger(db);
    app.decorate('payments', ledger satisfies Payments);
    const stopSweep = everyInterval('idempotency key sweep', config.idempotencySweepMs, () => idempotency.sweep(), log);
    app.addHook('onClose', async () => stopSweep());
    bankRoutes(app, { ledger, atm, idempotency, auth: app.auth, users: app.accounts.users });
  },
  { name: 'bank', dependencies: ['accounts'], fastify: '5.x' },
);
