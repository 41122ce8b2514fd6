/**
 * `npm test`: starts one embedded PostgreSQL for the run (test files create their own databases in
 * it), then runs every *.test.ts under src/ and test/ with node's test runner.
 * Pass file paths to run only those: `npm test -- test/e2e/failover.test.ts`.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { startEmbeddedPostgres } from '../src/records/embedded-postgres.ts';
import { freePort } from '../src/kernel/free-port.ts';

async function findTests(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.test.ts'))
    .map((e) => relative(process.cwd(), join(e.parentPath, e.name)))
    .sort();
}

// Flags (e.g. --test-name-pattern=...) go to node before the files; no file named means every test.
const args = process.argv.slice(2);
const flags = args.filter((arg) => arg.startsWith('--'));
const named = args.filter((arg) => !arg.startsWith('--'));
const files = named.length > 0 ? named : [...(await findTests('src')), ...(await findTests('test'))];

const dataDir = await mkdtemp(join(tmpdir(), 'statewise-test-pg-'));
const pg = await startEmbeddedPostgres({ dataDir, port: await freePort() });

const concurrency = process.env.STATEWISE_TEST_CONCURRENCY ?? '2';
// Every test has a time bound: one that hangs fails after this, instead of holding the run. The
// bound covers a whole file too: the lab's fault experiments (four experiments, each with its own
// clusters) take 55 s alone and 108 s beside other files in CI, so 120 s cut them off now and then.
const timeoutMs = process.env.STATEWISE_TEST_TIMEOUT_MS ?? '180000';
const testArgs = ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, `--test-timeout=${timeoutMs}`];
const child = spawn(process.execPath, [...testArgs, ...flags, ...files], {
  stdio: 'inherit',
  env: { ...process.env, STATEWISE_TEST_PG_URL: pg.url },
});
const forward = (signal: NodeJS.Signals) => child.kill(signal);
process.on('SIGINT', forward);
process.on('SIGTERM', forward);
const code: number = await new Promise((resolve) => child.on('exit', (c, s) => resolve(c ?? (s ? 1 : 0))));
await pg.stop();
await rm(dataDir, { recursive: true, force: true });
process.exit(code);
