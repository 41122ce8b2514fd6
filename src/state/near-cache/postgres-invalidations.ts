import type pg from 'pg';
import type { PgListener } from '../../records/pg-listener.ts';
import type { InvalidationSource } from './near-cache.ts';
import { SettleMarkers } from './settle-markers.ts';

/** The NOTIFY channel the state tables' triggers announce changes on. */
export const NEAR_CACHE_CHANNEL = 'statewise_near_cache';
/** Payloads that are settle markers and their answers, not cache keys (those are "s:…" or "h:…"). */
const MARKER = 'm:';
const HEARD = 'a:';

/**
 * Triggers that announce, in the transaction that makes it, every change to what a near cache may
 * hold: a session updated (a touch) or deleted (logout, expiry sweep), and a hash under a
 * registered prefix inserted, updated or deleted. PostgreSQL delivers the NOTIFY at commit, to
 * every listener, so no writer can forget to announce and no reader hears of a change before it
 * is visible. Hashes under other prefixes (carts) announce nothing: they are not cached.
 * Run inside ensurePostgresStateSchema's transaction and lock.
 */
export const NEAR_CACHE_TRIGGERS = `
  -- Logged: a PostgreSQL crash empties an unlogged table, and the revocation markers' changes would
  -- go unannounced until every server restarted.
  CREATE TABLE IF NOT EXISTS state_near_cached_prefixes (prefix text PRIMARY KEY);
  CREATE UNLOGGED TABLE IF NOT EXISTS state_near_cache_listeners (
    pid integer PRIMARY KEY,
    backend_start timestamptz NOT NULL
  );
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

/** The listening connections with a near cache behind them: those whose answer a marker waits for. */
const LIVE_LISTENERS = `
  SELECT count(*)::int AS n FROM state_near_cache_listeners l
    JOIN pg_stat_activity a ON a.pid = l.pid AND a.backend_start = l.backend_start`;

/** This listening connection joins them; rows of connections that are gone are dropped. */
const REGISTER = `
  DELETE FROM state_near_cache_listeners l WHERE NOT EXISTS
    (SELECT 1 FROM pg_stat_activity a WHERE a.pid = l.pid AND a.backend_start = l.backend_start);
  INSERT INTO state_near_cache_listeners SELECT pid, backend_start FROM pg_stat_activity
    WHERE pid = pg_backend_pid()
    ON CONFLICT (pid) DO UPDATE SET backend_start = EXCLUDED.backend_start`;

/**
 * Invalidations by NOTIFY over the process's one LISTEN connection. Its epoch is the listener's: a
 * dropped connection (notifications missed) empties the cache, and nothing is cached until the
 * listener is back and listening.
 *
 * Settling: each listener hears a NOTIFY when its own backend gets to it, so one server hearing
 * a change says nothing of another. A marker is therefore answered by every server with a near
 * cache ("a:" + marker, sent after it has applied every invalidation before the marker), and the
 * writer waits for as many answers as there are such listeners (state_near_cache_listeners, each
 * row checked against pg_stat_activity, so a killed server is not waited for).
 */
export class PostgresInvalidations implements InvalidationSource {
  #handler: (keys: readonly string[] | null) => void = () => {};
  #unlisten: (() => Promise<void>) | undefined;
  readonly #markers = new SettleMarkers();

  private constructor(private readonly listener: PgListener) {}

  static async open(listener: PgListener): Promise<PostgresInvalidations> {
    const source = new PostgresInvalidations(listener);
    source.#unlisten = await listener.listen(
      NEAR_CACHE_CHANNEL,
      (payload) => source.#heard(payload),
      () => {
        source.#markers.releaseAll();
        source.#handler(null);
        source.#register().catch(() => {}); // A new connection, a new pid; a failure drops with it.
      },
    );
    await source.#register();
    return source;
  }

  get epoch(): number | undefined {
    return this.listener.epoch;
  }

  onInvalidate(handler: (keys: readonly string[] | null) => void): void {
    this.#handler = handler;
  }

  settled(): Promise<void> {
    if (this.listener.epoch === undefined) return Promise.resolve();
    return this.#markers.settle(async (marker) => {
      const [sent] = await this.listener.query<{ n: number }>(`SELECT pg_notify($1, $2), (${LIVE_LISTENERS}) AS n`, [
        NEAR_CACHE_CHANNEL,
        MARKER + marker,
      ]);
      return sent!.n;
    });
  }

  /**
   * Stops hearing. Its row stays until the connection ends (the count joins pg_stat_activity):
   * a DELETE here could wait on a database that is gone, and a process closes its listener next.
   */
  async close(): Promise<void> {
    await this.#unlisten?.();
  }

  #heard(payload: string): void {
    if (payload.startsWith(MARKER)) {
      // In order: every invalidation before the marker has been applied by now.
      this.listener.notify(NEAR_CACHE_CHANNEL, HEARD + payload.slice(MARKER.length)).catch(() => {});
    } else if (payload.startsWith(HEARD)) {
      this.#markers.heard(payload.slice(HEARD.length));
    } else {
      this.#handler([payload]);
    }
  }

  async #register(): Promise<void> {
    await this.listener.query(REGISTER);
  }
}
