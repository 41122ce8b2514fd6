import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import type { Experiment, Section } from '../experiment.ts';
import type { LabInfrastructure } from '../infrastructure.ts';
import { startLabCluster, type LabCluster, type LabSystem } from '../lab-cluster.ts';
import { systemsToRun } from '../quick-systems.ts';
import { PIN_HEADER, SignedInClient } from '../signed-in-client.ts';
import { median, spread } from '../stats.ts';
import { serverUp, until } from '../until.ts';
import { statefulAtmDemo, statefulAtmSection, type StatefulAtmDemo } from '../stateful-atm.ts';

/**
 * How the ATM retries a withdrawal that failed: with the same Idempotency-Key, or as a new request.
 * The bank refuses a withdrawal without a key (400), so "no keys" is a client that makes a fresh
 * key for every attempt: to the server each retry is a new operation, as without idempotency.
 */
export type AtmClient = 'keys' | 'no keys';

export interface AtmRun {
  system: string;
  client: AtmClient;
  servers: number;
  atms: number;
  amountCents: number;
  /** Servers SIGKILLed (one after the other, each but the last started again) while the ATMs withdrew. */
  kills: number;
  /** Withdrawals the ATMs made (each retried until it succeeded): the cash they handed out. */
  intended: number;
  /** Attempts the ATMs saw fail (no answer, 5xx, 409 in progress) and retried. */
  failedAttempts: number;
  /** Answers replayed from a key's stored answer (Idempotent-Replayed): retries whose first attempt had been made. */
  replayed: number;
  /**
   * Without keys: the failed attempts the ledger posted all the same (each attempt has its own key,
   * and theirs is on a withdrawal): the server committed, then died before it answered. Each is a
   * withdrawal made twice, counted from the keys, apart from `posted`. Null with keys: the retry
   * posts under the failed attempt's own key, so the ledger cannot tell them apart (the replayed
   * answers can).
   */
  failedButPosted: number | null;
  /** Withdrawal postings in the ledger. */
  posted: number;
  /** posted - intended: withdrawals the customers paid for and never got the cash of. */
  doubleWithdrawals: number;
  /** Accounts whose balance plus their withdrawals is not their opening balance (the ledger's own sum). */
  unbalancedAccounts: number;
  /** Opening balances - (balances + the cash the ATMs handed out), over every account. */
  customerShortCents: number;
  durationMs: number;
}

export interface AtmResults {
  runs: Array<{ system: string; client: AtmClient; runs: AtmRun[] }>;
  /** The stateful ATM (what a server remembers of a balance), once; absent when not run. */
  stateful?: StatefulAtmDemo;
}

interface Plan {
  servers: number;
  /** ATMs of each client. */
  atms: number;
  /** Withdrawals each ATM makes, about, before the first kill, between kills and after the last. */
  between: number;
  amountCents: number;
  kills: number;
}

/** One ATM: its user, the server it talks to (pinned), and what it saw. */
interface Atm {
  client: AtmClient;
  user: SignedInClient;
  home: string | null;
  openingCents: number;
  withdrawals: number;
  cashCents: number;
  failedAttempts: number;
  replayed: number;
  /** The Idempotency-Keys of the attempts it saw fail. */
  failedKeys: Set<string>;
}

const AMOUNT_CENTS = 100;
/** An intended withdrawal still failing after this is an error of the experiment, not a figure. */
const GIVE_UP_MS = 30_000;
const CLIENTS: readonly AtmClient[] = ['keys', 'no keys'];

/**
 * Makes one withdrawal happen, retrying until it succeeds. The ATM talks to its home server
 * (pinned, so a crash reaches it as a failure: the balancer does not move a pinned request); a
 * failed attempt is retried through the balancer, and the server that answers becomes its home.
 */
async function withdrawOnce(atm: Atm, amountCents: number): Promise<void> {
  let key = randomUUID();
  const started = performance.now();
  for (let attempt = 0; ; attempt++) {
    if (atm.client === 'no keys' && attempt > 0) key = randomUUID();
    const answer = await atm.user.attempt((signal) =>
      atm.user.api.POST('/api/bank/withdraw', {
        body: { amountCents },
        params: { header: { 'Idempotency-Key': key } },
        headers: atm.home ? { [PIN_HEADER]: atm.home } : {},
        signal,
      }),
    );
    if (answer.status === 200) {
      atm.withdrawals++;
      atm.cashCents += amountCents;
      if (answer.replayed) atm.replayed++;
      atm.home = answer.server;
      return;
    }
    const inProgress = answer.status === 409 && answer.failure?.error.code === 'idempotency_in_progress';
    if (answer.status !== 0 && answer.status < 500 && !inProgress)
      throw new Error(`${atm.user.username} withdraw: ${answer.status} ${JSON.stringify(answer.failure)}`);
    atm.failedAttempts++;
    atm.failedKeys.add(key);
    atm.home = null;
    if (performance.now() - started > GIVE_UP_MS) throw new Error(`a withdrawal failing for ${GIVE_UP_MS} ms`);
    await delay(20); // A retry's pause, as an ATM would make (not a synchronisation).
  }
}

