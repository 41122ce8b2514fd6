/** Something that can log a warning (a pino logger, or a test's sink). */
export interface WarnLog {
  warn(fields: object, message: string): void;
}

/** Failures of periodic work per task name, since the process started (for /metrics). */
export const periodicFailures = new Map<string, number>();

/**
 * Runs `task` every `everyMs` (an unref'd timer: it never keeps a process alive). A failure is
 * logged with the task's name and counted, never swallowed, and never overlaps the next run.
 * Returns the function that stops it.
 */
export function everyInterval(name: string, everyMs: number, task: () => Promise<unknown>, log: WarnLog): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    task()
      .catch((error: unknown) => reportFailure(name, error, log))
      .finally(() => (running = false));
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** Logs and counts a failure of background work that has no caller to throw to. */
export function reportFailure(name: string, error: unknown, log: WarnLog): void {
  periodicFailures.set(name, (periodicFailures.get(name) ?? 0) + 1);
  log.warn({ err: error, task: name, failures: periodicFailures.get(name) }, `${name} failed`);
}
