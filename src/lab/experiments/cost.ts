import { createApiClient, dataOf } from '../../client/api-client.ts';
import type { ChartSpec } from '../charts.ts';
import type { Experiment, Section } from '../experiment.ts';
import { startLabCluster } from '../lab-cluster.ts';
import {
  authenticatedGets,
  CONNECTIONS,
  cartUpdates,
  measureLoad,
  signUp,
  startRawHello,
  type LoadDurations,
  type LoadResult,
} from '../load.ts';
import { median, spread } from '../stats.ts';

export interface CostResult {
  connections: number;
  seconds: number;
  /** Users whose sessions (and carts) the load takes in turn. */
  users: number;
  /** The raw node:http hello, per run: the best of its samples (one before each system). */
  ceiling: LoadResult[];
  /** Per system, one measurement of each operation per run. */
  systems: Array<{ system: string; me: LoadResult[]; cart: LoadResult[] }>;
}

/** Users whose sessions the load takes in turn: a cart each, so no one cart is a hot spot (4 with --quick). */
const USERS = 16;

const durations = (quick: boolean): LoadDurations =>
  quick ? { warmupSeconds: 0, seconds: 1 } : { warmupSeconds: 1, seconds: 5 };

/**
 * Experiment 2, the cost of external state: an authenticated GET /api/me and a cart update, each
 * under autocannon on ONE app server of each system (no balancer: its cost is the same for all,
 * and `scale` measures it), beside a raw node:http hello. Runs are interleaved rounds (the
 * ceiling, then a system, and so on), so that a drift of the shared machine hits every target alike.
 */