/**
 * The ledger's truth for each ATM's account, read from PostgreSQL as an auditor would: balance,
 * withdrawals, and how many of the attempts the ATM saw fail were posted all the same.
 */
async function ledgerOf(databaseUrl: string, atms: Atm[]) {
  const usernames = atms.map((a) => a.user.username);
  const client = new pg.Client(databaseUrl);
  await client.connect();
  try {
    const failedKeys = atms.flatMap((a) => [...a.failedKeys]);
    const posted = await client.query<{ key: string }>(
      `SELECT DISTINCT idempotency_key AS key FROM ledger WHERE kind = 'withdrawal' AND idempotency_key = ANY($1)`,
      [failedKeys],
    );
    const postedKeys = new Set(posted.rows.map((r) => r.key));
    const { rows } = await client.query<{ username: string; balance: string; count: string; sum: string }>(
      `SELECT u.username, a.balance_cents AS balance,
              count(l.id) FILTER (WHERE l.kind = 'withdrawal') AS count,
              coalesce(sum(l.amount_cents) FILTER (WHERE l.kind = 'withdrawal'), 0) AS sum
         FROM users u JOIN accounts a ON a.user_id = u.id LEFT JOIN ledger l ON l.user_id = u.id
        WHERE u.username = ANY($1) GROUP BY u.username, a.balance_cents`,
      [usernames],
    );
    const byName = new Map(rows.map((r) => [r.username, r]));
    return atms.map((atm) => {
      const row = byName.get(atm.user.username);
      if (!row) throw new Error(`no account for ${atm.user.username}`);
      return {
        balance: Number(row.balance),
        withdrawals: Number(row.count),
        withdrawnCents: Number(row.sum),
        failedButPosted: [...atm.failedKeys].filter((key) => postedKeys.has(key)).length,
      };
    });
  } finally {
    await client.end();
  }
}

/**
 * SIGKILLs servers one after the other (s2 first, the crash experiment's victim), each once the
 * ATMs made about `between` withdrawals each since the last, and starts each again but the last;
 * then lets them make as many again, and stops them. The ATMs work until this is over, so every
 * kill lands under load however long a restart takes.
 */
async function killAlong(cluster: LabCluster, plan: Plan, done: () => number) {
  const ids = Array.from({ length: plan.servers }, (_, i) => `s${i + 1}`);
  const victims = [...ids.slice(1), ids[0]!].slice(0, plan.kills);
  const step = 2 * plan.atms * plan.between;
  const further = async (what: string) => {
    const from = done();
    await until(() => done() >= from + step, what);
  };
  for (const [n, id] of victims.entries()) {
    await further(`${id}'s turn`);
    const server = cluster.supervisor.server(id)!;
    await server.kill();
    if (n === victims.length - 1) break;
    await server.start();
    await serverUp(() => cluster.supervisor.view(), id);
  }
  await further('the withdrawals after the last kill');
}

/** What one client's ATMs did, from their own counts and the ledger's. */
function tally(
  system: LabSystem,
  plan: Plan,
  client: AtmClient,
  atms: Atm[],
  ledgers: Awaited<ReturnType<typeof ledgerOf>>,
  durationMs: number,
): AtmRun {
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const posted = sum(ledgers.map((l) => l.withdrawals));
  const intended = sum(atms.map((a) => a.withdrawals));
  return {
    system: system.name,
    client,
    servers: plan.servers,
    atms: atms.length,
    amountCents: plan.amountCents,
    kills: plan.kills,
    intended,
    failedAttempts: sum(atms.map((a) => a.failedAttempts)),
    replayed: sum(atms.map((a) => a.replayed)),
    failedButPosted: client === 'no keys' ? sum(ledgers.map((l) => l.failedButPosted)) : null,
    posted,
    doubleWithdrawals: posted - intended,
    unbalancedAccounts: atms.filter((a, i) => ledgers[i]!.balance + ledgers[i]!.withdrawnCents !== a.openingCents)
      .length,
    customerShortCents: sum(atms.map((a, i) => a.openingCents - ledgers[i]!.balance - a.cashCents)),
    durationMs,
  };
}

/**
 * One run on a fresh cluster: the ATMs of both clients (fresh accounts, spread over the servers)
 * withdraw at the same time, so both meet the same crashes.
 */
