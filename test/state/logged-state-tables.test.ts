/**
 * Session state in PostgreSQL lives in ordinary (logged) tables, so an acknowledged write survives
 * PostgreSQL's crash recovery (test/records/postgres-restart.test.ts). A database made by an
 * earlier version holds them UNLOGGED: the schema step turns them logged once, rows kept, and
 * leaves the rate-limit windows (state_keys) unlogged.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { createPool, withClient } from '../../src/records/pool.ts';
import { ensurePostgresStateSchema } from '../../src/state/postgres.ts';
import { freshDatabase } from '../support/postgres.ts';

const persistence = async (db: pg.Pool) =>
  Object.fromEntries(
    (
      await db.query<{ relname: string; relpersistence: string }>(
        `SELECT relname, relpersistence FROM pg_class
          WHERE relname IN ('state_sessions', 'state_hashes', 'state_keys', 'state_near_cached_prefixes')`,
      )
    ).rows.map((r) => [r.relname, r.relpersistence === 'p' ? 'logged' : 'unlogged']),
  );

describe('the postgres session-state tables', () => {
  let db: pg.Pool;
  before(async () => {
    db = createPool(await freshDatabase(), { max: 1 });
  });
  after(() => db?.end());

  it('are logged, but for the rate-limit windows; earlier unlogged ones are turned logged with their rows', async () => {
    // The schema of earlier versions: every table UNLOGGED, with a session in it.
    await db.query(`
      CREATE UNLOGGED TABLE state_sessions (id text PRIMARY KEY, user_id text, username text,
        created_at bigint NOT NULL, last_seen_at bigint NOT NULL, absolute_expires_at bigint NOT NULL,
        user_agent text NOT NULL, expires_at bigint NOT NULL);
      CREATE UNLOGGED TABLE state_hashes (key text PRIMARY KEY, fields jsonb NOT NULL, expires_at bigint);
      CREATE UNLOGGED TABLE state_keys (key text PRIMARY KEY, value text NOT NULL, expires_at bigint NOT NULL);
      CREATE UNLOGGED TABLE state_near_cached_prefixes (prefix text PRIMARY KEY);
      INSERT INTO state_sessions VALUES ('s1', 'u1', 'ann', 1, 1, 2, 'agent', 3);
      INSERT INTO state_hashes VALUES ('cart:u1', '{"pizza": "2"}', NULL);`);
    await withClient(db, (client) => ensurePostgresStateSchema(client));
    assert.deepEqual(await persistence(db), {
      state_sessions: 'logged',
      state_hashes: 'logged',
      state_near_cached_prefixes: 'logged',
      state_keys: 'unlogged',
    });
    assert.equal((await db.query('SELECT username FROM state_sessions')).rows[0].username, 'ann');
    assert.deepEqual((await db.query('SELECT fields FROM state_hashes')).rows[0].fields, { pizza: '2' });
    // Again: nothing to do, nothing refused.
    await withClient(db, (client) => ensurePostgresStateSchema(client));
    assert.equal((await persistence(db)).state_sessions, 'logged');
  });
});
