/**
 * Issue 10 bench: how long a server's near cache keeps answering a session after another server
 * logged it out. Two stores on one backend stand for two servers (A writes, B reads through its
 * cache); for each of 1,000 sessions B reads it twice (cached), A destroys it, and B is asked
 * again until it answers null: the time from A's acknowledgement to B's refusal (0 when B refuses
 * on the first ask, as it must), and how long A took to acknowledge (the write, and the wait for
 * every server to have heard: settle-markers.ts). The same for a log out everywhere (the
 * revocation marker of access tokens, a near-cached hash).
 * `npm run bench:near-cache` (BENCH_LOGOUTS, default 1000).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus } from 'node:os';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { TOKEN_GENERATION_PREFIX, tokenGenerationKey } from '../src/accounts/tokens/access-tokens.ts';
import type { SessionId, UserId } from '../src/kernel/ids.ts';
import { createPostgresState } from '../src/state/postgres.ts';
import { createRedisState } from '../src/state/redis.ts';
import type { StateStore } from '../src/state/types.ts';
import { startInfrastructure } from './lib/harness.ts';

const LOGOUTS = Number(process.env.BENCH_LOGOUTS ?? 1000);
const NEAR_CACHE = { maxEntries: 100_000, hashPrefixes: [TOKEN_GENERATION_PREFIX] };

interface Figures {
  name: string;
  p50: number;
  p99: number;
  max: number;
  /** A's write, from call to acknowledgement. */
  ackP50: number;
  ackP99: number;
  /** Changes B still answered with the old value at least once after A's acknowledgement. */
  staleAfterAck: number;
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;

/** Asks `stillOld` until it says no; returns ms since `since` and how many times it said yes. */
async function untilRefused(since: number, stillOld: () => Promise<boolean>): Promise<[number, number]> {
  let stale = 0;
  while (await stillOld()) {
    stale++;
    await yieldToLoop();
  }
  return [performance.now() - since, stale];
}

async function measure(name: string, a: StateStore, b: StateStore): Promise<Figures[]> {
  const logout: number[] = [];
  const revoke: number[] = [];
  const logoutAck: number[] = [];
  const revokeAck: number[] = [];
  let staleLogout = 0;
  let staleRevoke = 0;
  for (let i = 0; i < LOGOUTS; i++) {
    const now = Date.now();
    const id = `bench-${name}-${i}-${now}` as SessionId;
    const userId = `bench-user-${name}-${i}` as UserId;
    await a.sessions.create(
      {
        id,
        userId,
        username: 'bench',
        createdAt: now,
        lastSeenAt: now,
        absoluteExpiresAt: now + 600_000,
        userAgent: 'bench',
      },
      600_000,
    );
    await b.sessions.get(id);
    await b.sessions.get(id);
    const destroying = performance.now();
    await a.sessions.destroy(id);
    logoutAck.push(performance.now() - destroying);
    const [ms, stale] = await untilRefused(performance.now(), async () => (await b.sessions.get(id)) !== null);
    logout.push(ms);
    staleLogout += stale > 0 ? 1 : 0;

    const key = tokenGenerationKey(userId);
    await b.hashes.getAll(key);
    await b.hashes.getAll(key);
    const revoking = performance.now();
    await a.hashes.incrBy(key, 'gen', 1, 600_000);
    revokeAck.push(performance.now() - revoking);
    const [revokeMs, revokeStale] = await untilRefused(
      performance.now(),
      async () => (await b.hashes.getAll(key)).gen !== '1',
    );
    revoke.push(revokeMs);
    staleRevoke += revokeStale > 0 ? 1 : 0;
  }
  const figures = (what: string, all: number[], acks: number[], staleAfterAck: number): Figures => {
    const sorted = [...all].sort((x, y) => x - y);
    const ackSorted = [...acks].sort((x, y) => x - y);
    return {
      ackP50: percentile(ackSorted, 0.5),
      ackP99: percentile(ackSorted, 0.99),
      name: `${name}: ${what}`,
      p50: percentile(sorted, 0.5),
      p99: percentile(sorted, 0.99),
      max: sorted.at(-1)!,
      staleAfterAck,
    };
  };
  const stats = b.nearCacheStats();
  process.stderr.write(`  ${name}: near cache ${JSON.stringify(stats)}\n`);
  return [
    figures('logout', logout, logoutAck, staleLogout),
    figures('log out everywhere (token marker)', revoke, revokeAck, staleRevoke),
  ];
}

const infra = await startInfrastructure();
const rows: Figures[] = [];
try {
  const pgA = await createPostgresState({ connectionString: infra.databaseUrl, nearCache: NEAR_CACHE });
  const pgB = await createPostgresState({ connectionString: infra.databaseUrl, nearCache: NEAR_CACHE });
  rows.push(...(await measure('postgres', pgA, pgB)));
  await Promise.all([pgA.close(), pgB.close()]);
  const redisA = await createRedisState({ url: infra.redisUrl, nearCache: NEAR_CACHE });
  const redisB = await createRedisState({ url: infra.redisUrl, nearCache: NEAR_CACHE });
  rows.push(...(await measure('redis', redisA, redisB)));
  await Promise.all([redisA.close(), redisB.close()]);
} finally {
  await infra.stop();
}

const ms = (x: number) => x.toFixed(2);
const report = [
  `# Near cache: from a logout's acknowledgement to its refusal elsewhere, ${new Date().toISOString()}`,
  '',
  `Machine: ${availableParallelism()} cores (${cpus()[0]?.model.trim()}); node ${process.version}. ` +
    `${LOGOUTS} logouts per row; A and B are two stores (two servers' worth of connections) in one process.`,
  '',
  '| what | ack → refused p50 ms | p99 ms | max ms | answered stale at least once after the ack | A acknowledges p50 ms | p99 ms |',
  '|---|---:|---:|---:|---:|---:|---:|',
  ...rows.map(
    (r) =>
      `| ${r.name} | ${ms(r.p50)} | ${ms(r.p99)} | ${ms(r.max)} | ${r.staleAfterAck} of ${LOGOUTS} | ${ms(r.ackP50)} | ${ms(r.ackP99)} |`,
  ),
  '',
  'Target: p99 <= 10 ms, and at once: B is asked right after A acknowledged, so one stale answer counts. A acknowledges only when every server with a near cache has heard (PostgreSQL: each server answers a marker; Redis: a marker published behind the invalidation comes back), which is what the acknowledgement columns cost.',
  '',
].join('\n');
process.stdout.write(`\n${report}`);
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
await writeFile(new URL('./results/near-cache.md', import.meta.url), report);
process.exit(0);