export async function atmOnce(system: LabSystem, infra: LabInfrastructure, plan: Plan): Promise<AtmRun[]> {
  const cluster = await startLabCluster(system, infra, plan.servers);
  try {
    const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 5)}`;
    const atms: Atm[] = await Promise.all(
      Array.from({ length: 2 * plan.atms }, async (_, i) => {
        const client = CLIENTS[i % 2]!;
        const user = await SignedInClient.register(cluster.url, `atm_${run}_${i}`);
        const opening = await user.attempt((signal) => user.api.GET('/api/bank/account', { signal }));
        if (opening.status !== 200 || !opening.data) throw new Error(`account: ${opening.status}`);
        const home = `s${(Math.floor(i / 2) % plan.servers) + 1}`;
        const openingCents = opening.data.balanceCents;
        const counts = { withdrawals: 0, cashCents: 0, failedAttempts: 0, replayed: 0 };
        return { client, user, home, openingCents, ...counts, failedKeys: new Set<string>() };
      }),
    );
    let done = 0;
    let stop = false;
    let failed: unknown;
    const started = performance.now();
    const working = Promise.all(
      atms.map(async (atm) => {
        while (!stop) {
          await withdrawOnce(atm, plan.amountCents);
          done++;
        }
      }),
    ).catch((error: unknown) => {
      [failed, stop] = [error, true];
      throw error;
    });
    // The ATMs work until the kills are over; an ATM that gives up ends the kills too.
    const progress = () => {
      if (failed) throw failed;
      return done;
    };
    await Promise.all([working, killAlong(cluster, plan, progress).finally(() => (stop = true))]);
    const durationMs = Math.round(performance.now() - started);
    const ledgers = await ledgerOf(infra.databaseUrl, atms);
    return CLIENTS.map((client) => {
      const mine = atms.flatMap((a, i) => (a.client === client ? [i] : []));
      return tally(
        system,
        plan,
        client,
        mine.map((i) => atms[i]!),
        mine.map((i) => ledgers[i]!),
        durationMs,
      );
    });
  } finally {
    await cluster.stop();
  }
}

const planFor = (quick: boolean): Plan =>
  quick
    ? { servers: 2, atms: 8, between: 5, kills: 1, amountCents: AMOUNT_CENTS }
    : { servers: 3, atms: 30, between: 10, kills: 3, amountCents: AMOUNT_CENTS };

export const atm: Experiment<AtmResults> = {
  name: 'atm',
  // Money is the ledger's in every mode: the stateless systems measure it; the stateful one shows its ATM once.
  steps: (ctx) => systemsToRun(ctx, 'stateless').length * ctx.repeat + systemsToRun(ctx, 'stateful').length,
  async run(ctx) {
    const results: AtmResults = { runs: [] };
    for (const system of systemsToRun(ctx, 'stateless')) {
      const byClient: Record<AtmClient, AtmRun[]> = { keys: [], 'no keys': [] };
      for (let run = 1; run <= ctx.repeat; run++) {
        ctx.step(`atm: ${system.name} (run ${run} of ${ctx.repeat})`);
        for (const arm of await atmOnce(system, ctx.infra, planFor(ctx.quick))) byClient[arm.client].push(arm);
      }
      for (const client of ['keys', 'no keys'] as const)
        results.runs.push({ system: system.name, client, runs: byClient[client] });
    }
    const [stateful] = systemsToRun(ctx, 'stateful');
    if (stateful) {
      ctx.step(`atm: ${stateful.name}, what an ATM remembers`);
      results.stateful = await statefulAtmDemo(stateful, ctx.infra);
    }
    return results;
  },
  report(results): Section[] {
    const all = results.runs.flatMap((r) => r.runs);
    const withKeys = all.filter((r) => r.client === 'keys');
    const without = all.filter((r) => r.client === 'no keys');
    const sum = (runs: AtmRun[], f: (r: AtmRun) => number) => runs.reduce((n, r) => n + f(r), 0);
    const keysExact = withKeys.every((r) => r.doubleWithdrawals === 0 && r.customerShortCents === 0);
    const balanced = all.every((r) => r.unbalancedAccounts === 0);
    const doubles = sum(without, (r) => r.doubleWithdrawals);
    const failedWithout = sum(without, (r) => r.failedAttempts);
    const verdict = !keysExact
      ? `Refuted here: with keys, ${sum(withKeys, (r) => r.doubleWithdrawals)} withdrawals were posted twice.`
      : doubles > 0
        ? `Confirmed: with keys every withdrawal was posted exactly once (${sum(withKeys, (r) => r.posted)} postings for ${sum(withKeys, (r) => r.intended)} withdrawals, ${sum(withKeys, (r) => r.failedAttempts)} failed attempts retried, ${sum(withKeys, (r) => r.replayed)} of them answered from the key's stored answer, 0 cents missing); without them, ${failedWithout} retries withdrew ${doubles} withdrawal${doubles === 1 ? '' : 's'} twice (${((doubles * AMOUNT_CENTS) / 100).toFixed(2)} taken without cash).`
        : `Depends: with keys every withdrawal was posted once; without them the ${failedWithout} retries happened to double nothing in these runs (a retry doubles a withdrawal only when the crash fell after the ledger's commit and before the answer).`;
    const first = (runs: AtmRun[]) => runs[0]!;
    const sections: Section[] = [
      {
        title: 'ATM: withdrawals while servers are SIGKILLed, retried with and without idempotency keys',
        claim:
          'The articles: a stateless server can crash at any moment and the client simply retries. Retrying a withdrawal is safe only if the server can tell a retry from a new withdrawal (an Idempotency-Key); without one, a retry after a crash withdraws twice. Either way the ledger itself must balance.',
        verdict: `${verdict} ${balanced ? 'Every account balanced (balance + withdrawals = opening) in every run.' : 'Some ledger did NOT balance.'}`,
        header: [
          'system',
          'client',
          'runs',
          'ATMs',
          'kills',
          'failed attempts (retried)',
          'replayed answers',
          'failed attempts posted anyway',
          'withdrawals posted of made',
          'double withdrawals',
          'customers short (cents)',
          'accounts unbalanced',
        ],
        rows: results.runs.map(({ system, client, runs }) => [
          system,
          client === 'keys' ? 'same key on retry' : 'new key per attempt (no idempotency)',
          runs.length,
          first(runs).atms,
          `${first(runs).kills} of ${first(runs).servers} servers`,
          spread(runs.map((r) => r.failedAttempts)),
          spread(runs.map((r) => r.replayed)),
          client === 'no keys' ? spread(runs.map((r) => r.failedButPosted ?? 0)) : '\u2014',
          `${spread(runs.map((r) => r.posted))} of ${spread(runs.map((r) => r.intended))}`,
          spread(runs.map((r) => r.doubleWithdrawals)),
          spread(runs.map((r) => r.customerShortCents)),
          spread(runs.map((r) => r.unbalancedAccounts)),
        ]),
        charts: [
          {
            title: 'Withdrawals posted twice (median per run)',
            axis: 'double withdrawals',
            values: results.runs.map(({ system, client, runs }) => ({
              label: system,
              series: client === 'keys' ? 'same key on retry' : 'new key per attempt',
              value: median(runs.map((r) => r.doubleWithdrawals)),
            })),
          },
          {
            title: 'Attempts that failed and were retried (median per run)',
            axis: 'failed attempts',
            values: results.runs.map(({ system, client, runs }) => ({
              label: system,
              series: client === 'keys' ? 'same key on retry' : 'new key per attempt',
              value: median(runs.map((r) => r.failedAttempts)),
            })),
          },
        ],
        notes: [
          'The bank refuses a withdrawal without an Idempotency-Key (400), so the "no idempotency" client sends a fresh key with every attempt: to the server each retry is a new withdrawal, which is what a client without keys does.',
          'Each ATM talks to one server (X-Statewise-Server) so a crash reaches it as a failure; it retries through the balancer, and the server that answers becomes its own. Through the balancer without a pin, the balancer itself re-sends a keyed request whose connection failed to another server, and the client never sees the crash: it may do so only because a key makes the repeat safe.',
          'A double withdrawal needs the crash to fall between the ledger\u2019s commit and the answer: how many there are depends on timing (2 shared cores, other processes running), so the count varies from run to run; what does not vary is that with keys there are none.',
          'The ATMs withdraw until the kills are over (each kill comes after about the same number of withdrawals per ATM), so the number of withdrawals varies from run to run. The ledger is read from PostgreSQL directly, as an auditor would.',
          'Without keys every attempt has its own key, so a failed attempt posted anyway is one whose key is on a withdrawal in the ledger: the server committed, then died before it answered, and the retry withdrew again. The doubles column is counted apart, as what the ledger posted beyond what the ATMs handed out: the two counts agree. With keys the retry posts under the same key, so the ledger cannot tell; the replayed answers show the retries whose first attempt had gone through.',
          'Stateless systems only: the money is the central ledger\u2019s in every mode; the stateful mode changes only what an ATM shows (next section, when it ran).',
        ],
      },
    ];
    if (results.stateful) sections.push(statefulAtmSection(results.stateful));
    return sections;
  },
};
