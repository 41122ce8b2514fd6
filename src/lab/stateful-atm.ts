/**
 * The articles' stateful ATM, shown once (the atm experiment's second section): each server
 * remembers the balance it first showed and applies only its own movements to it. One account,
 * two ATMs (s1 and s2, reached with an access token so the session is no one server's), a
 * withdrawal at each, then s1 SIGKILLed and started again.
 */
import type { Section } from './experiment.ts';
import type { LabInfrastructure } from './infrastructure.ts';
import { startLabCluster, type LabSystem } from './lab-cluster.ts';
import { PIN_HEADER, SignedInClient } from './signed-in-client.ts';
import { serverUp } from './until.ts';

export interface StatefulAtmStep {
  step: string;
  /** What ATM s1 and ATM s2 show for the account now. */
  s1: number;
  s2: number;
  /** The ledger's balance (its last posting's balance after). */
  ledger: number;
}

export interface StatefulAtmDemo {
  system: string;
  steps: StatefulAtmStep[];
  /** s2 showed more than the ledger held by this much after a withdrawal at s1. */
  staleCents: number;
  /** Withdrawing what s2 showed was refused by the ledger (409 insufficient_funds). */
  ledgerRefusedShownBalance: boolean;
  /** After its SIGKILL, s1 showed the ledger's balance: what it remembered was gone. */
  forgotAfterCrash: boolean;
}

export async function statefulAtmDemo(system: LabSystem, infra: LabInfrastructure): Promise<StatefulAtmDemo> {
  const cluster = await startLabCluster(system, infra, 2);
  try {
    const user = await SignedInClient.register(cluster.url, `atm_demo_${Date.now().toString(36)}`, 's1');
    const token = await user.accessToken();
    const at = (server: string) => ({ authorization: `Bearer ${token}`, [PIN_HEADER]: server });
    const shown = async (server: string): Promise<number> => {
      const answer = await user.attempt((signal) => user.api.GET('/api/bank/account', { headers: at(server), signal }));
      if (answer.status !== 200 || !answer.data)
        throw new Error(`ATM ${server}: ${answer.status} ${JSON.stringify(answer.failure)}`);
      return answer.data.balanceCents;
    };
    const ledger = async (): Promise<number> => {
      const answer = await user.attempt((signal) =>
        user.api.GET('/api/bank/transactions', { headers: at('s1'), signal }),
      );
      if (!answer.data) throw new Error(`ledger: ${answer.status} ${JSON.stringify(answer.failure)}`);
      const last = answer.data.transactions[0];
      return last ? last.balanceAfterCents : shown('s1');
    };
    let keys = 0;
    const withdraw = (server: string, amountCents: number) =>
      user.attempt((signal) =>
        user.api.POST('/api/bank/withdraw', {
          body: { amountCents },
          params: { header: { 'Idempotency-Key': `demo-${keys++}` } },
          headers: at(server),
          signal,
        }),
      );
    const steps: StatefulAtmStep[] = [];
    const note = async (step: string) => {
      // The ledger first: reading it through s1 must not be what s1 shows next.
      const truth = await ledger();
      steps.push({ step, s1: await shown('s1'), s2: await shown('s2'), ledger: truth });
    };

    await note('both ATMs show the account');
    const first = await withdraw('s1', 30_000);
    if (first.status !== 200) throw new Error(`withdraw at s1: ${first.status}`);
    await note('300.00 withdrawn at s1');
    const staleCents = steps.at(-1)!.s2 - steps.at(-1)!.ledger;
    const refused = await withdraw('s2', steps.at(-1)!.s2);
    await note(`s2 asked for all it shows (${refused.status === 409 ? 'refused by the ledger' : refused.status})`);
    const second = await withdraw('s2', 50_000);
    if (second.status !== 200) throw new Error(`withdraw at s2: ${second.status}`);
    await note('500.00 withdrawn at s2');
    const s1 = cluster.supervisor.server('s1')!;
    await s1.kill();
    await s1.start();
    await serverUp(() => cluster.supervisor.view(), 's1');
    await note('s1 SIGKILLed and started again');
    const last = steps.at(-1)!;
    return {
      system: system.name,
      steps,
      staleCents,
      ledgerRefusedShownBalance: refused.status === 409 && refused.failure?.error.code === 'insufficient_funds',
      forgotAfterCrash: last.s1 === last.ledger && steps.at(-2)!.s1 !== steps.at(-2)!.ledger,
    };
  } finally {
    await cluster.stop();
  }
}

const money = (cents: number) => (cents / 100).toFixed(2);

export function statefulAtmSection(demo: StatefulAtmDemo): Section {
  const works = demo.staleCents > 0 && demo.ledgerRefusedShownBalance && demo.forgotAfterCrash;
  return {
    title: 'The stateful ATM: a balance remembered in server memory',
    claim:
      'The articles\u2019 stateful ATM keeps the balance it showed in its own memory: fast, but another ATM does not see its withdrawals, and a crash forgets what it knew.',
    verdict: works
      ? `Confirmed, and harmless to the money: after a withdrawal at s1, s2 still showed ${money(demo.staleCents)} more than the account held; withdrawing what s2 showed was refused by the ledger; after its SIGKILL, s1 had forgotten its figure and showed the ledger\u2019s.`
      : `Not as described: s2 was stale by ${money(demo.staleCents)}, the ledger ${demo.ledgerRefusedShownBalance ? 'refused' : 'did not refuse'} the shown balance, s1 ${demo.forgotAfterCrash ? 'forgot' : 'did not forget'} after its crash.`,
    header: ['step', 'ATM s1 shows', 'ATM s2 shows', 'ledger'],
    rows: demo.steps.map((s) => [s.step, money(s.s1), money(s.s2), money(s.ledger)]),
    charts: [],
    notes: [
      `${demo.system}, two servers, one account, one run: a demonstration, not a measurement. The money is guarded by the central ledger in every mode; only what an ATM shows comes from its memory.`,
    ],
  };
}
