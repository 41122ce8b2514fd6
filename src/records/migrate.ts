import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';

import { ADVISORY_LOCKS } from './advisory-locks.ts';
import { withClient } from './pool.ts';

/**
 * The folders of migrations: the records', and those of parts that own their tables. Files are
 * applied in name order across all folders, so a name's number says when it runs.
 */
const MIGRATION_DIRS = [
  fileURLToPath(new URL('./migrations/', import.meta.url)),
  fileURLToPath(new URL('../idempotency/migrations/', import.meta.url)),
];

async function migrationFiles(): Promise<Array<{ name: string; path: string }>> {
  const found = await Promise.all(
    MIGRATION_DIRS.map(async (dir) =>
      (await readdir(dir)).filter((f) => f.endsWith('.sql')).map((name) => ({ name, path: dir + name })),
    ),
  );
  return found.flat().sort((a, b) => (a.name < b.name ? -1 : 1));
}

/**
 * Applies the SQL files of MIGRATION_DIRS in name order, each once, each in its own transaction.
 * Safe when several processes start at once: they queue on an advisory lock.
 */
export async function migrate(pool: pg.Pool): Promise<string[]> {
  const files = await migrationFiles();
  const applied: string[] = [];
  await withClient(pool, async (client) => {
    try {
      await client.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCKS.migrations]);
      await client.query(
        'CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
      );
      const done = new Set(
        (await client.query<{ name: string }>('SELECT name FROM schema_migrations')).rows.map((r) => r.name),
      );
      for (const file of files) {
        if (done.has(file.name)) continue;
        const sql = await readFile(file.path, 'utf8');
        await client.query('BEGIN');
        try {
          await client.query(sql);
          await client.query('INSERT INTO schema_migrations (name) VALUES ($1)', [file.name]);
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK');
          throw new Error(`migration ${file.name} failed: ${(error as Error).message}`, { cause: error });
        }
        applied.push(file.name);
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [ADVISORY_LOCKS.migrations]).catch(() => {});
    }
  });
  return applied;
}
