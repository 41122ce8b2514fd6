import type { FastifyBaseLogger } from 'fastify';
import PgBoss from 'pg-boss';
import type pg from 'pg';
import { ADVISORY_LOCKS } from '../records/advisory-locks.ts';
import { withClient } from '../records/pool.ts';
import { retryOnSqlState } from '../records/retry.ts';

const QUEUE = 'checkout';

/**
 * Queue timings. A server SIGKILLed mid-saga leaves its jobs `active`; once `expireInSeconds` have
 * passed, the next maintenance pass (every `maintenanceIntervalSeconds`, run by whichever server's
 * turn it is) moves them back to `retry`, and any server takes them `retryDelaySeconds` later:
 * about 11 s at worst. The saga's steps are guarded, so a job that expires while its first run is
 * merely slow, and so runs twice, still has every effect once.
 */
export const QUEUE_TIMINGS = {
  expireInSeconds: 8,
  maintenanceIntervalSeconds: 2,
  retryDelaySeconds: 1,
  /** Effectively "until it works" (about 3 hours of 1 s retries); a step only fails while PostgreSQL does. */
  retryLimit: 10_000,
} as const;

export interface CheckoutJob {
  id: string;
  orderId: string;
}

/**
 * The durable queue of checkout sagas: pg-boss 10 on the same PostgreSQL as the orders, with its
 * own small pool per app server. A job is sent in the checkout's own transaction (`send(..., { db })`
 * on that transaction's client), so it exists if and only if the order does: no outbox, no relay.
 * The job id is the order id, so sending one twice is a no-op. pg-boss fetches with FOR UPDATE
 * SKIP LOCKED (each job to one server at a time) and its maintenance re-queues expired jobs.
 *
 * pg-boss's own `work()` loop is not used: it completes jobs without awaiting the promise, so a
 * database blip at that moment is an unhandled rejection, which ends the Node process. The worker
 * (checkout-worker.ts) fetches, completes and fails jobs itself and handles every error.
 */
export class CheckoutQueue {
  readonly #boss: PgBoss;

  constructor(
    databaseUrl: string,
    serverId: string,
    private readonly log: FastifyBaseLogger,
  ) {
    this.#boss = new PgBoss({
      connectionString: databaseUrl,
      application_name: `statewise-${serverId}-checkout`,
      max: 3,
      schedule: false,
      supervise: true,
      migrate: true,
      maintenanceIntervalSeconds: QUEUE_TIMINGS.maintenanceIntervalSeconds,
    });
    // pg-boss reports maintenance failures (e.g. the database restarting) as events.
    this.#boss.on('error', (error) => this.log.warn({ err: error }, 'checkout queue error'));
  }

  /** Installs or checks pg-boss's schema and creates the queue. */
  async start(db: pg.Pool): Promise<void> {
    await this.#boss.start();
    // A deadlock with another server's pg-boss maintenance: try again, creating is idempotent.
    await retryOnSqlState(() => this.#createQueue(db), { states: new Set(['40P01']) });
  }

  /** Adds the order's job in the caller's transaction: it commits with the order or not at all. */
  async enqueue(tx: pg.PoolClient, orderId: string): Promise<void> {
    const id = await this.#boss.send(
      QUEUE,
      { orderId },
      {
        id: orderId,
        retryLimit: QUEUE_TIMINGS.retryLimit,
        retryDelay: QUEUE_TIMINGS.retryDelaySeconds,
        expireInSeconds: QUEUE_TIMINGS.expireInSeconds,
        db: { executeSql: (text, values) => tx.query(text, values) },
      },
    );
    if (id === null) throw new Error(`the checkout queue refused the job of order ${orderId}`);
  }

  /** Takes up to `count` jobs (they become `active`; none when the database cannot be reached). */
  async fetch(count: number): Promise<CheckoutJob[]> {
    const jobs = await this.#boss.fetch<{ orderId: string }>(QUEUE, { batchSize: count });
    return jobs.map((job) => ({ id: job.id, orderId: job.data.orderId }));
  }

  async complete(jobId: string): Promise<void> {
    await this.#boss.complete(QUEUE, jobId);
  }

  /** Hands the job back: `retry` after retryDelaySeconds, on any server. */
  async fail(jobId: string, reason: string): Promise<void> {
    await this.#boss.fail(QUEUE, jobId, { message: reason });
  }

  /** Stops maintenance and closes the pool. Stop the worker first. */
  stop(): Promise<void> {
    return this.#boss.stop({ graceful: false, close: true });
  }

  /**
   * pg-boss 10's createQueue inserts a row and attaches a partition (DDL); servers starting at once
   * on a fresh database deadlock on that. So one server at a time creates it, under an advisory
   * lock, and a queue that exists already (every later start) is left alone.
   */
  async #createQueue(db: pg.Pool): Promise<void> {
    if (await this.#boss.getQueue(QUEUE)) return;
    await withClient(db, async (client) => {
      try {
        await client.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCKS.checkoutQueue]);
        if (!(await this.#boss.getQueue(QUEUE))) {
          await this.#boss.createQueue(QUEUE, {
            name: QUEUE,
            policy: 'standard',
            retryLimit: QUEUE_TIMINGS.retryLimit,
            retryDelay: QUEUE_TIMINGS.retryDelaySeconds,
            retryBackoff: false,
            expireInSeconds: QUEUE_TIMINGS.expireInSeconds,
          });
        }
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [ADVISORY_LOCKS.checkoutQueue]).catch(() => {});
      }
    });
  }
}
