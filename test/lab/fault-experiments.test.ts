/**
 * `npm run lab -- chat atm memory deploys --quick` as a smoke test: whole systems on the test's
 * PostgreSQL and redis-server, the report's sections and charts, and each experiment's invariants:
 * ATM: with keys no withdrawal is posted twice and the money adds up, without keys each failed
 * attempt the ledger posted anyway is a withdrawal made twice; deploys: stateless keeps every
 * session; chat: stateless loses no message of the history and delivers it all; memory: every
 * measure grew by a positive number of bytes.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AtmResults } from '../../src/lab/experiments/atm.ts';
import type { ChatResults } from '../../src/lab/experiments/chat.ts';
import type { DeployResults } from '../../src/lab/experiments/deploys.ts';
import type { MemoryResults } from '../../src/lab/experiments/memory.ts';
import { runLab, type LabResults } from '../../src/lab/run-lab.ts';
import { freshDatabase } from '../support/postgres.ts';
import { startRedisServer } from '../support/redis.ts';

const EXPERIMENTS = ['chat', 'atm', 'memory', 'deploys'];

describe('the lab\u2019s fault experiments, --quick', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  let outDir: string;
  let results: LabResults;
  before(
    async () => {
      const redis = await startRedisServer();
      cleanups.push(() => redis.stop());
      outDir = await mkdtemp(join(tmpdir(), 'statewise-lab-faults-'));
      cleanups.push(() => rm(outDir, { recursive: true, force: true }));
      const infra = { databaseUrl: await freshDatabase(), redisUrl: redis.url, stop: async () => {} };
      await runLab({ experiments: EXPERIMENTS, quick: true, infra, outDir, log: () => {} });
      results = JSON.parse(await readFile(join(outDir, 'results.json'), 'utf8')) as LabResults;
    },
    { timeout: 600_000 },
  );
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('atm: with keys every withdrawal is posted once and the money adds up; without, doubles are counted', () => {
    const atm = results.experiments.atm as AtmResults;
    assert.ok(atm.runs.length >= 2, 'both clients ran');
    for (const { system, client, runs } of atm.runs) {
      assert.ok(system.startsWith('stateless'), `${system}: money is measured on stateless systems`);
      for (const r of runs) {
        const what = `${system}, ${client}`;
        assert.ok(r.kills >= 1 && r.failedAttempts > 0, `${what}: a server was killed under the ATMs, who saw it`);
        assert.equal(r.unbalancedAccounts, 0, `${what}: every account balances (balance + withdrawals = opening)`);
        assert.equal(
          r.customerShortCents,
          r.doubleWithdrawals * r.amountCents,
          `${what}: the missing cash is the doubles`,
        );
        if (client === 'keys') {
          assert.equal(r.posted, r.intended, `${what}: each intended withdrawal posted exactly once`);
          assert.equal(r.customerShortCents, 0, `${what}: money conserved`);
          assert.ok(r.replayed <= r.failedAttempts, `${what}: only a retry is a replay`);
        } else {
          // Counted two ways: the ledger's excess, and the failed attempts whose key is on a posting.
          assert.equal(r.doubleWithdrawals, r.failedButPosted, `${what}: each posted failure is a double`);
          assert.equal(r.replayed, 0, `${what}: a new key is never a replay`);
        }
      }
    }
    assert.ok(atm.stateful, 'the stateful ATM was shown');
    assert.ok(atm.stateful.staleCents > 0, 'the other ATM showed a stale balance');
    assert.ok(atm.stateful.ledgerRefusedShownBalance, 'the ledger refused the stale balance');
    assert.ok(atm.stateful.forgotAfterCrash, 'the crashed ATM forgot what it remembered');
  });

  it('deploys: a rolling restart loses no stateless session, and every stateful one', () => {
    const deploys = results.experiments.deploys as DeployResults;
    assert.ok(
      deploys.some((d) => d.system.startsWith('stateless')) && deploys.some((d) => d.system.startsWith('stateful')),
    );
    for (const { system, runs } of deploys) {
      for (const r of runs) {
        assert.ok(r.requestsDuringRestart > 0, `${system}: load ran during the restart`);
        if (system.startsWith('stateless')) {
          assert.equal(r.sessionsLost, 0, `${system}: no session lost`);
          assert.equal(r.sessionsAtRisk, null, `${system}: the supervisor said none was at risk`);
        } else {
          assert.equal(r.sessionsLost, r.users, `${system}: every server restarted, every session gone`);
        }
      }
    }
  });

  it('chat: stateless loses no message of the history and delivers it all; stateful stays on its server', () => {
    const chat = results.experiments.chat as ChatResults;
    for (const { system, runs } of chat) {
      for (const r of runs) {
        for (const p of [r.calm, r.killed]) {
          const what = `${system}, ${p.kill ? 'with' : 'without'} a kill`;
          assert.ok(p.sent > 0 && p.stored >= p.acked, `${what}: sent ${p.sent}, acked ${p.acked}, stored ${p.stored}`);
          assert.equal(p.lostFromHistory, 0, `${what}: every acknowledged message is in the history`);
          if (system.startsWith('stateless')) {
            assert.equal(p.acked, p.sent, `${what}: every send acknowledged`);
            assert.equal(p.signedOut, 0, `${what}: nobody signed out`);
            assert.equal(p.delivered, p.expected, `${what}: every member has the whole history`);
          }
        }
        if (system.startsWith('stateless'))
          assert.ok(r.calm.crossP99 !== null, `${system}: cross-server latency measured`);
        else {
          assert.ok(
            r.calm.crossDelivered < r.calm.crossExpected,
            `${system}: other servers' messages do not arrive live`,
          );
          assert.ok(r.killed.signedOut > 0, `${system}: the killed server's members lost their sessions`);
        }
      }
    }
  });

  it('memory: every store grew by a positive number of bytes per session, and per socket', () => {
    const memory = results.experiments.memory as MemoryResults;
    assert.deepEqual(
      memory.sessions.map((s) => s.system),
      ['stateful (server memory, sticky)', 'stateless, postgres', 'stateless, redis'],
    );
    for (const r of memory.sessions.flatMap((s) => s.runs)) {
      if (r.store === null)
        assert.ok(r.serverHeapPerSession > 0, `${r.system}: heap per session ${r.serverHeapPerSession}`);
      else assert.ok((r.storePerSession ?? 0) > 0, `${r.system}: ${r.store} per session ${r.storePerSession}`);
      if (r.store === 'redis') assert.ok((r.keyBytes ?? 0) > 0, 'MEMORY USAGE of a session');
    }
    const sockets = memory.sockets.flatMap((s) => s.runs);
    assert.equal(sockets.length, 1);
    assert.ok(sockets[0]!.heapPerSocket > 0, `heap per socket ${sockets[0]!.heapPerSocket}`);
  });

  it('writes every section, with charts drawn inline and nothing fetched', async () => {
    const markdown = await readFile(join(outDir, 'report.md'), 'utf8');
    for (const title of [
      'Chat: delivery between servers',
      'Chat: a server SIGKILLed mid-conversation',
      'ATM: withdrawals while servers are SIGKILLed',
      'The stateful ATM: a balance remembered in server memory',
      'Memory: what a session and a WebSocket cost',
      'Deploys: a rolling restart of every server under load',
    ]) {
      assert.match(markdown, new RegExp(`^## ${title}`, 'm'), title);
    }
    const html = await readFile(join(outDir, 'report.html'), 'utf8');
    // chat 2 + 1, atm 2, memory 2, deploys 2.
    assert.equal(html.match(/<figure><svg /g)?.length, 9, 'every chart, drawn inline');
    assert.doesNotMatch(html, /<script|(src|href)="?https?:/i, 'self-contained: no script, nothing fetched');
  });
});
