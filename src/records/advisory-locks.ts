/**
 * Every PostgreSQL advisory lock id statewise takes, in one place so two parts never pick the same
 * number by accident. Any process that takes one of these serialises with every other that does.
 */
export const ADVISORY_LOCKS = {
  /** Applying migrations (src/records/migrate.ts). */
  migrations: 7_301_001,
  /** Creating, rotating and removing JWT signing keys. */
  signingKeys: 7_301_002,
  /** Creating the session-state tables of the postgres backend. */
  stateSchema: 7_301_003,
  /** Creating the pg-boss checkout queue (its DDL deadlocks when servers start at once). */
  checkoutQueue: 7_301_104,
} as const;
