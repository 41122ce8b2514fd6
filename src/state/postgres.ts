import pg from 'pg';
import { everyInterval, type WarnLog } from '../kernel/periodic.ts';
import { ADVISORY_LOCKS } from '../records/advisory-locks.ts';
import { PgListener } from '../records/pg-listener.ts';
import { withClient } from '../records/pool.ts';
import { PostgresBus } from './postgres-bus.ts';
import { withNearCache, type NearCacheOptions, type TrackedReads } from './near-cache/cached-store.ts';
import { timedReads, timedStore, type StoreObserver } from './timed-store.ts';
import type { Loaded } from './near-cache/near-cache.ts';
import {
  NEAR_CACHE_TRIGGERS,
  PostgresInvalidations,
  registerCachedPrefixes,
} from './near-cache/postgres-invalidations.ts';
import type { HashStore, KeyStore, SessionId, SessionRecord, SessionStore, StateStore, UserId } from './types.ts';

/**
 * Session state in PostgreSQL. Sessions and hashes (carts, revocation markers, presence) are
 * ordinary tables: an acknowledged write survives a PostgreSQL crash, as the records do. They were
 * UNLOGGED once (no WAL, faster writes), but PostgreSQL empties an unlogged table in its crash
 * recovery: every session signed out, every cart emptied, and every revoked token valid again;
 * test/records/postgres-restart.test.ts SIGKILLs PostgreSQL to show they stay. Only the
 * rate-limit windows (state_keys) stay UNLOGGED: losing one restarts a window, nothing more.
 * A hash is one row with a jsonb document, so every field operation is one atomic UPDATE of one
 * row: concurrent increments of one key serialise on its row lock and none is lost.
 */
export async function ensurePostgresStateSchema(client: pg.ClientBase): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [ADVISORY_LOCKS.stateSchema]);
    await client.query(`
      CREATE TABLE IF NOT EXISTS state_sessions (
        id text PRIMARY KEY,
        user_id text,
        username text,
        created_at bigint NOT NULL,
        last_seen_at bigint NOT NULL,
        absolute_expires_at bigint NOT NULL,
        user_agent text NOT NULL,
        expires_at bigint NOT NULL
      );
      CREATE INDEX IF NOT EXISTS state_sessions_user ON state_sessions (user_id);
      CREATE TABLE IF NOT EXISTS state_hashes (
        key text PRIMARY KEY,
        fields jsonb NOT NULL,
        expires_at bigint
      );
      CREATE UNLOGGED TABLE IF NOT EXISTS state_keys (
        key text PRIMARY KEY,
        value text NOT NULL,
        expires_at bigint NOT NULL
      );`);
    await client.query(NEAR_CACHE_TRIGGERS);
    // Earlier versions made these UNLOGGED: logged from now on (a rewrite of each, once).
    await client.query(`DO $$ DECLARE t text; BEGIN
      FOREACH t IN ARRAY ARRAY['state_sessions', 'state_hashes', 'state_near_cached_prefixes'] LOOP
        IF (SELECT relpersistence FROM pg_class WHERE oid = t::regclass) = 'u' THEN
          EXECUTE format('ALTER TABLE %I SET LOGGED', t);
        END IF;
      END LOOP;
    END $$`);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}

interface SessionRow {
  id: string;
  user_id: string | null;
  username: string | null;
  created_at: string;
  last_seen_at: string;
  absolute_expires_at: string;
  user_agent: string;
}

const SESSION_COLUMNS = 'id, user_id, username, created_at, last_seen_at, absolute_expires_at, user_agent';

const toSession = (row: SessionRow): SessionRecord => ({
  id: row.id as SessionId,
  userId: row.user_id as UserId | null,
  username: row.username,
  createdAt: Number(row.created_at),
  lastSeenAt: Number(row.last_seen_at),
  absoluteExpiresAt: Number(row.absolute_expires_at),
  userAgent: row.user_agent,
});

