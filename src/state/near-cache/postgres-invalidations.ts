import type pg from 'pg';
import type { PgListener } from '../../records/pg-listener.ts';
import type { InvalidationSource } from './near-cache.ts';

/** The NOTIFY channel the state tables' triggers announce changes on. */
export const NEAR_CACHE_CHANNEL = 'statewise_near_cache';

/**
 * Triggers that announce, in the transaction that makes it, every change to what a near cache may
 * hold: a session updated (a touch) or deleted (logout, expiry sweep), and a hash under a
 * registered prefix inserted, updated or deleted. PostgreSQL delivers the NOTIFY at commit, to
 * every listener, so no writer can forget to announce and no reader hears of a change before it
 * is visible. Hashes under other prefixes (carts) announce nothing: they are not cached.
 * Run inside ensurePostgresStateSchema's transaction and lock.
 */
export const NEAR_CACHE_TRIGGERS = `
  CREATE UNLOGGED TABLE IF NOT EXISTS state_near_cached_prefixes (prefix text PRIMARY KEY);
  CREATE OR REPLACE FUNCTION state_session_changed() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    PERFORM pg_notify('${NEAR_CACHE_CHANNEL}', 's:' || OLD.id);
    RETURN NULL;
  END $$;
  CREATE OR REPLACE TRIGGER state_sessions_near_cache AFTER UPDATE OR DELETE ON state_sessions
    FOR EACH ROW EXECUTE FUNCTION state_session_changed();
  CREATE OR REPLACE FUNCTION state_hash_changed() RETURNS trigger LANGUAGE plpgsql AS $$
  DECLARE
    changed text := CASE WHEN TG_OP = 'DELETE' THEN OLD.key ELSE NEW.key END;
  BEGIN
    IF EXISTS (SELECT 1 FROM state_near_cached_prefixes WHERE starts_with(changed, prefix)) THEN
      PERFORM pg_notify('${NEAR_CACHE_CHANNEL}', 'h:' || changed);
    END IF;
    RETURN NULL;
  END $$;
  CREATE OR REPLACE TRIGGER state_hashes_near_cache AFTER INSERT OR UPDATE OR DELETE ON state_hashes
    FOR EACH ROW EXECUTE FUNCTION state_hash_changed();`;

/** Registers hash prefixes whose changes the triggers announce (idempotent). */
export async function registerCachedPrefixes(db: pg.Pool, prefixes: readonly string[]): Promise<void> {
  if (prefixes.length === 0) return;
  await db.query('INSERT INTO state_near_cached_prefixes (prefix) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING', [
    prefixes,
  ]);
}

/**
 * Invalidations by NOTIFY over the process's one LISTEN connection. Its epoch is the listener's: a
 * dropped connection (notifications missed) empties the cache, and nothing is cached until the
 * listener is back and listening.
 */
export class PostgresInvalidations implements InvalidationSource {
  #handler: (keys: readonly string[] | null) => void = () => {};
  #unlisten: (() => Promise<void>) | undefined;

  private constructor(private readonly listener: PgListener) {}

  static async open(listener: PgListener): Promise<PostgresInvalidations> {
    const source = new PostgresInvalidations(listener);
    source.#unlisten = await listener.listen(
      NEAR_CACHE_CHANNEL,
      (payload) => source.#handler([payload]),
      () => source.#handler(null),
    );
    return source;
  }

  get epoch(): number | undefined {
    return this.listener.epoch;
  }

  onInvalidate(handler: (keys: readonly string[] | null) => void): void {
    this.#handler = handler;
  }

  async close(): Promise<void> {
    await this.#unlisten?.();
  }
}
