import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from '../../src/records/embedded-postgres.ts';
import { freePort } from '../../src/kernel/free-port.ts';

/**
 * Real PostgreSQL for tests. `npm test` (scripts/test.ts) starts one embedded cluster for the whole
 * run and passes its admin URL in STATEWISE_TEST_PG_URL; a test file run on its own starts its own.
 * Each call of `freshDatabase` creates an empty database, so test files never see each other's rows.
 */
let adminUrl: Promise<string> | undefined;

function cluster(): Promise<string> {
  adminUrl ??= (async () => {
    if (process.env.STATEWISE_TEST_PG_URL) return process.env.STATEWISE_TEST_PG_URL;
    const dataDir = await mkdtemp(join(tmpdir(), 'statewise-test-pg-'));
    const handle = await startEmbeddedPostgres({ dataDir, port: await freePort() });
    handle.stopOnExit();
    process.env.STATEWISE_TEST_PG_URL = handle.url;
    return handle.url;
  })();
  return adminUrl;
}

export async function freshDatabase(): Promise<string> {
  const url = await cluster();
  const name = `t_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client(url);
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const dbUrl = new URL(url);
  dbUrl.pathname = `/${name}`;
  return dbUrl.toString();
}