class PostgresSessions implements SessionStore {
  constructor(private readonly db: pg.Pool) {}

  async create(s: SessionRecord, idleTtlMs: number): Promise<void> {
    await this.db.query({
      name: 'state_session_create',
      text: `INSERT INTO state_sessions (${SESSION_COLUMNS}, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      values: [
        s.id,
        s.userId,
        s.username,
        s.createdAt,
        s.lastSeenAt,
        s.absoluteExpiresAt,
        s.userAgent,
        Date.now() + idleTtlMs,
      ],
    });
  }

  async get(id: SessionId): Promise<SessionRecord | null> {
    const { rows } = await this.db.query<SessionRow>({
      name: 'state_session_get',
      text: `SELECT ${SESSION_COLUMNS} FROM state_sessions WHERE id = $1 AND expires_at > $2`,
      values: [id, Date.now()],
    });
    return rows[0] ? toSession(rows[0]) : null;
  }

  /** get, with the row's expiry: for the near cache, which must not keep it past that. */
  async getWithExpiry(id: SessionId): Promise<Loaded<SessionRecord>> {
    const { rows } = await this.db.query<SessionRow & { expires_at: string }>({
      name: 'state_session_get_with_expiry',
      text: `SELECT ${SESSION_COLUMNS}, expires_at FROM state_sessions WHERE id = $1 AND expires_at > $2`,
      values: [id, Date.now()],
    });
    const row = rows[0];
    return row ? { value: toSession(row), expiresAt: Number(row.expires_at) } : { value: null, expiresAt: null };
  }

  async touch(id: SessionId, lastSeenAt: number, idleTtlMs: number): Promise<boolean> {
    const now = Date.now();
    const { rowCount } = await this.db.query({
      name: 'state_session_touch',
      text: 'UPDATE state_sessions SET last_seen_at = $2, expires_at = $3 WHERE id = $1 AND expires_at > $4',
      values: [id, lastSeenAt, now + idleTtlMs, now],
    });
    return rowCount === 1;
  }

  async destroy(id: SessionId): Promise<boolean> {
    const { rows } = await this.db.query<{ live: boolean }>({
      name: 'state_session_destroy',
      text: 'DELETE FROM state_sessions WHERE id = $1 RETURNING expires_at > $2 AS live',
      values: [id, Date.now()],
    });
    return rows[0]?.live === true;
  }

  async listByUser(userId: UserId): Promise<SessionRecord[]> {
    const { rows } = await this.db.query<SessionRow>(
      `SELECT ${SESSION_COLUMNS} FROM state_sessions WHERE user_id = $1 AND expires_at > $2 ORDER BY created_at, id`,
      [userId, Date.now()],
    );
    return rows.map(toSession);
  }

  async destroyByUser(userId: UserId): Promise<number> {
    const { rows } = await this.db.query<{ live: boolean }>(
      'DELETE FROM state_sessions WHERE user_id = $1 RETURNING expires_at > $2 AS live',
      [userId, Date.now()],
    );
    return rows.filter((r) => r.live).length;
  }
}

/** An expired row counts as absent: writes start it afresh, reads skip it. */
const FRESH = `CASE WHEN state_hashes.expires_at IS NOT NULL AND state_hashes.expires_at <= $5 THEN '{}'::jsonb ELSE state_hashes.fields END`;

class PostgresHashes implements HashStore {
  constructor(private readonly db: pg.Pool) {}

  async getAll(key: string): Promise<Record<string, string>> {
    const { rows } = await this.db.query<{ fields: Record<string, string> }>({
      name: 'state_hash_get_all',
      text: 'SELECT fields FROM state_hashes WHERE key = $1 AND (expires_at IS NULL OR expires_at > $2)',
      values: [key, Date.now()],
    });
    return rows[0]?.fields ?? {};
  }

  /** getAll, with the row's expiry: for the near cache, which must not keep it past that. */
  async getAllWithExpiry(key: string): Promise<Loaded<Record<string, string>>> {
    const { rows } = await this.db.query<{ fields: Record<string, string>; expires_at: string | null }>({
      name: 'state_hash_get_all_with_expiry',
      text: 'SELECT fields, expires_at FROM state_hashes WHERE key = $1 AND (expires_at IS NULL OR expires_at > $2)',
      values: [key, Date.now()],
    });
    const row = rows[0];
    return { value: row?.fields ?? {}, expiresAt: row?.expires_at == null ? null : Number(row.expires_at) };
  }

  async incrBy(key: string, field: string, by: number, ttlMs?: number): Promise<number> {
    return (await this.incrByAndGetAll(key, field, by, ttlMs)).value;
  }

  async incrByAndGetAll(key: string, field: string, by: number, ttlMs?: number) {
    const { rows } = await this.db.query<{ fields: Record<string, string> }>({
      name: 'state_hash_incr',
      text: `INSERT INTO state_hashes AS state_hashes (key, fields, expires_at)
             VALUES ($1, jsonb_build_object($2::text, ($3::bigint)::text), $4)
             ON CONFLICT (key) DO UPDATE SET
               fields = jsonb_set(${FRESH}, ARRAY[$2::text],
                 to_jsonb((coalesce((${FRESH} ->> $2::text)::bigint, 0) + $3::bigint)::text)),
               expires_at = coalesce($4, CASE WHEN state_hashes.expires_at <= $5 THEN NULL ELSE state_hashes.expires_at END)
             RETURNING fields`,
      values: [key, field, by, ttlMs === undefined ? null : Date.now() + ttlMs, Date.now()],
    });
    const fields = rows[0]!.fields;
    return { value: Number(fields[field]), fields };
  }

  async set(key: string, field: string, value: string, ttlMs?: number): Promise<void> {
    await this.db.query({
      name: 'state_hash_set',
      text: `INSERT INTO state_hashes AS state_hashes (key, fields, expires_at)
             VALUES ($1, jsonb_build_object($2::text, $3::text), $4)
             ON CONFLICT (key) DO UPDATE SET
               fields = jsonb_set(${FRESH}, ARRAY[$2::text], to_jsonb($3::text)),
               expires_at = coalesce($4, CASE WHEN state_hashes.expires_at <= $5 THEN NULL ELSE state_hashes.expires_at END)`,
      values: [key, field, value, ttlMs === undefined ? null : Date.now() + ttlMs, Date.now()],
    });
  }

  async deleteField(key: string, field: string): Promise<boolean> {
    const { rowCount } = await this.db.query({
      name: 'state_hash_delete_field',
      text: `UPDATE state_hashes SET fields = fields - $2::text
             WHERE key = $1 AND fields ? $2::text AND (expires_at IS NULL OR expires_at > $3)`,
      values: [key, field, Date.now()],
    });
    return rowCount === 1;
  }

  async delete(key: string): Promise<void> {
    await this.db.query('DELETE FROM state_hashes WHERE key = $1', [key]);
  }
}

class PostgresKeys implements KeyStore {
  constructor(private readonly db: pg.Pool) {}

  async get(key: string): Promise<string | null> {
    const { rows } = await this.db.query<{ value: string }>({
      name: 'state_key_get',
      text: 'SELECT value FROM state_keys WHERE key = $1 AND expires_at > $2',
      values: [key, Date.now()],
    });
    return rows[0]?.value ?? null;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    await this.db.query({
      name: 'state_key_set',
      text: `INSERT INTO state_keys (key, value, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
      values: [key, value, Date.now() + ttlMs],
    });
  }

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    const { rowCount } = await this.db.query({
      name: 'state_key_set_nx',
      text: `INSERT INTO state_keys AS k (key, value, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
             WHERE k.expires_at <= $4`,
      values: [key, value, now + ttlMs, now],
    });
    return rowCount === 1;
  }

