import { dataOf, type Answer } from '../../client/api-client.ts';
import { repeatEach, runsOf, type Experiment, type Section, type SystemRuns } from '../experiment.ts';
import type { LabInfrastructure } from '../infrastructure.ts';
import { startLabCluster, type LabSystem } from '../lab-cluster.ts';
import { outcome } from '../outcome.ts';
import { median, spread } from '../stats.ts';
import { Visitor } from '../visitor.ts';
import { patiently } from '../patiently.ts';
import { PIN_HEADER } from '../signed-in-client.ts';

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
const SERVERS = ['s1', 's2', 's3'] as const;
const PASSWORD = 'a long lab password';

/**
 * How the users say who they are: a session cookie (the server-side session of the system's
 * store), or an API token (a JWT: verified by any server, nothing of it kept anywhere). Token users
 * are pinned to a home server by header, as a sticky balancer would keep them, so that what a
 * stateful server holds for them (the cart) stays where it was made; after the kill those of s2
 * go to any server.
 */
export type CrashAuth = 'session' | 'token';
/** How the report names a system run with API tokens. */
const TOKENS_PREFIX = 'API tokens, ';

/**
 * Experiment 1, crash: M users sign in and fill a cart of two lines, spread over 3 servers (round
 * robin, or sticky in stateful mode); s2 is SIGKILLed; then every user asks who they are and what
 * is in their cart. Stateless systems should lose nothing; the stateful one loses what s2 held.
 */
/** A token user's headers: the bearer token, and the pin to its home server when `pinned`. */
const headersOf = (token: { authorization: string; home: string } | undefined, pinned: boolean) =>
  token ? { authorization: token.authorization, ...(pinned && { [PIN_HEADER]: token.home }) } : {};

export async function crashOnce(
  system: LabSystem,
  infra: LabInfrastructure,
  users: number,
  auth: CrashAuth = 'session',
): Promise<CrashResult> {
  const cluster = await startLabCluster(system, infra);
  try {
    const run = Date.now().toString(36);
    const visitors = Array.from({ length: users }, () => new Visitor(cluster.url));
    const menu = (await dataOf(visitors[0]!.api.GET('/api/menu'))).items;
    /** Token users: the bearer header, and the home server they are pinned to. */
    const tokens: Array<{ authorization: string; home: string }> = [];
    let cartLinesBefore = 0;
    await Promise.all(
      visitors.map(async (visitor, i) => {
        const username = `lab_${run}_${i}`;
        const registered = await patiently(() =>
          visitor.api.POST('/api/auth/register', { body: { username, password: PASSWORD } }),
        );
        if (registered.response.status !== 201)
          throw new Error(`register: ${registered.response.status} ${JSON.stringify(registered.error)}`);
        if (auth === 'token') {
          const { accessToken } = await dataOf(
            patiently(() => visitor.api.POST('/api/auth/token', { body: { username, password: PASSWORD } })),
          );
          tokens[i] = { authorization: `Bearer ${accessToken}`, home: SERVERS[i % SERVERS.length]! };
          // From here on the token alone says who the user is: a client without cookies.
          visitors[i] = visitor = new Visitor(cluster.url);
        }
        for (const item of menu.slice(0, 2)) {
          const added = await visitor.api.POST('/api/cart/items', {
            body: { itemId: item.id, qty: 1 },
            headers: headersOf(tokens[i], true),
          });
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
      visitors.map(async (visitor, i) => {
        const ask = async <T>(path: string, call: () => Promise<Answer<T>>) => {
          for (;;) {
            const answer = await outcome(call());
            if (answer.status !== 0 && answer.status < 500) return answer;
            failedRequests++;
            if (performance.now() - killedAt > 30_000) throw new Error(`${path} failing for 30 s`);
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        };
        const token = tokens[i];
        const headers = headersOf(token, token?.home !== KILLED);
        const me = await ask('/api/me', () => visitor.api.GET('/api/me', { headers }));
        const cart = await ask('/api/cart', () => visitor.api.GET('/api/cart', { headers }));
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

export type CrashResults = SystemRuns<CrashResult>[];

/** What the API-token runs add: the identity survives where the session would not; server memory does not. */
function tokensVerdict(runs: CrashResult[]): string {
  if (runs.length === 0) return '';
  const signedOut = runs.reduce((sum, r) => sum + r.sessionsLost, 0);
  const cartLines = median(runs.map((r) => r.cartLinesLost));
  return ` With API tokens on the stateful system, ${signedOut === 0 ? 'no user was signed out' : `${signedOut} users were signed out`} (a token is checked by any server, nothing of it is kept), but the carts the killed server held were still lost (${cartLines} of ${runs[0]!.cartLinesBefore} lines): tokens make authentication stateless, not the rest.`;
}

export const crash: Experiment<CrashResults> = {
  name: 'crash',
  steps: ({ systems, repeat }) => (systems.length + systems.filter((s) => s.mode === 'stateful').length) * repeat,
  run(ctx) {
    // Every system with session cookies; then the stateful one again with API tokens.
    const variants = [
      ...ctx.systems.map((system) => ({ system, auth: 'session' as const, name: system.name })),
      ...ctx.systems
        .filter((system) => system.mode === 'stateful')
        .map((system) => ({ system, auth: 'token' as const, name: `${TOKENS_PREFIX}${system.name}` })),
    ];
    return repeatEach(ctx, 'crash', variants, async ({ system, auth, name }) => ({
      ...(await crashOnce(system, ctx.infra, ctx.quick ? 30 : 300, auth)),
      system: name,
    }));
  },
  report(all): Section[] {
    const of = (prefix: string) => runsOf(all, prefix);
    const statelessKept = of('stateless').every((r) => r.sessionsLost === 0 && r.cartLinesLost === 0);
    const statefulLost = of('stateful').every((r) => r.sessionsLost > 0);
    return [
      {
        title: 'Crash: one of three servers SIGKILLed',
        claim:
          'The articles: a stateless server can die without losing anyone\u2019s session; a stateful one takes its users\u2019 sessions with it.',
        verdict:
          (statelessKept && statefulLost
            ? 'Confirmed: the stateless systems lost no session and no cart line in any run; the stateful one lost the killed server\u2019s share.'
            : `Not as claimed here: stateless lost ${of('stateless')
                .map((r) => r.sessionsLost)
                .join('/')} sessions, stateful ${of('stateful')
                .map((r) => r.sessionsLost)
                .join('/')}.`) + tokensVerdict(of(TOKENS_PREFIX)),
        header: [
          'system',
          'runs',
          'users',
          'sessions lost (tokens: users signed out)',
          'cart lines lost',
          'failed requests',
          'recovery ms',
        ],
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
