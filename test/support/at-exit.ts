/**
 * Clean-ups that must run however a test process ends: at exit, and on the SIGTERM the test
 * runner sends a file that timed out (or a Ctrl-C), which skip 'exit' handlers. One set of process
 * hooks for every support module (Redis nodes, network namespaces): each signal runs every
 * clean-up once, then is raised again so the process ends as it would have.
 */
const cleanups = new Set<() => void>();
let hooked = false;

const runAll = () => {
  for (const cleanup of cleanups) cleanup();
  cleanups.clear();
};

/** Runs `cleanup` (synchronous: at exit nothing else runs) when the process ends. */
export function atExit(cleanup: () => void): void {
  cleanups.add(cleanup);
  if (hooked) return;
  hooked = true;
  process.once('exit', runAll);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      runAll();
      process.kill(process.pid, signal);
    });
  }
}