  async delete(key: string): Promise<boolean> {
    const { rows } = await this.db.query<{ live: boolean }>(
      'DELETE FROM state_keys WHERE key = $1 RETURNING expires_at > $2 AS live',
      [key, Date.now()],
    );
    return rows[0]?.live === true;
  }

  async hit(key: string, windowMs: number): Promise<{ count: number; resetInMs: number }> {
    const now = Date.now();
    const { rows } = await this.db.query<{ count: string; reset_in: string }>({
      name: 'state_key_hit',
      text: `INSERT INTO state_keys AS k (key, value, expires_at) VALUES ($1, '1', $2::bigint + $3::bigint)
             ON CONFLICT (key) DO UPDATE SET
               value = CASE WHEN k.expires_at <= $2::bigint THEN '1' ELSE (k.value::bigint + 1)::text END,
               expires_at = CASE WHEN k.expires_at <= $2::bigint THEN $2::bigint + $3::bigint ELSE k.expires_at END
             RETURNING value AS count, expires_at - $2::bigint AS reset_in`,
      values: [key, now, windowMs],
    });
    return { count: Number(rows[0]!.count), resetInMs: Number(rows[0]!.reset_in) };
  }
}

export interface PostgresStateOptions {
  connectionString: string;
  /** A pool to share (the records pool); the store then leaves closing it to its owner. */
  pool?: pg.Pool;
  /** The process's LISTEN connection to share; without one the store opens (and closes) its own. */
  listener?: PgListener;
  sweepEveryMs?: number;
  log?: WarnLog;
  nearCache?: NearCacheOptions;
  /** Told the time of every operation that goes to PostgreSQL (timed-store.ts). */
  observe?: StoreObserver;
}

