import { newKeyEncryptionKey } from '../../src/accounts/tokens/key-encryption.ts';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { forkTs, waitForExit, waitForMessage } from '../../src/supervisor/child-process.ts';
import { startEmbeddedPostgres } from '../../src/records/embedded-postgres.ts';
import { freePort } from '../../src/kernel/free-port.ts';
import { startRedisProcess } from '../../src/supervisor/redis-process.ts';
import { migrate } from '../../src/records/migrate.ts';
import { createPool } from '../../src/records/pool.ts';
import { ensurePostgresStateSchema } from '../../src/state/postgres.ts';

export interface Measurement {
  name: string;
  requestsPerSecond: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

export const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
export const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
export const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);

/** Loads `url` with autocannon: a short warm-up, then the measured run. */
export async function load(
  name: string,
  url: string,
  headers: Record<string, string> = {},
  options: { method?: string; body?: string; requests?: autocannon.Request[] } = {},
): Promise<Measurement> {
  const common: autocannon.Options = { url, headers, connections: CONNECTIONS, pipelining: 1 };
  if (options.method) common.method = options.method as 'POST';
  if (options.body !== undefined) common.body = options.body;
  if (options.requests) common.requests = options.requests;
  await autocannon({ ...common, duration: 1 });
  const result = await autocannon({ ...common, duration: SECONDS });
  const m: Measurement = {
    name,
    requestsPerSecond: Math.round(result.requests.average),
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
  process.stderr.write(
    `  ${name}: ${m.requestsPerSecond} req/s, p50 ${m.p50} ms, p99 ${m.p99} ms, non-2xx ${m.non2xx}, errors ${m.errors}\n`,
  );
  return m;
}

/** Starts a TypeScript entry as a child process and waits for its `listening` message. */
export async function startProcess(
  path: string,
  env: NodeJS.ProcessEnv,
): Promise<{ url: string; child: ChildProcess; stop(): Promise<void> }> {
  const child = forkTs(path, env, (line) => {
    if (/error|fatal/i.test(line)) process.stderr.write(`    [${path.split('/').pop()}] ${line}\n`);
  });
  const { port } = await waitForMessage<{ type: 'listening'; port: number }>(child, 'listening', 30_000);
  return {
    url: `http://127.0.0.1:${port}`,
    child,
    async stop() {
      child.kill('SIGKILL');
      await waitForExit(child);
    },
  };
}

/** Real PostgreSQL (embedded, migrated) and a real redis-server for one bench run. */
export async function startInfrastructure() {
  // The servers' signing keys are sealed with it; forkTs passes this process's environment on.
  process.env.SW_KEY_ENCRYPTION_KEY ??= newKeyEncryptionKey();
  const dir = await mkdtemp(join(tmpdir(), 'statewise-bench-'));
  const pg = await startEmbeddedPostgres({ dataDir: join(dir, 'pg'), port: await freePort() });
  const redis = await startRedisProcess();
  const pool = createPool(pg.url, { max: 2 });
  await migrate(pool);
  const client = await pool.connect();
  await ensurePostgresStateSchema(client);
  client.release();
  await pool.end();
  return {
    databaseUrl: pg.url,
    redisUrl: redis.url,
    async stop() {
      await redis.stop();
      await pg.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The password the benches register their users with. */
export const BENCH_PASSWORD = 'a long bench password';
/** JSON requests from the benches' own User-Agent (sessions are bound to it). */
export const BENCH_JSON = { 'content-type': 'application/json', 'user-agent': 'bench' };

/** Registers `username` on an app server; returns its session cookie (`name=value`). */
export async function registerSession(serverUrl: string, username: string): Promise<string> {
  const registered = await fetch(`${serverUrl}/api/auth/register`, {
    method: 'POST',
    headers: BENCH_JSON,
    body: JSON.stringify({ username, password: BENCH_PASSWORD }),
  });
  if (registered.status !== 201)
    throw new Error(`register ${username}: ${registered.status} ${await registered.text()}`);
  return registered.headers.getSetCookie()[0]!.split(';')[0]!;
}

export function ratio(a: number, b: number): string {
  return b === 0 ? 'n/a' : (a / b).toFixed(2);
}

export function table(rows: Measurement[]): string {
  const lines = ['| target | req/s | p50 ms | p99 ms | non-2xx | errors |', '|---|---:|---:|---:|---:|---:|'];
  for (const r of rows)
    lines.push(`| ${r.name} | ${r.requestsPerSecond} | ${r.p50} | ${r.p99} | ${r.non2xx} | ${r.errors} |`);
  return lines.join('\n');
}

/** The run with the median throughput. */
export function median(runs: Measurement[]): Measurement {
  const sorted = [...runs].sort((a, b) => a.requestsPerSecond - b.requestsPerSecond);
  return sorted[Math.floor(sorted.length / 2)]!;
}
