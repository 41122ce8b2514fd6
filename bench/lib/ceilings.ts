import { Redis } from 'ioredis';
import pg from 'pg';

/** Runs `op` from `concurrency` loops for `seconds`; returns operations per second. */
async function loop(seconds: number, concurrency: number, op: () => Promise<unknown>): Promise<number> {
  const warmupEnd = Date.now() + 1000;
  const workers = (until: number) =>
    Array.from({ length: concurrency }, async () => {
      let n = 0;
      while (Date.now() < until) {
        await op();
        n++;
      }
      return n;
    });
  await Promise.all(workers(warmupEnd));
  const started = Date.now();
  const counts = await Promise.all(workers(started + seconds * 1000));
  return Math.round(counts.reduce((a, b) => a + b, 0) / ((Date.now() - started) / 1000));
}

/**
 * The database's ceiling for a money movement: a bare guarded UPDATE through the same driver, on
 * one hot row (`rows` = 1, every update waits for the previous commit) or spread over `rows` rows.
 */
export async function bareUpdateCeiling(
  databaseUrl: string,
  seconds: number,
  concurrency: number,
  rows = 1,
): Promise<number> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: concurrency });
  await pool.query('CREATE TABLE IF NOT EXISTS bench_ceiling (id int PRIMARY KEY, balance bigint NOT NULL)');
  await pool.query(
    'INSERT INTO bench_ceiling SELECT g, 1000000000000 FROM generate_series(1, $1) g ON CONFLICT (id) DO NOTHING',
    [rows],
  );
  let next = 0;
  try {
    return await loop(seconds, concurrency, () =>
      pool.query({
        name: 'ceiling',
        text: 'UPDATE bench_ceiling SET balance = balance - 1 WHERE id = $1 AND balance >= 1',
        values: [(next++ % rows) + 1],
      }),
    );
  } finally {
    await pool.end();
  }
}

/** Redis's ceiling for a cart line update: a bare HINCRBY loop with the same client library. */
export async function bareHincrbyCeiling(redisUrl: string, seconds: number, concurrency: number): Promise<number> {
  const redis = new Redis(redisUrl, { enableAutoPipelining: true });
  try {
    return await loop(seconds, concurrency, () => redis.hincrby('bench:cart', 'margherita', 1));
  } finally {
    redis.disconnect();
  }
}

/** PostgreSQL's ceiling for a cart line update: a bare upsert-increment through the same driver. */
export async function bareUpsertCeiling(databaseUrl: string, seconds: number, concurrency: number): Promise<number> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: concurrency });
  await pool.query(
    'CREATE UNLOGGED TABLE IF NOT EXISTS bench_cart (key text, field text, value bigint, PRIMARY KEY (key, field))',
  );
  try {
    return await loop(seconds, concurrency, () =>
      pool.query({
        name: 'ceiling-cart',
        text: `INSERT INTO bench_cart VALUES ('cart', 'margherita', 1)
               ON CONFLICT (key, field) DO UPDATE SET value = bench_cart.value + 1`,
        values: [],
      }),
    );
  } finally {
    await pool.end();
  }
}
