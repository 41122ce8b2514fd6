/**
 * `npm run bench:logout-wait`: what WAIT costs a logout in normal running. On a live Sentinel
 * setup (a primary, a replica, three sentinels; test/support/redis-sentinel.ts), two session
 * stores built as app servers build them, one whose logouts WAIT for 1 replica (the default with
 * replicas, SW_REDIS_WAIT_REPLICAS=1) and one that does not (0): the time of a logout (a session
 * destroyed), one at a time and 64 at once, in interleaved rounds. Writes
 * bench/results/logout-wait.md.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import type { SessionId, UserId } from '../src/kernel/ids.ts';
import { createRedisState } from '../src/state/redis.ts';
import type { StateStore } from '../src/state/types.ts';
import { startSentinelSetup } from '../test/support/redis-sentinel.ts';

const LOGOUTS = Number(process.env.BENCH_LOGOUTS ?? 2_000);
const ROUNDS = 3;
const CONCURRENCY = 64;

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.ceil((p / 100) * xs.length) - 1]!;
const median = (xs: number[]) => percentile(xs, 50);

async function sessions(state: StateStore, n: number): Promise<SessionId[]> {
  const ids = Array.from({ length: n }, () => randomUUID() as SessionId);
  const now = Date.now();
  for (const id of ids) {
    await state.sessions.create(
      {
        id,
        userId: randomUUID() as UserId,
        username: 'bench',
        createdAt: now,
        lastSeenAt: now,
        absoluteExpiresAt: now + 3_600_000,
        userAgent: 'bench',
      },
      600_000,
    );
  }
  return ids;
}

/** Each logout's time in ms, `lanes` at a time; and the logouts per second over the whole batch. */
async function logouts(state: StateStore, ids: SessionId[], lanes: number) {
  const times: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (next < ids.length) {
        const id = ids[next++]!;
        const t = performance.now();
        await state.sessions.destroy(id);
        times.push(performance.now() - t);
      }
    }),
  );
  return { times, perSecond: ids.length / ((performance.now() - started) / 1000) };
}

const setup = await startSentinelSetup();
const store = (replicas: number) =>
  createRedisState({ url: setup.url, durable: { replicas, timeoutMs: 500, hashPrefixes: [] } });
const stores = { 'WAIT for 1 replica': await store(1), 'no WAIT': await store(0) };
type Row = { p50: number; p99: number; perSecond: number };
const results = new Map<string, Row[]>();
try {
  for (let round = 1; round <= ROUNDS; round++) {
    for (const lanes of [1, CONCURRENCY]) {
      for (const [name, state] of Object.entries(stores)) {
        const ids = await sessions(state, LOGOUTS);
        const { times, perSecond } = await logouts(state, ids, lanes);
        const key = `${name}, ${lanes === 1 ? 'one at a time' : `${lanes} at once`}`;
        const row = { p50: median(times), p99: percentile(times, 99), perSecond };
        results.set(key, [...(results.get(key) ?? []), row]);
        console.log(
          `round ${round}: ${key}: p50 ${row.p50.toFixed(2)} ms, p99 ${row.p99.toFixed(2)} ms, ${row.perSecond.toFixed(0)}/s`,
        );
      }
    }
  }
} finally {
  await Promise.all(Object.values(stores).map((s) => s.close()));
  await setup.stop();
}

const mid = (rows: Row[], f: (r: Row) => number) => median(rows.map(f));
const lines = [
  `# What WAIT costs a logout, ${new Date().toISOString()}`,
  '',
  `Machine: ${cpus().length} cores (${cpus()[0]?.model.trim()}); node ${process.version}. A Redis primary, one replica and`,
  `three sentinels on this machine; ${LOGOUTS} logouts (session destroys) per row, median of ${ROUNDS} interleaved rounds.`,
  'WAIT runs on the connection every request shares, at most one in flight: logouts that arrive while one',
  'is out share the next (src/state/replica-wait.ts).',
  '',
  '| logouts | p50 ms | p99 ms | logouts/s |',
  '|---|---:|---:|---:|',
  ...[...results].map(
    ([key, rows]) =>
      `| ${key} | ${mid(rows, (r) => r.p50).toFixed(2)} | ${mid(rows, (r) => r.p99).toFixed(2)} | ${mid(rows, (r) => r.perSecond).toFixed(0)} |`,
  ),
  '',
];
await mkdir('bench/results', { recursive: true });
await writeFile('bench/results/logout-wait.md', lines.join('\n'));
console.log(lines.join('\n'));
process.exit(0);
