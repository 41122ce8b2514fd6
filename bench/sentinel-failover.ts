/**
 * Issue 11 bench: what a Redis Sentinel failover costs an app server's session state, over 5
 * failovers of each kind: the primary SIGKILLed (it dies), and SIGSTOPped for 12 s then SIGCONTed
 * (it hangs, and wakes up after its replica was promoted: the harder case).
 *
 * One primary, one replica and three sentinels (test/support/redis-sentinel.ts: quorum 2, a node is
 * down after 1 s). One StateStore built as an app server builds it (createRedisState with the
 * documented redis+sentinel:// URL and the servers' durable-write settings: WAIT for 1 replica, at
 * most 500 ms, and after a short WAIT no waiting for 10 s), driven at a steady rate whether or not
 * the last call came back:
 *   - plain writes:   a hash field set every 5 ms (a cart line: what most writes are);
 *   - durable writes: a session destroyed every 50 ms (a logout: acknowledged after WAIT).
 * Per failover: how long the sentinels took to promote the replica; per kind of write, how long
 * none was acknowledged (the outage), how many failed, and how many acknowledged ones the primary
 * no longer has once it is over (a cart line missing, a logged-out session back); and how many
 * logouts were acknowledged without the replica (its WAIT came back short, or was skipped). Between failovers the failed node comes
 * back as a replica (SIGKILL: restarted with --replicaof; SIGSTOP: the sentinels turn it into one)
 * and is in sync before the next one.
 * `npm run bench:failover` (BENCH_FAILOVERS, default 5 of each kind). Writes bench/results/sentinel-failover.md.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { SessionId } from '../src/kernel/ids.ts';
import { createRedisState } from '../src/state/redis.ts';
import type { StateStore } from '../src/state/types.ts';
import { startSentinelSetup, type SentinelSetup } from '../test/support/redis-sentinel.ts';
import { waitFor } from '../test/support/wait.ts';

const FAILOVERS = Number(process.env.BENCH_FAILOVERS ?? 5);
const PLAIN_EVERY_MS = 5;
const LOGOUT_EVERY_MS = 50;
const BEFORE_MS = 1_000;
const HANG_MS = 12_000;
/** How long the writers go on after the fault (SIGKILL) or after the SIGCONT (SIGSTOP). */
const AFTER_MS = 6_000;
/** Sessions made before each failover, one per logout to come (with room to spare). */
const SESSIONS = Math.ceil((BEFORE_MS + HANG_MS + AFTER_MS + 15_000) / LOGOUT_EVERY_MS);
const WAIT_REPLICAS = 1;
const WAIT_TIMEOUT_MS = 500;

type Kind = 'SIGKILL' | 'SIGSTOP';

interface Write {
  /** The hash key (plain) or session id (logout). */
  key: string;
  ackAt?: number;
  failed?: boolean;
}

interface Writes {
  outageMs: number;
  sent: number;
  acked: number;
  failed: number;
  lost: number;
}

interface Round {
  kind: Kind;
  n: number;
  promotedMs: number;
  plain: Writes;
  /** short: logouts acknowledged without the replica (WAIT came back short, or was skipped after one that did). */
  logouts: Writes & { short: number };
}

const node = (port: number) => {
  const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: () => 50 });
  client.on('error', () => undefined);
  return client;
};

/** The replica on `port` is in sync with the current primary. */
async function inSync(port: number): Promise<void> {
  const replica = node(port);
  try {
    await waitFor(async () => /master_link_status:up/.test(String(await replica.info('replication').catch(() => ''))), {
      timeoutMs: 60_000,
      intervalMs: 100,
      what: `the replica on ${port} in sync`,
    });
  } finally {
    replica.disconnect();
  }
}

/** Calls `write(i)` every `everyMs` until stopped; returns every call with its outcome. */
function steady(everyMs: number, write: (i: number) => { key: string; done: Promise<unknown> }) {
  const writes: Write[] = [];
  let i = 0;
  const timer = setInterval(() => {
    const { key, done } = write(i++);
    const entry: Write = { key };
    writes.push(entry);
    done.then(
      () => {
        entry.ackAt = performance.now();
      },
      () => {
        entry.failed = true;
      },
    );
  }, everyMs);
  return {
    writes,
    /** Stops writing and waits until every call came back (or 10 s). */
    async stop() {
      clearInterval(timer);
      const deadline = Date.now() + 10_000;
      while (writes.some((w) => w.ackAt === undefined && !w.failed) && Date.now() < deadline) await sleep(50);
    },
  };
}

