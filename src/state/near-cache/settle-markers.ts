import { randomBytes } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';

/** Long enough for any announcement on a live connection; a logout never waits longer than this. */
const MARKER_TIMEOUT_MS = 1000;

interface Waiting {
  heard: number;
  /** How many times it must be heard; unknown until the marker is sent (answers may come first). */
  expected: number;
  done(): void;
}

/**
 * "Has everything this process changed been announced?" A store answers a write before it has
 * delivered the write's invalidation to the other servers (PostgreSQL sends the NOTIFY after the
 * COMMIT's answer; Redis pushes on another connection), so a client told "logged out" could reach
 * another server that has not heard yet. The answer: after the write, this process sends a marker
 * down the same ordered stream the invalidations travel, and waits for it to come back (Redis),
 * or for every server to say it heard it (PostgreSQL, whose listeners hear at their own pace).
 * Only writes that must be seen at once wait: a logout, a revocation.
 */
export class SettleMarkers {
  /** This process's own markers, told from another process's. */
  readonly #prefix = `${randomBytes(6).toString('hex')}.`;
  readonly #waiting = new Map<string, Waiting>();
  #next = 0;

  /**
   * Sends a marker with `send`, which resolves to how many times it must be heard, and resolves
   * once it has been, the stream is lost, or a second passed (a server that hangs; the write is
   * done, and only the answer waited).
   */
  async settle(send: (marker: string) => Promise<number>): Promise<void> {
    const marker = `${this.#prefix}${this.#next++}`;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => waiting.done(), MARKER_TIMEOUT_MS).unref();
      const waiting: Waiting = {
        heard: 0,
        expected: Number.POSITIVE_INFINITY,
        done: () => {
          clearTimeout(timer);
          this.#waiting.delete(marker);
          resolve();
        },
      };
      this.#waiting.set(marker, waiting);
      send(marker).then(
        (expected) => {
          waiting.expected = expected;
          if (waiting.heard >= expected) waiting.done();
        },
        () => waiting.done(),
      );
    });
    // One turn more: another connection's data that arrived with the marker is read first.
    await nextTurn();
  }

  /** A marker came back (once per server that heard it); another process's, or a late one, is ignored. */
  heard(marker: string): void {
    const waiting = this.#waiting.get(marker);
    if (waiting && ++waiting.heard >= waiting.expected) waiting.done();
  }

  /** The stream was lost: nothing more will come back on it, and the cache is empty anyway. */
  releaseAll(): void {
    for (const waiting of [...this.#waiting.values()]) waiting.done();
  }
}
