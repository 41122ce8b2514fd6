import { setTimeout as delay } from 'node:timers/promises';
import type { Answer } from '../../client/api-client.ts';
import { repeatEach, runsOf, type SystemRuns, type Experiment, type Section } from '../experiment.ts';
import type { LabInfrastructure } from '../infrastructure.ts';
import { startLabCluster, type LabSystem } from '../lab-cluster.ts';
import { systemsToRun } from '../quick-systems.ts';
import { SignedInClient } from '../signed-in-client.ts';
import { median, percentile, spread } from '../stats.ts';
import { until } from '../until.ts';

export interface DeployRun {
  system: string;
  servers: number;
  users: number;
  /** What the supervisor said it would lose before it started (null: sessions are shared). */
  sessionsAtRisk: number | null;
  /** Every request of the load, and those sent while the rolling restart ran. */
  requests: number;
  requestsDuringRestart: number;
  /** No answer or a 5xx. */
  failedRequests: number;
  /** Answers other than 2xx, 401 and 5xx (e.g. 429): none expected. */
  otherErrors: number;
  /** Users whose session was gone (401) before the end. */
  sessionsLost: number;
  restartMs: number;
  p99BeforeMs: number;
  p99DuringMs: number;
}

/** One signed-in user of the load: alternates "who am I" and a cart write until told to stop. */
interface LoadUser {
  client: SignedInClient;
  requests: number;
  lost: boolean;
}

interface Sample {
  at: number;
  ms: number;
  status: number;
}

const sizes = (quick: boolean) =>
  quick ? { servers: 2, users: 8, pauseMs: 80 } : { servers: 3, users: 40, pauseMs: 100 };

/**
 * One run: signed-in users make steady requests (GET /api/me, then a cart write) while the
 * supervisor drains and restarts every server, one at a time. A user whose session is gone (401)
 * stops: it would have to sign in again.
 */