/** The longest stretch, from the fault on, with no call acknowledged. */
function outage(writes: Write[], faultAt: number): number {
  const acks = writes
    .map((w) => w.ackAt)
    .filter((t): t is number => t !== undefined && t >= faultAt)
    .sort((a, b) => a - b);
  let longest = 0;
  let last = faultAt;
  for (const t of acks) {
    longest = Math.max(longest, t - last);
    last = t;
  }
  return longest;
}

/** How many of these keys the command `ask` answers `bad` for. */
async function count(
  primary: Redis,
  keys: string[],
  ask: (p: ReturnType<Redis['pipeline']>, key: string) => void,
  bad: number,
) {
  let n = 0;
  for (let i = 0; i < keys.length; i += 1_000) {
    const pipeline = primary.pipeline();
    for (const key of keys.slice(i, i + 1_000)) ask(pipeline, key);
    for (const [, answer] of (await pipeline.exec())!) if (answer === bad) n++;
  }
  return n;
}

const summary = (writes: Write[], faultAt: number, lost: number): Writes => ({
  outageMs: outage(writes, faultAt),
  sent: writes.length,
  acked: writes.filter((w) => w.ackAt !== undefined).length,
  failed: writes.filter((w) => w.failed).length,
  lost,
});

async function failover(setup: SentinelSetup, state: StateStore, kind: Kind, n: number): Promise<Round> {
  const primaryPort = await setup.currentPrimaryPort();
  const replicaPort = primaryPort === setup.primaryPort ? setup.replicaPort : setup.primaryPort;
  await inSync(replicaPort);
  const prefix = `fo:${kind}:${n}`;
  const now = Date.now();
  const sessions = Array.from({ length: SESSIONS }, () => randomUUID() as SessionId);
  for (const id of sessions) {
    await state.sessions.create(
      {
        id,
        userId: null,
        username: null,
        createdAt: now,
        lastSeenAt: now,
        absoluteExpiresAt: now + 3_600_000,
        userAgent: 'bench',
      },
      3_600_000,
    );
  }
  const plain = steady(PLAIN_EVERY_MS, (i) => {
    const key = `${prefix}:${i}`;
    return { key, done: state.hashes.set(key, 'line', '1', 3_600_000) };
  });
  const logouts = steady(LOGOUT_EVERY_MS, (i) => ({ key: sessions[i]!, done: state.sessions.destroy(sessions[i]!) }));
  const shortBefore = shortLogouts;
  await sleep(BEFORE_MS);

  const victim = setup.processOn(primaryPort);
  const faultAt = performance.now();
  victim.kill(kind);
  await waitFor(async () => (await setup.currentPrimaryPort()) === replicaPort, {
    timeoutMs: 30_000,
    intervalMs: 50,
    what: 'the sentinels to promote the replica',
  });
  const promotedMs = performance.now() - faultAt;
  if (kind === 'SIGSTOP') {
    await sleep(Math.max(0, HANG_MS - (performance.now() - faultAt)));
    victim.kill('SIGCONT');
  }
  await sleep(AFTER_MS);
  await Promise.all([plain.stop(), logouts.stop()]);

  // The failed node back as a replica of the new primary, in sync, before anything is counted.
  if (kind === 'SIGKILL') (await setup.restartAsReplica(primaryPort)).disconnect();
  await inSync(primaryPort);

  const primary = node(replicaPort);
  try {
    const acked = (ws: Write[]) => ws.filter((w) => w.ackAt !== undefined);
    const lines = acked(plain.writes).map((w) => `sw:h:{${w.key}}`);
    const exists = (p: ReturnType<Redis['pipeline']>, key: string) => void p.exists(`sw:s:{${key}}`);
    return {
      kind,
      n,
      promotedMs,
      plain: summary(plain.writes, faultAt, await count(primary, lines, (p, key) => void p.hexists(key, 'line'), 0)),
      logouts: {
        ...summary(
          logouts.writes,
          faultAt,
          await count(
            primary,
            acked(logouts.writes).map((w) => w.key),
            exists,
            1,
          ),
        ),
        short: shortLogouts - shortBefore,
      },
    };
  } finally {
    primary.disconnect();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
const range = (xs: number[]) =>
  `${Math.min(...xs).toFixed(0)} / ${median(xs).toFixed(0)} / ${Math.max(...xs).toFixed(0)}`;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

const setup = await startSentinelSetup();
/** Logouts acknowledged without the replica: the store calls onShort for each (-1 while paused). */
let shortLogouts = 0;
const state = await createRedisState({
  url: setup.url,
  durable: {
    replicas: WAIT_REPLICAS,
    timeoutMs: WAIT_TIMEOUT_MS,
    hashPrefixes: [],
    onShort: () => {
      shortLogouts++;
    },
  },
});
const rounds: Round[] = [];
try {
  for (const kind of ['SIGKILL', 'SIGSTOP'] as const) {
    for (let n = 1; n <= FAILOVERS; n++) {
      const r = await failover(setup, state, kind, n);
      rounds.push(r);
      console.log(
        `${kind} #${n}: promoted after ${r.promotedMs.toFixed(0)} ms; cart lines: none acknowledged for ${r.plain.outageMs.toFixed(0)} ms, ${r.plain.failed} of ${r.plain.sent} failed, ${r.plain.lost} of ${r.plain.acked} lost; logouts: none for ${r.logouts.outageMs.toFixed(0)} ms, ${r.logouts.failed} of ${r.logouts.sent} failed, ${r.logouts.lost} of ${r.logouts.acked} undone (${r.logouts.short} acknowledged without the replica)`,
      );
    }
  }
} finally {
  await state.close();
  await setup.stop();
}

const lines = [
  `# Redis Sentinel failovers, ${new Date().toISOString()}`,
  '',
  `Machine: ${cpus().length} cores (${cpus()[0]?.model.trim()}); node ${process.version}; ${FAILOVERS} failovers of each kind.`,
  'One primary, one replica, three sentinels (quorum 2, down after 1 s). One session store built as an app',
  'server builds it (redis+sentinel:// URL; logouts WAIT for 1 replica, at most 500 ms, no waiting for 10 s',
  'after a short WAIT), all on its one connection: a cart line (hash field) set every 5 ms, a session',
  `destroyed (a logout) every 50 ms. SIGSTOP: the primary hangs ${HANG_MS / 1000} s, then wakes up after its replica was promoted.`,
  '"Lost": acknowledged, and not on the primary once it is over (a cart line missing, a logged-out session back).',
  '',
  '| failover | promoted after (ms) | cart lines: none acknowledged for (ms) | failed / sent | lost / acknowledged | logouts: none acknowledged for (ms) | failed / sent | undone / acknowledged | of which acknowledged without the replica |',
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...rounds.map(
    (r) =>
      `| ${r.kind} #${r.n} | ${r.promotedMs.toFixed(0)} | ${r.plain.outageMs.toFixed(0)} | ${r.plain.failed} / ${r.plain.sent} | ${r.plain.lost} / ${r.plain.acked} | ${r.logouts.outageMs.toFixed(0)} | ${r.logouts.failed} / ${r.logouts.sent} | ${r.logouts.lost} / ${r.logouts.acked} | ${r.logouts.short} |`,
  ),
  '',
  '| kind | promoted after, ms (min / median / max) | cart lines: outage ms | failed | lost | logouts: outage ms | failed | undone |',
  '|---|---:|---:|---:|---:|---:|---:|---:|',
  ...(['SIGKILL', 'SIGSTOP'] as const).map((kind) => {
    const rs = rounds.filter((r) => r.kind === kind);
    return `| ${kind} | ${range(rs.map((r) => r.promotedMs))} | ${range(rs.map((r) => r.plain.outageMs))} | ${range(rs.map((r) => r.plain.failed))} | ${sum(rs.map((r) => r.plain.lost))} of ${sum(rs.map((r) => r.plain.acked))} | ${range(rs.map((r) => r.logouts.outageMs))} | ${range(rs.map((r) => r.logouts.failed))} | ${sum(rs.map((r) => r.logouts.lost))} of ${sum(rs.map((r) => r.logouts.acked))} |`;
  }),
  '',
];
await mkdir('bench/results', { recursive: true });
await writeFile('bench/results/sentinel-failover.md', lines.join('\n'));
console.log(lines.join('\n'));
