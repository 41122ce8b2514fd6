import pg from 'pg';

/** The PostgreSQL pool for records. Errors on idle clients are reported, never fatal. */
export function createPool(
  connectionString: string,
  options: { max?: number; onError?: (e: Error) => void; applicationName?: string } = {},
): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? 20,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    application_name: options.applicationName ?? 'statewise',
  });
  pool.on('error', options.onError ?? (() => undefined));
  return pool;
}

/**
 * Runs `work` on a client checked out of the pool, and gives it back. A checked-out client has no
 * 'error' listener of the pool's, so a connection that dies while out (PostgreSQL restarting, the
 * network) between two queries would be an unhandled 'error' event, which ends the process; here
 * it is heard, the work's next query fails instead, and the client is dropped, not reused. `work`
 * may mark the client broken itself (`discard`).
 */
export async function withClient<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient, discard: (error: Error) => void) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const discard = (error: Error) => void (broken ??= error);
  client.on('error', discard);
  try {
    return await work(client, discard);
  } finally {
    client.off('error', discard);
    client.release(broken);
  }
}

/** What a transaction's work may use besides its client. */
export interface TransactionControl {
  /** The results of the statements sent with BEGIN (`options.prelude`), in order; BEGIN's first. */
  readonly preludeResults: readonly pg.QueryResult[];
  /**
   * Sends `sql` and COMMIT in one round trip. The row locks the work took are held until COMMIT,
   * so on a busy row every round trip saved there is time the next transaction does not wait.
   */
  commitWith(sql: string): Promise<void>;
}

/**
 * Runs `work` in a transaction on one client and commits; rolls back when it throws. `prelude`
 * (statements separated by `;`, simple protocol: literals only) is sent with BEGIN in one round trip.
 */
export async function inTransaction<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient, control: TransactionControl) => Promise<T>,
  options: { prelude?: string } = {},
): Promise<T> {
  return withClient(pool, async (client, discard) => {
    let committed = false;
    try {
      const begun = await client.query(options.prelude ? `BEGIN; ${options.prelude}` : 'BEGIN');
      const control: TransactionControl = {
        preludeResults: Array.isArray(begun) ? (begun as pg.QueryResult[]) : [begun],
        async commitWith(sql) {
          await client.query(`${sql}; COMMIT`);
          committed = true;
        },
      };
      const result = await work(client, control);
      if (!committed) await client.query('COMMIT');
      return result;
    } catch (error) {
      // A client whose ROLLBACK failed is in an unknown state: the pool drops it instead of reusing it.
      await client.query('ROLLBACK').catch(discard);
      throw error;
    }
  });
}
