import { setTimeout as delay } from 'node:timers/promises';

/**
 * Readiness and graceful shutdown, in the order the articles and Kubernetes want:
 * readiness goes false, the balancer stops sending, the listener closes, in-flight work drains,
 * stores close, the process exits. Steps run in registration order within each phase.
 */
export class Lifecycle {
  #draining = false;
  #closing: Promise<void> | undefined;
  readonly #steps: Array<{ phase: 'drain' | 'close'; name: string; run: () => Promise<unknown> }> = [];

  get draining(): boolean {
    return this.#draining;
  }

  /** Work that stops taking new requests and waits for in-flight ones (listeners, sockets). */
  onDrain(name: string, run: () => Promise<unknown>): void {
    this.#steps.push({ phase: 'drain', name, run });
  }

  /** Resources to release after draining (stores, pools). */
  onClose(name: string, run: () => Promise<unknown>): void {
    this.#steps.push({ phase: 'close', name, run });
  }

  shutdown(options: { drainDelayMs: number; graceMs: number; log: (msg: string) => void }): Promise<void> {
    this.#closing ??= (async () => {
      this.#draining = true;
      options.log('draining: readiness is now false');
      if (options.drainDelayMs > 0) await delay(options.drainDelayMs);
      let running = '';
      const force = setTimeout(() => {
        // Which step held the exit up: the one to look at when stops take the whole grace period.
        options.log(
          `grace period of ${options.graceMs} ms is over while "${running}" ran; exiting with work in flight`,
        );
        process.exit(1);
      }, options.graceMs);
      force.unref();
      for (const phase of ['drain', 'close'] as const) {
        for (const step of this.#steps.filter((s) => s.phase === phase)) {
          running = step.name;
          await step.run().catch((error: unknown) => options.log(`${step.name} failed to close: ${String(error)}`));
        }
      }
      clearTimeout(force);
    })();
    return this.#closing;
  }
}