export async function deployOnce(system: LabSystem, infra: LabInfrastructure, quick: boolean): Promise<DeployRun> {
  const { servers, users: count, pauseMs } = sizes(quick);
  const cluster = await startLabCluster(system, infra, servers);
  try {
    const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 5)}`;
    const users: LoadUser[] = await Promise.all(
      Array.from({ length: count }, async (_, i) => ({
        client: await SignedInClient.register(cluster.url, `deploy_${run}_${i}`),
        requests: 0,
        lost: false,
      })),
    );
    const first = users[0]!.client;
    const menu = await first.attempt((signal) => first.api.GET('/api/menu', { signal }));
    if (!menu.data) throw new Error(`menu: ${menu.status}`);
    const itemId = menu.data.items[0]!.id;
    const samples: Sample[] = [];
    let stopping = false;
    const ask = async <T>(user: LoadUser, call: (signal: AbortSignal) => Promise<Answer<T>>) => {
      const at = performance.now();
      const answer = await user.client.attempt(call);
      samples.push({ at, ms: performance.now() - at, status: answer.status });
      user.requests++;
      return answer;
    };
    const load = Promise.all(
      users.map(async (user, i) => {
        while (!stopping) {
          const me = await ask(user, (signal) => user.client.api.GET('/api/me', { signal }));
          if (me.status === 401) {
            user.lost = true;
            return;
          }
          await ask(user, (signal) =>
            user.client.api.PUT('/api/cart/items/{itemId}', {
              params: { path: { itemId } },
              body: { qty: (i % 5) + 1 },
              signal,
            }),
          );
          await delay(pauseMs); // The load's pace, not a synchronisation.
        }
      }),
    );
    const active = () => users.filter((u) => !u.lost);
    const settled = async (what: string) => {
      const marks = users.map((u) => u.requests);
      await until(
        () => users.every((u, i) => u.lost || u.requests >= marks[i]! + 4),
        `every signed-in user to make requests ${what}`,
      );
    };
    await settled('before the restart');
    const restartFrom = performance.now();
    const { sessionsAtRisk, done } = await cluster.supervisor.rollingRestart();
    await done;
    const restartTo = performance.now();
    await settled('after the restart');
    stopping = true;
    await load;

    const during = samples.filter((s) => s.at >= restartFrom && s.at <= restartTo);
    const before = samples.filter((s) => s.at < restartFrom);
    const latency = (xs: Sample[]) =>
      xs.length === 0
        ? 0
        : Math.round(
            percentile(
              xs.map((s) => s.ms),
              0.99,
            ),
          );
    return {
      system: system.name,
      servers,
      users: count,
      sessionsAtRisk,
      requests: samples.length,
      requestsDuringRestart: during.length,
      failedRequests: samples.filter((s) => s.status === 0 || s.status >= 500).length,
      otherErrors: samples.filter((s) => s.status !== 401 && s.status >= 300 && s.status < 500).length,
      sessionsLost: count - active().length,
      restartMs: Math.round(restartTo - restartFrom),
      p99BeforeMs: latency(before),
      p99DuringMs: latency(during),
    };
  } finally {
    await cluster.stop();
  }
}

export type DeployResults = SystemRuns<DeployRun>[];

export const deploys: Experiment<DeployResults> = {
  name: 'deploys',
  steps: (ctx) => systemsToRun(ctx).length * ctx.repeat,
  run: (ctx) => repeatEach(ctx, 'deploys', systemsToRun(ctx), (system) => deployOnce(system, ctx.infra, ctx.quick)),
  report(all): Section[] {
    const of = (prefix: string) => runsOf(all, prefix);
    const stateless = of('stateless');
    const stateful = of('stateful');
    const statelessClean = stateless.every((r) => r.sessionsLost === 0 && r.failedRequests === 0);
    const statelessKept = stateless.every((r) => r.sessionsLost === 0);
    const statefulLost = stateful.length > 0 && stateful.every((r) => r.sessionsLost > 0);
    const list = (runs: DeployRun[], f: (r: DeployRun) => number) => runs.map(f).join('/');
    const share = (r: DeployRun) => Math.round((100 * r.sessionsLost) / r.users);
    const verdict =
      statelessClean && statefulLost
        ? `Confirmed: a rolling restart of every server cost the stateless systems no session and no request; the stateful one signed out ${list(stateful, share)}% of its users (every server restarts, so every user\u2019s server goes).`
        : statelessKept && statefulLost
          ? `Confirmed for sessions, not quite for requests: the stateless systems kept every session but ${list(stateless, (r) => r.failedRequests)} requests failed; the stateful one signed out ${list(stateful, share)}% of its users.`
          : `Not as claimed here: stateless lost ${list(stateless, (r) => r.sessionsLost)} sessions, stateful ${list(stateful, (r) => r.sessionsLost)}.`;
    return [
      {
        title: 'Deploys: a rolling restart of every server under load',
        claim:
          'The articles: with stateless servers a deploy (restart every server, one at a time) is invisible to users; with stateful ones each restarted server takes its users\u2019 sessions with it.',
        verdict,
        header: [
          'system',
          'runs',
          'users',
          'servers',
          'said at risk',
          'requests (during restart)',
          'failed requests',
          'sessions lost',
          'restart ms',
          'p99 ms before',
          'p99 ms during',
        ],
        rows: all.map(({ system, runs }) => [
          system,
          runs.length,
          runs[0]!.users,
          runs[0]!.servers,
          runs[0]!.sessionsAtRisk === null ? 'none (shared)' : spread(runs.map((r) => r.sessionsAtRisk ?? 0)),
          `${spread(runs.map((r) => r.requests))} (${spread(runs.map((r) => r.requestsDuringRestart))})`,
          spread(runs.map((r) => r.failedRequests + r.otherErrors)),
          spread(runs.map((r) => r.sessionsLost)),
          spread(runs.map((r) => r.restartMs)),
          spread(runs.map((r) => r.p99BeforeMs)),
          spread(runs.map((r) => r.p99DuringMs)),
        ]),
        charts: [
          {
            title: 'Users signed out by a rolling restart (median)',
            axis: '% of users',
            values: all.map(({ system, runs }) => ({
              label: system,
              value: median(runs.map((r) => (100 * r.sessionsLost) / r.users)),
            })),
          },
          {
            title: 'p99 latency before and during the rolling restart (median)',
            axis: 'ms',
            values: all.flatMap(({ system, runs }) => [
              { label: system, series: 'before', value: median(runs.map((r) => r.p99BeforeMs)) },
              { label: system, series: 'during', value: median(runs.map((r) => r.p99DuringMs)) },
            ]),
          },
        ],
        notes: [
          'Each user alternates GET /api/me and a cart write, with a short pause; a user whose session is gone (401) stops, as it would have to sign in again. Failed requests are those with no answer or a 5xx (any other error is counted with them; none is expected).',
          '"Said at risk" is what the supervisor announced before it began, from the servers\u2019 last readiness checks: sessions made since are not in it, so it can be lower than what is lost.',
          'The supervisor drains a server (out of the rotation, in-flight requests finish), restarts it and waits for its health check before the next one: that is why the stateless systems lose nothing.',
          'Latency and restart times are from a 2-core machine shared with other work, with the balancer and the load in one process: read them as orders of magnitude.',
        ],
      },
    ];
  },
};