const silent: WarnLog = { warn: () => undefined };

/** Session state in PostgreSQL, with LISTEN/NOTIFY as the bus between servers. */
export async function createPostgresState(options: PostgresStateOptions): Promise<StateStore> {
  const pool = options.pool ?? new pg.Pool({ connectionString: options.connectionString, max: 20 });
  if (!options.pool) pool.on('error', () => {});
  await withClient(pool, (client) => ensurePostgresStateSchema(client));
  const log = options.log ?? silent;
  const listener = options.listener ?? (await PgListener.connect(options.connectionString, log));
  const bus = await PostgresBus.open(listener);
  const stopSweeping = everyInterval(
    'expired session-state sweep',
    options.sweepEveryMs ?? 30_000,
    async () => {
      const now = Date.now();
      for (const table of ['state_sessions', 'state_hashes', 'state_keys']) {
        await pool.query(`DELETE FROM ${table} WHERE expires_at <= $1`, [now]);
      }
    },
    log,
  );
  const sessions = new PostgresSessions(pool);
  const hashes = new PostgresHashes(pool);
  const store: StateStore = {
    kind: 'postgres',
    sessions,
    hashes,
    keys: new PostgresKeys(pool),
    bus,
    sessionsInMemory: () => null,
    nearCacheStats: () => null,
    async ping() {
      await pool.query('SELECT 1');
    },
    async close() {
      stopSweeping();
      await bus.close();
      if (!options.listener) await listener.close();
      if (!options.pool) await pool.end();
    },
  };
  const backend = options.observe ? timedStore(store, options.observe) : store;
  const near = options.nearCache;
  if (!near || near.maxEntries === 0) return backend;
  await registerCachedPrefixes(pool, near.hashPrefixes);
  // Reads need no tracking of their own: the triggers announce every change to every listener.
  const source = await PostgresInvalidations.open(listener);
  const reads: TrackedReads = {
    session: (id) => sessions.getWithExpiry(id),
    hash: (key) => hashes.getAllWithExpiry(key),
  };
  return withNearCache(backend, source, options.observe ? timedReads(reads, options.observe) : reads, near);
}
