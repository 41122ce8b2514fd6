/**
 * Migration 008 (room name keys) on a database that already holds rooms: names that are one name
 * by the new rule ("Lobby", "lobby") keep their rows and names, the older one takes the key and the
 * later one a key of its own, so the unique index builds wherever the migration runs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { migrate } from '../../src/records/migrate.ts';
import { createPool } from '../../src/records/pool.ts';
import { freshDatabase } from '../support/postgres.ts';

describe('migration 008: room name keys over existing rooms', () => {
  let db: pg.Pool;
  before(async () => {
    db = createPool(await freshDatabase(), { max: 1 });
    await migrate(db);
  });
  after(() => db?.end());

  it('keys older rooms by lower(name); a later room whose key repeats gets its id appended', async () => {
    // Back to the schema before 008, with rooms it allowed.
    await db.query(`DROP INDEX chat_rooms_name_key; ALTER TABLE chat_rooms DROP COLUMN name_key;
                    CREATE UNIQUE INDEX chat_rooms_name ON chat_rooms (name);
                    DELETE FROM schema_migrations WHERE name = '008_room_name_key.sql'`);
    const { rows } = await db.query<{ id: string; name: string }>(
      `INSERT INTO chat_rooms (name, created_at) VALUES
         ('Lobby', now() - interval '2 minutes'), ('lobby', now() - interval '1 minute'), ('News', now())
       RETURNING id, name`,
    );
    assert.deepEqual(await migrate(db), ['008_room_name_key.sql']);
    const keys = await db.query<{ id: string; name: string; name_key: string }>(
      'SELECT id, name, name_key FROM chat_rooms ORDER BY created_at',
    );
    const later = rows.find((r) => r.name === 'lobby')!;
    assert.deepEqual(
      keys.rows.map((r) => [r.name, r.name_key]),
      [
        ['Lobby', 'lobby'],
        ['lobby', `lobby ${later.id}`],
        ['News', 'news'],
      ],
    );
    await assert.rejects(db.query(`INSERT INTO chat_rooms (name, name_key) VALUES ('LOBBY', 'lobby')`), {
      code: '23505',
    });
  });
});
