/**
 * `npm run lab -- crash --quick` as CI's smoke test: whole systems (the supervisor, 3 app servers,
 * the balancer) on the test's PostgreSQL and redis-server; the report's files and structure, and
 * the crash invariants: the stateless systems lose nothing, the stateful one loses something.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { CrashResults } from '../../src/lab/experiments/crash.ts';
import { runLab, type LabResults } from '../../src/lab/run-lab.ts';
import { freshDatabase } from '../support/postgres.ts';
import { startRedisServer } from '../support/redis.ts';

const crashOf = (results: LabResults) => results.experiments.crash as CrashResults | undefined;

describe('the lab, --quick', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it(
    'crash: stateless loses no session and no cart line; stateful loses the killed server’s',
    { timeout: 300_000 },
    async () => {
      const redis = await startRedisServer();
      cleanups.push(() => redis.stop());
      const outDir = await mkdtemp(join(tmpdir(), 'statewise-lab-test-'));
      cleanups.push(() => rm(outDir, { recursive: true, force: true }));
      const infra = { databaseUrl: await freshDatabase(), redisUrl: redis.url, stop: async () => {} };
      await runLab({ experiments: ['crash'], quick: true, infra, outDir, log: () => {} });

      const results = JSON.parse(await readFile(join(outDir, 'results.json'), 'utf8')) as LabResults;
      assert.deepEqual(
        crashOf(results)?.map((r) => r.system),
        [
          'stateful (server memory, sticky)',
          'stateless, postgres',
          'stateless, redis',
          'API tokens, stateful (server memory, sticky)',
        ],
      );
      for (const { system, runs } of crashOf(results)!) {
        assert.equal(runs.length, 1, `${system}: one run with --quick`);
      }
      for (const r of crashOf(results)!.flatMap((system) => system.runs)) {
        assert.equal(r.users, 30);
        assert.ok(r.usersOnKilledServer > 0, `${r.system}: someone was on the killed server`);
        if (r.system.startsWith('stateless')) {
          assert.deepEqual([r.sessionsLost, r.cartLinesLost], [0, 0], `${r.system} lost nothing`);
        } else if (r.system.startsWith('API tokens')) {
          // The token outlives its server; the cart in that server's memory does not.
          assert.equal(r.sessionsLost, 0, 'tokens: nobody signed out');
          assert.equal(r.cartLinesLost, 2 * r.usersOnKilledServer, 'tokens: the killed server’s carts lost');
        } else {
          assert.equal(r.sessionsLost, r.usersOnKilledServer, 'stateful: exactly the killed server’s users');
          assert.equal(r.cartLinesLost, 2 * r.usersOnKilledServer);
        }
      }
      assert.match(results.machine.postgres ?? '', /^\d+\.\d+/, 'the PostgreSQL version is named');
      assert.match(results.machine.redis ?? '', /^\d+\.\d+\.\d+/, 'the Redis version is named');
      const markdown = await readFile(join(outDir, 'report.md'), 'utf8');
      assert.match(markdown, /^# statewise lab report/m);
      assert.match(markdown, /\*\*Confirmed: /);
      const html = await readFile(join(outDir, 'report.html'), 'utf8');
      assert.match(html, /<table>/);
      assert.equal(html.match(/<figure><svg /g)?.length, 2, 'two charts, drawn inline');
      assert.doesNotMatch(html, /<script|(src|href)="https?:/, 'self-contained: no script, nothing fetched');
    },
  );
});
