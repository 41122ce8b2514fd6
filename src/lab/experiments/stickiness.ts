import type { Experiment, Section } from '../experiment.ts';
import { startLabCluster, type LabSystem } from '../lab-cluster.ts';
import { LAB_USER_AGENT, stopAtOnce } from '../load.ts';
import { median, spread } from '../stats.ts';
import { Visitor } from '../visitor.ts';
import { patiently } from '../patiently.ts';

type Policy = NonNullable<LabSystem['balancer']>;

export interface StickinessRun {
  /** GET /api/me answered by each server (X-Served-By). */
  perServer: Record<string, number>;
  /** The busiest server's requests over the mean per server: 1 is perfectly even. */
  maxOverMean: number;
  /** Sticky only: how many heavy users each server holds (the server of their first answer). */
  heavyPerServer?: Record<string, number>;
}

export interface StickinessResult {
  store: string;
  servers: number;
  users: number;
  heavyUsers: number;
  /** A heavy user makes this many times a light user's requests. */
  heavyFactor: number;
  lightRequests: number;
  /** Sticky's max/mean averaged over every placement of the heavy users (computed, not measured). */
  expectedStickyMaxOverMean: number;
  balancers: Array<{ balancer: Policy; system: string; runs: StickinessRun[] }>;
}

const SERVERS = 3;
const USERS = 30;
/** 4 heavy users on 3 servers: whatever the draw, one server holds two (with 3, a quarter of the draws is even). */
const HEAVY = 4;
const HEAVY_FACTOR = 20;
const POLICIES: readonly Policy[] = ['sticky', 'round-robin'];

const binomial = (n: number, k: number): number =>
  k < 0 || k > n ? 0 : k === 0 ? 1 : (binomial(n - 1, k - 1) * n) / k;

/**
 * E[max/mean] under a sticky balancer when the heavy users are a random draw: the sticky balancer
 * hands out first visits in turn, so each server holds users/servers users, any of whom may be heavy.
 */
export function expectedMaxOverMean(users: number, servers: number, heavy: number, factor: number): number {
  const perServer = users / servers;
  const total = users - heavy + heavy * factor;
  const placements = (left: number, slots: number): number[][] =>
    slots === 1
      ? left <= perServer
        ? [[left]]
        : []
      : Array.from({ length: Math.min(left, perServer) + 1 }, (_, h) =>
          placements(left - h, slots - 1).map((rest) => [h, ...rest]),
        ).flat();
  let expected = 0;
  for (const heavyOn of placements(heavy, servers)) {
    const probability = heavyOn.reduce((p, h) => p * binomial(perServer, h), 1) / binomial(users, heavy);
    const busiest = Math.max(...heavyOn.map((h) => perServer - h + h * factor));
    expected += (probability * busiest) / (total / servers);
  }
  return expected;
}

/** `count` distinct indices below `n`, drawn at random: who is heavy is nobody's choice. */
function draw(n: number, count: number): Set<number> {
  const indices = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [indices[i], indices[j]] = [indices[j]!, indices[i]!];
  }
  return new Set(indices.slice(0, count));
}

const tally = (ids: Array<string | null>): Record<string, number> => {
  const counts: Record<string, number> = {};
  for (const id of ids) counts[id ?? 'none'] = (counts[id ?? 'none'] ?? 0) + 1;
  return counts;
};

/** Users sign up at once (so the sticky balancer places them in arrival order), then each sends its requests in turn. */
async function stickinessOnce(
  system: LabSystem,
  infra: { databaseUrl: string; redisUrl?: string },
  lightRequests: number,
  log: (line: string) => void,
): Promise<StickinessRun> {
  log(`stickiness: starting ${system.name}`);
  const cluster = await startLabCluster(system, infra, SERVERS);
  try {
    const runId = `${Date.now().toString(36)}_${system.balancer === 'sticky' ? 's' : 'r'}`;
    const heavy = draw(USERS, HEAVY);
    const visitors = Array.from({ length: USERS }, () => new Visitor(cluster.url, LAB_USER_AGENT));
    await Promise.all(
      visitors.map(async (visitor, i) => {
        const { error, response } = await patiently(() =>
          visitor.api.POST('/api/auth/register', {
            body: { username: `lab_sticky_${runId}_${i}`, password: 'a long lab password' },
          }),
        );
        if (response.status !== 201) throw new Error(`register: ${response.status} ${JSON.stringify(error)}`);
      }),
    );
    log(`stickiness: ${USERS} users send their requests to ${system.name}`);
    const homes = visitors.filter((_, i) => heavy.has(i)).map((v) => v.lastServer);
    const servedBy: Array<string | null> = [];
    await Promise.all(
      visitors.map(async (visitor, i) => {
        const requests = heavy.has(i) ? lightRequests * HEAVY_FACTOR : lightRequests;
        for (let n = 0; n < requests; n++) {
          const { response } = await visitor.api.GET('/api/me');
          if (response.status !== 200) throw new Error(`GET /api/me: ${response.status}`);
          servedBy.push(visitor.lastServer);
        }
      }),
    );
    log(`stickiness: stopping ${system.name}`);
    const perServer = tally(servedBy);
    return {
      perServer,
      maxOverMean: Math.max(...Object.values(perServer)) / (servedBy.length / SERVERS),
      ...(system.balancer === 'sticky' ? { heavyPerServer: tally(homes) } : {}),
    };
  } finally {
    await stopAtOnce(cluster);
  }
}

