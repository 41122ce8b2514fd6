/**
 * WAIT for the durable writes of one Redis connection (a logout, a revocation): the write is
 * acknowledged only once `replicas` replicas have it, so no failover can undo it.
 *
 * WAIT blocks the connection it runs on, the one every request of the server shares, so:
 *   - At most one WAIT is in flight. Callers that come while one is out share the next one (sent
 *     when the first returns, it covers every write sent before it): like group commit, a burst of
 *     logouts costs two WAITs, not one each. Measured before this (bench/sentinel-failover.ts):
 *     the ~70 logouts queued during a failover each sent their WAIT to a primary left without a
 *     replica, 500 ms apiece, and every request of the server waited behind them for 14 s and more.
 *   - A WAIT that came back short pauses the waiting for `pauseMs` (the writes stand on the primary
 *     alone meanwhile, as after a timeout, and onShort says so): one stall per pause, not per logout.
 */
export interface ReplicaWaitOptions {
  /** Sends WAIT on the shared connection; resolves with the replicas that acknowledged. */
  wait(replicas: number, timeoutMs: number): Promise<number>;
  replicas: number;
  timeoutMs: number;
  pauseMs: number;
  /** A write stood on the primary alone: `acked` replicas had it (-1: not waited for, paused). */
  onShort?: (acked: number) => void;
  now?: () => number;
}

export class ReplicaWait {
  #inFlight: Promise<number> | null = null;
  #next: Promise<number> | null = null;
  #pausedUntil = 0;
  readonly #now: () => number;

  constructor(private readonly options: ReplicaWaitOptions) {
    this.#now = options.now ?? Date.now;
  }

  /** Resolves once the writes this connection sent so far are on enough replicas, or were let stand. */
  async replicated(): Promise<void> {
    const { replicas, onShort } = this.options;
    if (this.#now() < this.#pausedUntil) return onShort?.(-1);
    const acked = await this.#shared();
    if (acked >= replicas) return;
    onShort?.(acked);
  }

  /** The WAIT this caller's writes are covered by: the next one to be sent. */
  #shared(): Promise<number> {
    if (!this.#inFlight) return this.#send();
    this.#next ??= this.#inFlight.then(
      () => this.#afterInFlight(),
      () => this.#afterInFlight(),
    );
    return this.#next;
  }

  #afterInFlight(): Promise<number> {
    this.#next = null;
    // The WAIT just back came back short: those who waited for the next one are let go too.
    if (this.#now() < this.#pausedUntil) return Promise.resolve(-1);
    return this.#send();
  }

  #send(): Promise<number> {
    const { replicas, timeoutMs, pauseMs } = this.options;
    const sent = this.options.wait(replicas, timeoutMs).then((acked) => {
      if (acked < replicas) this.#pausedUntil = this.#now() + pauseMs;
      return acked;
    });
    this.#inFlight = sent;
    const clear = () => {
      if (this.#inFlight === sent) this.#inFlight = null;
    };
    sent.then(clear, clear);
    return sent;
  }
}