export const cost: Experiment<CostResult> = {
  name: 'cost',
  steps: ({ systems, repeat }) => repeat * 3 * systems.length,
  async run(ctx) {
    const time = durations(ctx.quick);
    const stops: Array<() => Promise<void>> = [];
    try {
      const raw = await startRawHello();
      stops.push(raw.stop);
      const runId = Date.now().toString(36);
      const users = ctx.quick ? 4 : USERS;
      const targets: Array<{ system: string; url: string; cookies: string[]; itemId: string }> = [];
      // One system at a time: supervisors starting at once on one database can wait on each other.
      for (const [index, system] of ctx.systems.entries()) {
        ctx.log(`cost: starting ${system.name}`);
        const cluster = await startLabCluster(system, ctx.infra, 1);
        stops.push(cluster.stop);
        const url = cluster.supervisor.server('s1')!.url!;
        const menu = await dataOf(createApiClient({ baseUrl: url }).GET('/api/menu'));
        const cookies: string[] = [];
        ctx.log(`cost: signing ${users} users up on ${system.name}`);
        // One at a time: sign-ups wait for a password hash, and a burst of them is refused (503).
        for (let i = 0; i < users; i++) cookies.push(await signUp(url, `lab_cost_${runId}_${index}_${i}`));
        targets.push({ system: system.name, url, cookies, itemId: menu.items[0]!.id });
      }
      const result: CostResult = {
        connections: CONNECTIONS,
        seconds: time.seconds,
        users,
        ceiling: [],
        systems: targets.map((t) => ({ system: t.system, me: [], cart: [] })),
      };
      for (let run = 1; run <= ctx.repeat; run++) {
        const of = `run ${run} of ${ctx.repeat}`;
        const samples: LoadResult[] = [];
        for (const [i, t] of targets.entries()) {
          // A ceiling is the best the machine does: sampled beside each system, so that one busy
          // moment of this shared machine does not put it under the systems it bounds.
          ctx.step(`cost: raw node:http hello (${of})`);
          samples.push(await measureLoad({ url: raw.url }, time));
          ctx.step(`cost: ${t.system}, GET /api/me (${of})`);
          result.systems[i]!.me.push(await measureLoad({ url: t.url, request: authenticatedGets(t.cookies) }, time));
          ctx.step(`cost: ${t.system}, cart update (${of})`);
          result.systems[i]!.cart.push(
            await measureLoad({ url: t.url, request: cartUpdates(t.cookies, t.itemId) }, time),
          );
        }
        result.ceiling.push(samples.reduce((best, s) => (s.requestsPerSecond > best.requestsPerSecond ? s : best)));
      }
      return result;
    } finally {
      for (const stop of stops.reverse()) await stop();
    }
  },
  report(result, { quick }): Section[] {
    const rps = (runs: LoadResult[]) => median(runs.map((r) => r.requestsPerSecond));
    const ceiling = rps(result.ceiling);
    const memory = result.systems.find((s) => s.system.startsWith('stateful'));
    const external = result.systems.filter((s) => s !== memory);
    const ops = [
      { key: 'me', label: 'GET /api/me' },
      { key: 'cart', label: 'cart update' },
    ] as const;
    const times = (a: number, b: number | undefined) => (b ? `x${(a / b).toFixed(2)}` : '-');
    const row = (target: string, runs: LoadResult[], memoryRuns?: LoadResult[]) => [
      target,
      spread(runs.map((r) => r.requestsPerSecond)),
      spread(runs.map((r) => r.p50)),
      spread(runs.map((r) => r.p99)),
      times(rps(runs), memoryRuns && rps(memoryRuns)),
      times(rps(runs), ceiling),
      spread(runs.map((r) => r.failed)),
    ];
    // External throughput over memory's, per operation and store: < 1 means memory is faster.
    const ratios = external.flatMap((s) => ops.map((op) => (memory ? rps(s[op.key]) / rps(memory[op.key]) : 1)));
    const figures = ops
      .map(
        (op) =>
          `${op.label}: ${result.systems.map((s) => `${s.system} ${rps(s[op.key])} req/s (p99 ${median(s[op.key].map((r) => r.p99))} ms)`).join(', ')}`,
      )
      .join('; ');
    const range = `external state gives x${Math.min(...ratios).toFixed(2)} to x${Math.max(...ratios).toFixed(2)} the throughput of server memory`;
    const verdict = !memory
      ? `No stateful system ran: ${figures}.`
      : ratios.every((r) => r < 0.9)
        ? `Confirmed: ${range}. ${figures}; the raw ceiling ${ceiling} req/s.`
        : ratios.every((r) => r >= 0.9)
          ? `Refuted: ${range}, never 10% slower. ${figures}; the raw ceiling ${ceiling} req/s.`
          : `Depends: ${range}. ${figures}; the raw ceiling ${ceiling} req/s.`;
    const chart = (title: string, axis: string, value: (runs: LoadResult[]) => number): ChartSpec => ({
      title,
      axis,
      values: [
        ...result.systems.flatMap((s) =>
          ops.map((op) => ({ label: s.system, series: op.label, value: value(s[op.key]) })),
        ),
        { label: 'raw node:http hello', series: 'hello (the ceiling)', value: value(result.ceiling) },
      ],
    });
    return [
      {
        title: 'The cost of external state: one app server, per session-state store',
        claim:
          'The articles: stateful servers are faster because local memory is fast; a shared store (PostgreSQL, Redis) costs a network round trip per request.',
        verdict,
        header: ['target', 'req/s', 'p50 ms', 'p99 ms', 'x memory', 'x ceiling', 'failed'],
        rows: [
          row('raw node:http hello (the ceiling)', result.ceiling),
          ...ops.flatMap((op) =>
            result.systems.map((s) => row(`${s.system}: ${op.label}`, s[op.key], memory?.[op.key])),
          ),
        ],
        charts: [
          chart('Throughput on one app server (median)', 'requests/s', rps),
          chart('p99 latency on one app server (median)', 'ms', (runs) => median(runs.map((r) => r.p99))),
        ],
        notes: [
          `autocannon, ${result.connections} connections, ${result.seconds} s per figure, from the lab's process, over the sessions of ${result.users} users in turn; each system's app server s1 loaded directly (the balancer adds the same hop to every system: see the scale section). Figures are the median (min to max) of ${result.ceiling.length} interleaved run(s); the ceiling is sampled before each system and a run keeps its best sample (a ceiling is what the machine does at best).`,
          'GET /api/me is one session lookup in the store (its idle timer is refreshed at most once a minute); a cart update is a session lookup and one atomic operation on the cart: "add 1 to a line", then "set it to 1", in turn. "x memory" is throughput over the stateful system\u2019s for the same operation; "x ceiling" over the raw node:http hello.',
          'The load generator, the app server and the store share the same cores, and the machine may be shared with other work: timings are noisy, compare within one run.',
          ...(quick ? ['--quick: 1 s per figure, no warm-up, one run: a smoke test, not a measurement.'] : []),
        ],
      },
    ];
  },
};