const perServerText = (counts: Record<string, number>) =>
  Array.from({ length: SERVERS }, (_, i) => `s${i + 1} ${counts[`s${i + 1}`] ?? 0}`).join(', ');

/** The run with the median max/mean: the one the table and the chart show in detail. */
const medianRun = (runs: StickinessRun[]) =>
  [...runs].sort((a, b) => a.maxOverMean - b.maxOverMean)[Math.floor(runs.length / 2)]!;

/**
 * Experiment 8, stickiness: 30 users on 3 stateless servers, 4 of them (drawn at random) making 20
 * times the requests of the others, behind a sticky balancer and behind round robin (the same
 * system otherwise): how much busier than the mean is the busiest server?
 */
export const stickiness: Experiment<StickinessResult> = {
  name: 'stickiness',
  steps: ({ repeat }) => POLICIES.length * repeat,
  async run(ctx) {
    // One shared store for both: only the policy differs. Redis when it runs (less noise), else PostgreSQL.
    const base =
      ctx.systems.find((s) => s.mode === 'stateless' && s.store === 'redis') ??
      ctx.systems.find((s) => s.mode === 'stateless');
    if (!base) throw new Error('stickiness needs a stateless system');
    const lightRequests = ctx.quick ? 10 : 50;
    const result: StickinessResult = {
      store: base.store,
      servers: SERVERS,
      users: USERS,
      heavyUsers: HEAVY,
      heavyFactor: HEAVY_FACTOR,
      lightRequests,
      expectedStickyMaxOverMean: expectedMaxOverMean(USERS, SERVERS, HEAVY, HEAVY_FACTOR),
      balancers: [],
    };
    for (const balancer of POLICIES) {
      const system: LabSystem = { ...base, name: `stateless, ${base.store}, ${balancer}`, balancer };
      const runs: StickinessRun[] = [];
      for (let run = 1; run <= ctx.repeat; run++) {
        ctx.step(`stickiness: ${balancer} (run ${run} of ${ctx.repeat})`);
        runs.push(await stickinessOnce(system, ctx.infra, lightRequests, ctx.log));
      }
      result.balancers.push({ balancer, system: system.name, runs });
    }
    return result;
  },
  report(result, { quick }): Section[] {
    const ratio = (policy: Policy) =>
      median(result.balancers.find((b) => b.balancer === policy)?.runs.map((r) => r.maxOverMean) ?? [NaN]);
    const [sticky, roundRobin] = [ratio('sticky'), ratio('round-robin')];
    const workload = `${result.heavyUsers} of ${result.users} users making ${result.heavyFactor}x the requests of the others`;
    const figures = `the busiest of ${result.servers} servers got ${sticky.toFixed(2)}x the mean load behind the sticky balancer (${result.expectedStickyMaxOverMean.toFixed(2)}x expected over every draw of the heavy users), ${roundRobin.toFixed(2)}x behind round robin`;
    return [
      {
        title: 'Stickiness: how evenly a sticky balancer spreads heavy users',
        claim:
          'The articles: sticky sessions spread users, not load; when a few users are heavy, the servers that hold them get busier than the rest, while round robin spreads every request.',
        verdict:
          sticky > roundRobin * 1.1
            ? `Confirmed: with ${workload}, ${figures}. A sticky server must be sized for its heaviest users, not for the average.`
            : `Not here: with ${workload}, ${figures}.`,
        header: ['balancer', 'runs', 'requests per server (median run)', 'max / mean', 'heavy users per server'],
        rows: result.balancers.map(({ system, runs }) => {
          const shown = medianRun(runs);
          return [
            system,
            runs.length,
            perServerText(shown.perServer),
            spread(
              runs.map((r) => r.maxOverMean),
              2,
            ),
            shown.heavyPerServer ? perServerText(shown.heavyPerServer) : 'any server, request by request',
          ];
        }),
        charts: [
          {
            title: 'Busiest server\u2019s load over the mean (median; 1 is even)',
            axis: 'max / mean',
            values: result.balancers.map(({ system, runs }) => ({
              label: system,
              value: median(runs.map((r) => r.maxOverMean)),
            })),
          },
          {
            title: 'Requests per server (the median run)',
            axis: 'requests',
            values: result.balancers.flatMap(({ balancer, runs }) =>
              Array.from({ length: result.servers }, (_, i) => ({
                label: `s${i + 1}`,
                series: balancer,
                value: medianRun(runs).perServer[`s${i + 1}`] ?? 0,
              })),
            ),
          },
        ],
        notes: [
          `Each run: ${result.users} users sign up at once (the sticky balancer gives each first visit the next server in turn, so each server holds ${result.users / result.servers}), ${result.heavyUsers} drawn at random are heavy; then each light user sends ${result.lightRequests} GET /api/me one after the other and each heavy one ${result.lightRequests * result.heavyFactor}, all users at once. Requests are counted by X-Served-By.`,
          `Both balancers run the same stateless system (${result.store}): only the policy differs. With ${result.heavyUsers} heavy users on ${result.servers} servers, at least one server holds two of them whatever the draw; the expected figure is computed over every placement, the measured one is that run's draw.`,
          'The counts do not depend on the machine\u2019s speed; they are exact for the draw, so repeated runs differ only by which users were heavy.',
          ...(quick ? [`--quick: ${result.lightRequests} requests per light user, one run.`] : []),
        ],
      },
    ];
  },
};
