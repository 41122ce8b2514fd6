import { setTimeout as delay } from 'node:timers/promises';
import type { FastifyBaseLogger } from 'fastify';
import { reportFailure } from '../kernel/periodic.ts';
import type { CheckoutJob, CheckoutQueue } from './checkout-queue.ts';

export const WORKER_SETTINGS = {
  /** Sagas one server drives at once. */
  batchSize: 3,
  /** How often an idle server looks for jobs (a checkout on this server wakes it at once). */
  pollMs: 500,
  /** How long shutdown waits for the sagas in flight before handing them back to the queue. */
  stopTimeoutMs: 6_000,
} as const;

/**
 * Drives checkout sagas on this server: fetches a few jobs, runs each order's saga to its end,
 * completes the job (or fails it back to the queue for a retry), and looks again. Every queue
 * call is awaited and its errors handled here; a job whose completion is lost simply expires and
 * runs again, which the saga's guarded steps make harmless.
 */
export class CheckoutWorker {
  #stopping = false;
  #loop: Promise<void> | undefined;
  #wake: AbortController | undefined;
  /** A wake that came while busy: look again at once instead of resting. */
  #woken = false;
  readonly #inFlight = new Set<string>();

  constructor(
    private readonly queue: CheckoutQueue,
    private readonly drive: (orderId: string) => Promise<unknown>,
    private readonly log: FastifyBaseLogger,
  ) {}

  start(): void {
    this.#loop ??= this.#run();
  }

  /** Looks for jobs now instead of at the next poll (after a checkout on this server committed). */
  wake(): void {
    this.#woken = true;
    this.#wake?.abort();
  }

  /**
   * Stops fetching and waits for the sagas in flight, up to stopTimeoutMs; any still running then
   * go back to the queue (retry on another server). A step cut off by the exit rolls back with its
   * transaction, so the retry runs it again from a consistent state.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.wake();
    const finished = await Promise.race([
      this.#loop?.then(() => true),
      delay(WORKER_SETTINGS.stopTimeoutMs, false, { ref: false }),
    ]);
    if (finished) return;
    for (const jobId of this.#inFlight) {
      await this.queue
        .fail(jobId, 'the server stopped while running it')
        .catch((error: unknown) => reportFailure('checkout queue: hand back a job', error, this.log));
    }
  }

  async #run(): Promise<void> {
    while (!this.#stopping) {
      this.#woken = false;
      let jobs: CheckoutJob[] = [];
      try {
        jobs = await this.queue.fetch(WORKER_SETTINGS.batchSize);
      } catch (error) {
        this.log.warn({ err: error }, 'checkout queue: fetch failed');
      }
      if (jobs.length > 0) {
        await Promise.all(jobs.map((job) => this.#runJob(job)));
        if (jobs.length === WORKER_SETTINGS.batchSize) continue; // more may be waiting
      }
      if (this.#stopping) break;
      if (this.#woken) continue;
      this.#wake = new AbortController();
      await delay(WORKER_SETTINGS.pollMs, undefined, {
        signal: this.#wake.signal,
        ref: false,
      }).catch(() => undefined); // woken early: look for jobs now
      this.#wake = undefined;
    }
  }

  async #runJob(job: CheckoutJob): Promise<void> {
    this.#inFlight.add(job.id);
    try {
      await this.drive(job.orderId);
    } catch (error) {
      this.log.warn({ err: error, orderId: job.orderId }, 'checkout saga step failed; the queue retries it');
      await this.queue
        .fail(job.id, String((error as Error)?.message ?? error))
        .catch((failed: unknown) => reportFailure('checkout queue: fail a job', failed, this.log));
      return;
    } finally {
      this.#inFlight.delete(job.id);
    }
    // If this is lost, the job expires and runs again: every step then finds itself done.
    await this.queue.complete(job.id).catch((error: unknown) => {
      this.log.warn({ err: error, orderId: job.orderId }, 'checkout queue: could not complete a finished job');
    });
  }
}
