import { dataOf, type Answer } from '../../client/api-client.ts';
import type { Experiment, Section } from '../experiment.ts';
import type { LabInfrastructure } from '../infrastructure.ts';
import { startLabCluster, type LabSystem } from '../lab-cluster.ts';
import { outcome } from '../outcome.ts';
import { median, spread } from '../stats.ts';
import { Visitor } from '../visitor.ts';
import { patiently } from '../patiently.ts';

export interface CrashResult {
  system: string;
  users: number;
  /** Users whose last answer before the kill came from the killed server. */
  usersOnKilledServer: number;
  sessionsLost: number;
  cartLinesBefore: number;
  cartLinesLost: number;
  /** Requests answered 5xx or not at all after the kill. */
  failedRequests: number;
  /** From the kill until every user got an answer that was not a failure. */
  recoveryMs: number;
}

const KILLED = 's2';

/**
 * Experiment 1, crash: M users sign in and fill a cart of two lines, spread over 3 servers (round
 * robin, or sticky in stateful mode); s2 is SIGKILLed; then every user asks who they are and what
 * is in their cart. Stateless systems should lose nothing; the stateful one loses what s2 held.
 */
export async function crashOnce(system: LabSystem, infra: LabInfrastructure, users: number): Promise<CrashResult> {
  const cluster = await startLabCluster(system, infra);
  try {
    const run = Date.now().toString(36);
    const visitors = Array.from({ length: users }, () => new Visitor(cluster.url));
    const menu = (await dataOf(visitors[0]!.api.GET('/api/menu'))).items;
    let cartLinesBefore = 0;
    await Promise.all(
      visitors.map(async (visitor, i) => {
        const registered = await patiently(() =>
          visitor.api.POST('/api/auth/register', {
            body: { username: `lab_${run}_${i}`, password: 'a long lab password' },
          }),
        );
        if (registered.response.status !== 201)
          throw new Error(`register: ${registered.response.status} ${JSON.stringify(registered.error)}`);
        for (const item of menu.slice(0, 2)) {
          const added = await visitor.api.POST('/api/cart/items', { body: { itemId: item.id, qty: 1 } });
          if (added.response.status !== 200) throw new Error(`cart: ${added.response.status}`);
        }
        cartLinesBefore += 2;
      }),
    );
    // Where each user's state would live in memory: the server of its last answer.
    const onKilled = visitors.filter((v) => v.lastServer === KILLED).length;

    await cluster.supervisor.server(KILLED)!.kill();
    const killedAt = performance.now();
    let failedRequests = 0;
    let recoveredAt = killedAt;
    const outcomes = await Promise.all(
      visitors.map(async (visitor) => {
        const ask = async <T>(path: string, call: () => Promise<Answer<T>>) => {
          for (;;) {
            const answer = await outcome(call());
            if (answer.status !== 0 && answer.status < 500) return answer;
            failedRequests++;
            if (performance.now() - killedAt > 30_000) throw new Error(`${path} failing for 30 s`);
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        };
        const me = await ask('/api/me', () => visitor.api.GET('/api/me'));
        const cart = await ask('/api/cart', () => visitor.api.GET('/api/cart'));
        recoveredAt = Math.max(recoveredAt, performance.now());
        return { signedIn: me.status === 200, lines: cart.data?.items.length ?? 0 };
      }),
    );
    return {
      system: system.name,
      users,
      usersOnKilledServer: onKilled,
      sessionsLost: outcomes.filter((o) => !o.signedIn).length,
      cartLinesBefore,
      cartLinesLost: cartLinesBefore - outcomes.reduce((sum, o) => sum + o.lines, 0),
      failedRequests,
      recoveryMs: Math.round(recoveredAt - killedAt),
    };
  } finally {
    await cluster.stop();
  }
}

export type CrashResults = Array<{ system: string; runs: CrashResult[] }>;

export const crash: Experiment<CrashResults> = {
  name: 'crash',
  steps: ({ systems, repeat }) => systems.length * repeat,
  async run(ctx) {
    const results: CrashResults = [];
    for (const system of ctx.systems) {
      const runs: CrashResult[] = [];
      for (let run = 1; run <= ctx.repeat; run++) {
        ctx.step(`crash: ${system.name} (run ${run} of ${ctx.repeat})`);
        runs.push(await crashOnce(system, ctx.infra, ctx.quick ? 30 : 300));
      }
      results.push({ system: system.name, runs });
    }
    return results;
  },
  report(all): Section[] {
    const runsOf = (prefix: string) => all.filter((r) => r.system.startsWith(prefix)).flatMap((r) => r.runs);
    const statelessKept = runsOf('stateless').every((r) => r.sessionsLost === 0 && r.cartLinesLost === 0);
    const statefulLost = runsOf('stateful').every((r) => r.sessionsLost > 0);
    return [
      {
        title: 'Crash: one of three servers SIGKILLed',
        claim:
          'The articles: a stateless server can die without losing anyone\u2019s session; a stateful one takes its users\u2019 sessions with it.',
        verdict:
          statelessKept && statefulLost
            ? 'Confirmed: the stateless systems lost no session and no cart line in any run; the stateful one lost the killed server\u2019s share.'
            : `Not as claimed here: stateless lost ${runsOf('stateless')
                .map((r) => r.sessionsLost)
                .join('/')} sessions, stateful ${runsOf('stateful')
                .map((r) => r.sessionsLost)
                .join('/')}.`,
        header: ['system', 'runs', 'users', 'sessions lost', 'cart lines lost', 'failed requests', 'recovery ms'],
        rows: all.map(({ system, runs }) => [
          system,
          runs.length,
          runs[0]!.users,
          spread(runs.map((r) => r.sessionsLost)),
          `${spread(runs.map((r) => r.cartLinesLost))} of ${runs[0]!.cartLinesBefore}`,
          spread(runs.map((r) => r.failedRequests)),
          spread(runs.map((r) => r.recoveryMs)),
        ]),
        charts: [
          {
            title: 'Sessions lost when one of three servers is SIGKILLed (median)',
            axis: '% of users',
            values: all.map(({ system, runs }) => ({
              label: system,
              value: (100 * median(runs.map((r) => r.sessionsLost))) / runs[0]!.users,
            })),
          },
          {
            title: 'Cart lines lost (median)',
            axis: '% of cart lines',
            values: all.map(({ system, runs }) => ({
              label: system,
              value: (100 * median(runs.map((r) => r.cartLinesLost))) / runs[0]!.cartLinesBefore,
            })),
          },
        ],
      },
    ];
  },
};
