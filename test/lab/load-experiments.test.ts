/**
 * `npm run lab -- cost scale stickiness --quick`: the load experiments on whole systems (the
 * supervisor, app servers, the balancer) with the test's PostgreSQL and redis-server. The figures
 * are noisy on a shared machine, so the checks are about what must hold on any machine: every
 * load got answers, percentiles are ordered, nothing beats a raw node:http hello, and a sticky
 * balancer with heavy users is less even than round robin.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { CostResult } from '../../src/lab/experiments/cost.ts';
import type { ScaleResult } from '../../src/lab/experiments/scale.ts';
import type { StickinessResult } from '../../src/lab/experiments/stickiness.ts';
import type { LoadResult } from '../../src/lab/load.ts';
import { runLab, type LabResults } from '../../src/lab/run-lab.ts';
import { freshDatabase } from '../support/postgres.ts';
import { startRedisServer } from '../support/redis.ts';

const SYSTEMS = ['stateful (server memory, sticky)', 'stateless, postgres', 'stateless, redis'];

function assertAnswered(label: string, load: LoadResult): void {
  assert.ok(load.requestsPerSecond > 0, `${label}: some throughput`);
  assert.ok(load.p99 >= load.p50, `${label}: p99 ${load.p99} >= p50 ${load.p50}`);
  assert.equal(load.failed, 0, `${label}: every answer 2xx`);
}

describe('the lab, --quick: cost, scale, stickiness', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  let outDir = '';
  let results: LabResults;
  /** Steps the experiments announced, and the total they promised (the progress bar's). */
  let stepsTaken = 0;
  let stepsPromised = 0;

  before(
    async () => {
      const redis = await startRedisServer();
      cleanups.push(() => redis.stop());
      outDir = await mkdtemp(join(tmpdir(), 'statewise-lab-test-'));
      cleanups.push(() => rm(outDir, { recursive: true, force: true }));
      const infra = { databaseUrl: await freshDatabase(), redisUrl: redis.url, stop: async () => {} };
      await runLab({
        experiments: ['cost', 'scale', 'stickiness'],
        quick: true,
        infra,
        outDir,
        log: () => {},
        progress: (_done, total, step) => {
          if (step !== 'report') stepsTaken++;
          stepsPromised = total;
        },
      });
      results = JSON.parse(await readFile(join(outDir, 'results.json'), 'utf8')) as LabResults;
    },
    { timeout: 240_000 },
  );
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('counts its steps right for the progress bar', () => {
    // cost: (1 ceiling + 2 operations) x 3 systems; scale: 2 stateless systems x 3 sizes; stickiness: 2 balancers.
    assert.equal(stepsPromised, 9 + 6 + 2);
    assert.equal(stepsTaken, stepsPromised);
  });

  it('cost: every system answers both operations, under the raw node:http ceiling', () => {
    const cost = results.experiments.cost as CostResult;
    assert.deepEqual(
      cost.systems.map((s) => s.system),
      SYSTEMS,
    );
    assert.equal(cost.ceiling.length, 1, 'one run with --quick');
    assertAnswered('ceiling', cost.ceiling[0]!);
    for (const { system, me, cart } of cost.systems) {
      assert.deepEqual([me.length, cart.length], [1, 1], `${system}: one run with --quick`);
      for (const [label, load] of [
        [`${system} GET /api/me`, me[0]!],
        [`${system} cart update`, cart[0]!],
      ] as const) {
        assertAnswered(label, load);
        assert.ok(
          load.requestsPerSecond < cost.ceiling[0]!.requestsPerSecond,
          `${label}: ${load.requestsPerSecond} req/s under the ceiling's ${cost.ceiling[0]!.requestsPerSecond}`,
        );
      }
    }
  });

  it('scale: 1, 2 and 3 servers for each stateless system, on the cores of this machine', () => {
    const scale = results.experiments.scale as ScaleResult;
    assert.equal(scale.cores, availableParallelism());
    assert.deepEqual(
      scale.systems.map((s) => s.system),
      SYSTEMS.filter((s) => s.startsWith('stateless')),
    );
    for (const { system, points } of scale.systems) {
      assert.deepEqual(
        points.map((p) => p.servers),
        [1, 2, 3],
      );
      for (const point of points) {
        assert.equal(point.runs.length, 1);
        assertAnswered(`${system}, ${point.servers} server(s)`, point.runs[0]!);
        const serving = Object.values(point.runs[0]!.perServer).filter((n) => n > 0);
        assert.equal(serving.length, point.servers, `${system}: the load reached all ${point.servers} server(s)`);
      }
    }
  });

  it('stickiness: heavy users make the sticky balancer less even than round robin', () => {
    const stickiness = results.experiments.stickiness as StickinessResult;
    const [sticky, roundRobin] = stickiness.balancers;
    assert.deepEqual([sticky?.balancer, roundRobin?.balancer], ['sticky', 'round-robin']);
    const { users, heavyUsers, heavyFactor, lightRequests } = stickiness;
    const requests = (users - heavyUsers) * lightRequests + heavyUsers * heavyFactor * lightRequests;
    for (const { balancer, runs } of stickiness.balancers) {
      const counts = Object.values(runs[0]!.perServer);
      assert.equal(
        counts.reduce((a, b) => a + b, 0),
        requests,
        `${balancer}: every request counted once`,
      );
    }
    assert.deepEqual(Object.keys(roundRobin!.runs[0]!.perServer).sort(), ['s1', 's2', 's3']);
    assert.ok(roundRobin!.runs[0]!.maxOverMean < 1.01, `round robin even: ${roundRobin!.runs[0]!.maxOverMean}`);
    assert.equal(
      Object.values(sticky!.runs[0]!.heavyPerServer ?? {}).reduce((a, b) => a + b, 0),
      heavyUsers,
      'each heavy user has a home server',
    );
    assert.ok(
      sticky!.runs[0]!.maxOverMean > roundRobin!.runs[0]!.maxOverMean + 0.1,
      `sticky ${sticky!.runs[0]!.maxOverMean} above round robin ${roundRobin!.runs[0]!.maxOverMean}`,
    );
    assert.ok(stickiness.expectedStickyMaxOverMean > 1.1);
  });

  it('report: a section each, charts inline, nothing fetched', async () => {
    const markdown = await readFile(join(outDir, 'report.md'), 'utf8');
    for (const title of ['## The cost of external state', '## Scale: 1 to 3', '## Stickiness']) {
      assert.ok(markdown.includes(title), `report.md has "${title}"`);
    }
    assert.match(markdown, /\*\*(Confirmed|Refuted|Depends)[^*]*\d+ req\/s/, 'a verdict with its figures');
    const html = await readFile(join(outDir, 'report.html'), 'utf8');
    assert.equal(html.match(/<figure><svg /g)?.length, 6, 'two charts per experiment, drawn inline');
    assert.doesNotMatch(html, /<script|(src|href)="https?:/, 'self-contained: no script, nothing fetched');
  });
});
