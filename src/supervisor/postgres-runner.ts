/**
 * Child process that owns the embedded PostgreSQL. It lives in its own process so that the
 * supervisor decides the shutdown order (app servers first, database last), and so PostgreSQL
 * stops even when the supervisor dies: a closed IPC channel is the signal to stop.
 */
import { startEmbeddedPostgres } from '../records/embedded-postgres.ts';

const dataDir = process.env.SW_PG_DATA_DIR;
const port = Number(process.env.SW_PG_PORT);
if (!dataDir || !Number.isInteger(port)) {
  process.stderr.write('postgres-runner needs SW_PG_DATA_DIR and SW_PG_PORT\n');
  process.exit(2);
}

try {
  const handle = await startEmbeddedPostgres({ dataDir, port });
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= handle.stop().finally(() => process.exit(0));
    return stopping;
  };
  process.on('message', (m: unknown) => {
    if ((m as { type?: string } | null)?.type === 'stop') void stop();
  });
  process.on('disconnect', () => void stop());
  // The supervisor orchestrates shutdown; stray terminal signals must not kill the database early.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => void stop());
  process.send?.({ type: 'ready', url: handle.url });
} catch (error) {
  // The message says why (another statewise on this data directory; PostgreSQL's last log lines).
  // The supervisor forwards each line, and prints those that look like errors.
  process.stderr.write(
    `embedded PostgreSQL failed to start: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
}
