/**
 * The bank under concurrency and faults: money is conserved while servers are SIGKILLed, nothing
 * is spent twice, an Idempotency-Key applies once whichever servers see it, bad input changes
 * nothing. And the articles' stateful ATM, which gives two answers.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { startCluster, type Cluster } from '../support/cluster.ts';
import { query } from '../support/db.ts';
import { Browser } from '../support/http.ts';
import { waitFor } from '../support/wait.ts';

const PASSWORD = 'correct horse battery';
const OPENING = 100_000;

/** A signed-in API client (bearer token: any server verifies it, in either design). */
async function customer(cluster: Cluster, username: string) {
  const b = new Browser(cluster.url, `atm-${username}`);
  const body = { username, password: PASSWORD };
  assert.equal((await b.api.POST('/api/auth/register', { body })).response.status, 201);
  const tokens = await b.api.POST('/api/auth/token', { body });
  assert.equal(tokens.response.status, 200, JSON.stringify(tokens.error));
  const auth = { authorization: `Bearer ${tokens.data!.accessToken}` };
  const api = b.apiWith(auth);
  /** The balance, asked of `server` when given. */
  const balance = async (server?: string) =>
    (await api.GET('/api/bank/account', { headers: pinned(server) })).data?.balanceCents;
  return {
    username,
    api,
    balance,
    /** Raw: for bodies the schema refuses on purpose. */
    postRaw: (path: string, json: unknown, headers: Record<string, string> = {}) =>
      b.post(path, json, { ...auth, ...headers }),
  };
}
type Customer = Awaited<ReturnType<typeof customer>>;

/** Sent as X-Statewise-Server: the balancer routes the request to that server. */
const pinned = (server?: string): Record<string, string> => (server ? { 'x-statewise-server': server } : {});
const keyed = (key: string) => ({ header: { 'Idempotency-Key': key } });
describe('bank, stateless', () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster({
      env: { SW_LOGIN_LIMIT: '1000', SW_LOGIN_IP_LIMIT: '100000', SW_IDEMPOTENCY_SWEEP_MS: '300' },
    });
  });
  after(async () => {
    if (process.env.STATEWISE_TEST_VERBOSE) process.stderr.write(cluster.output());
    await cluster.stop();
  });

  it('conserves money over 2000 concurrent transfers while a server is SIGKILLed every 2 s', async () => {
    const people: Customer[] = [];
    for (let i = 0; i < 10; i++) people.push(await customer(cluster, `acct${i}`));
    for (const p of people) assert.equal(await p.balance(), OPENING);
    const total = OPENING * people.length;

    let done = false;
    const badSums: string[] = [];
    let snapshots = 0;
    const checker = (async () => {
      while (!done) {
        // One statement: a consistent snapshot of every balance.
        const [row] = await query<{ sum: string; min: string }>(
          cluster.databaseUrl,
          'SELECT sum(balance_cents) AS sum, min(balance_cents) AS min FROM accounts',
        );
        snapshots++;
        if (Number(row!.sum) !== total || Number(row!.min) < 0) badSums.push(`${row!.sum} / min ${row!.min}`);
        await new Promise((resolve) => setTimeout(resolve, 100)); // sampling pace, not synchronisation
      }
    })();
    const kills: string[] = [];
    const killer = (async () => {
      let n = 0;
      while (!done) {
        const started = Date.now();
        const victim = `s${(n++ % 3) + 1}`;
        await cluster.kill(victim);
        kills.push(victim);
        await cluster.start(victim);
        const wait = 2000 - (Date.now() - started);
        if (wait > 0 && !done) await new Promise((resolve) => setTimeout(resolve, wait)); // the fault schedule
      }
    })();

    let ok = 0;
    let refused = 0;
    let retries = 0;
    const transfer = async (from: Customer, to: Customer, amountCents: number) => {
      const key = randomUUID();
      for (;;) {
        const r = await from.api
          .POST('/api/bank/transfer', { body: { toUsername: to.username, amountCents }, params: keyed(key) })
          .catch(() => null);
        const status = r?.response.status ?? 0;
        if (status === 200) return void ok++;
        if (status === 409 && r?.error?.error.code === 'insufficient_funds') return void refused++;
        assert.ok([0, 409, 502, 503].includes(status), `unexpected ${status} ${JSON.stringify(r?.error)}`);
        retries++; // unknown outcome: retry with the same key
      }
    };
    let next = 0;
    const clients = Array.from({ length: 12 }, async () => {
      while (next < 2000) {
        next++;
        const from = people[Math.floor(Math.random() * people.length)]!;
        let to = people[Math.floor(Math.random() * people.length)]!;
        while (to === from) to = people[Math.floor(Math.random() * people.length)]!;
        await transfer(from, to, 1 + Math.floor(Math.random() * 20_000));
      }
    });
    await Promise.all(clients);
    done = true;
    await Promise.all([checker, killer]);

    assert.ok(kills.length >= 2, `servers were killed during the run: ${kills.join(',')}`);
    assert.ok(snapshots > 5);
    assert.deepEqual(badSums, [], 'every snapshot sums to the total, none negative');
    assert.equal(ok + refused, 2000);
    const [sum] = await query<{ sum: string }>(cluster.databaseUrl, 'SELECT sum(balance_cents) AS sum FROM accounts');
    assert.equal(Number(sum!.sum), total);
    let apiSum = 0;
    for (const p of people) apiSum += (await p.balance()) ?? NaN;
    assert.equal(apiSum, total, 'the balances read through the API add up too');
    const uneven = await query(
      cluster.databaseUrl,
      'SELECT transfer_id FROM ledger WHERE transfer_id IS NOT NULL GROUP BY 1 HAVING count(*) <> 2',
    );
    assert.deepEqual(uneven, [], 'every transfer has exactly two postings');
    const twice = await query(
      cluster.databaseUrl,
      "SELECT idempotency_key FROM ledger WHERE kind = 'transfer_out' GROUP BY 1 HAVING count(*) > 1",
    );
    assert.deepEqual(twice, [], 'no key was applied twice');
    const [outs] = await query<{ n: string }>(
      cluster.databaseUrl,
      "SELECT count(*) AS n FROM ledger WHERE kind = 'transfer_out'",
    );
    assert.equal(Number(outs!.n), ok, 'every acknowledged transfer, and only those, is in the ledger');
    process.stdout.write(
      `# conservation: ${ok} transfers, ${refused} refused for funds, ${retries} retries, kills: ${kills.join(',')}\n`,
    );
  });

  it('lets exactly one of 50 concurrent withdrawals of the last 100 cents through', async () => {
    const c = await customer(cluster, 'spender');
    await c.api.POST('/api/bank/withdraw', { body: { amountCents: OPENING - 100 }, params: keyed(randomUUID()) });
    const results = await Promise.all(
      Array.from({ length: 50 }, () =>
        c.api.POST('/api/bank/withdraw', { body: { amountCents: 100 }, params: keyed(randomUUID()) }),
      ),
    );
    assert.equal(results.filter((r) => r.response.status === 200).length, 1);
    assert.ok(
      results.every(
        (r) => r.response.status === 200 || (r.response.status === 409 && r.error?.error.code === 'insufficient_funds'),
      ),
    );
    assert.equal(await c.balance(), 0);
  });

  it('applies one key sent to 3 servers at once exactly once', async () => {
    const c = await customer(cluster, 'samekey');
    const key = randomUUID();
    const withdraw = (amountCents: number, server?: string) =>
      c.api.POST('/api/bank/withdraw', { body: { amountCents }, params: keyed(key), headers: pinned(server) });
    const results = await Promise.all(['s1', 's2', 's3', 's1', 's2', 's3'].map((server) => withdraw(700, server)));
    const succeeded = results.filter((r) => r.response.status === 200);
    assert.ok(succeeded.length >= 1);
    assert.ok(
      results.every(
        (r) =>
          r.response.status === 200 || (r.response.status === 409 && r.error?.error.code === 'idempotency_in_progress'),
      ),
    );
    assert.equal(new Set(succeeded.map((r) => r.data?.transaction.id)).size, 1, 'one transaction, replayed');
    const replay = await withdraw(700);
    assert.equal(replay.response.status, 200);
    assert.equal(replay.response.headers.get('idempotent-replayed'), 'true');
    assert.equal(replay.data?.transaction.id, succeeded[0]!.data?.transaction.id);
    assert.equal(await c.balance(), OPENING - 700, 'one debit');
    const mismatch = await withdraw(701);
    assert.equal(mismatch.response.status, 422);
    assert.equal(mismatch.error?.error.code, 'idempotency_key_mismatch');
    assert.match(mismatch.error?.error.message ?? '', /another endpoint, or another body/);
    // Without the required header: raw, the typed client would not let it be left out.
    const none = await c.postRaw('/api/bank/withdraw', { amountCents: 700 });
    assert.equal(none.status, 400);
    assert.equal(none.body.error.code, 'idempotency_key_required');
    assert.equal(await c.balance(), OPENING - 700);
  });

  it('posts each key once while every key is retried at once on 3 servers, withdrawals and deposits', async () => {
    const c = await customer(cluster, 'retrier');
    const keys = Array.from({ length: 12 }, (_, i) => ({
      key: randomUUID(),
      kind: i % 3 ? ('withdraw' as const) : ('deposit' as const),
    }));
    // A client that retries until it has the answer: 409 in progress means "still running".
    const send = async (key: string, kind: 'withdraw' | 'deposit', server: string) => {
      for (;;) {
        const r = await c.api.POST(`/api/bank/${kind}`, {
          body: { amountCents: 300 },
          params: keyed(key),
          headers: pinned(server),
        });
        if (r.response.status === 200) return r;
        assert.equal(r.error?.error.code, 'idempotency_in_progress', `${r.response.status} ${JSON.stringify(r.error)}`);
      }
    };
    const answers = await Promise.all(
      keys.map(({ key, kind }) => Promise.all(['s1', 's2', 's3', 's1', 's2', 's3'].map((s) => send(key, kind, s)))),
    );
    for (const sameKey of answers) {
      assert.equal(new Set(sameKey.map((r) => r.data?.transaction.id)).size, 1, 'one transaction per key');
      const made = sameKey.filter((r) => r.response.headers.get('idempotent-replayed') !== 'true');
      assert.equal(made.length, 1, 'one made it');
    }
    const postings = await query<{ idempotency_key: string; n: string }>(
      cluster.databaseUrl,
      `SELECT idempotency_key, count(*) AS n FROM ledger JOIN users ON users.id = ledger.user_id
       WHERE users.username = $1 GROUP BY 1`,
      ['retrier'],
    );
    assert.deepEqual(
      postings.map((p) => [p.idempotency_key, Number(p.n)]).sort(),
      keys.map(({ key }) => [key, 1]).sort(),
      'one posting per key, none for anything else',
    );
    const withdrawals = keys.filter(({ kind }) => kind === 'withdraw').length;
    const expected = OPENING + 300 * (keys.length - withdrawals) - 300 * withdrawals;
    assert.equal(await c.balance(), expected);
  });

  it("moves money on a customer's first touch while another first touch opens the account", async () => {
    const c = await customer(cluster, 'firsttouch');
    const [{ id }] = await query<{ id: string }>(cluster.databaseUrl, 'SELECT id FROM users WHERE username = $1', [
      'firsttouch',
    ]);
    // Another request's first touch, caught between opening the account and committing.
    const other = new pg.Client(cluster.databaseUrl);
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query('INSERT INTO accounts (user_id, balance_cents) VALUES ($1, $2)', [id, OPENING]);
      const withdrawal = c.api.POST('/api/bank/withdraw', { body: { amountCents: 500 }, params: keyed(randomUUID()) });
      await waitFor(
        async () => {
          const waiting = await query(
            cluster.databaseUrl,
            `SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%bank_move_once%'`,
          );
          return waiting.length === 1;
        },
        { what: 'the withdrawal waiting for the other opening' },
      );
      await other.query('COMMIT');
      const answer = await withdrawal;
      assert.equal(answer.response.status, 200, JSON.stringify(answer.error));
      assert.equal(answer.data?.balanceCents, OPENING - 500);
    } finally {
      await other.end();
    }
    assert.equal(await c.balance(), OPENING - 500);
  });

  it('replays a stored response after the server that made it was killed', async () => {
    const c = await customer(cluster, 'replayer');
    const key = randomUUID();
    const deposit = (server?: string) =>
      c.api.POST('/api/bank/deposit', { body: { amountCents: 1234 }, params: keyed(key), headers: pinned(server) });
    const first = await deposit('s2');
    assert.equal(first.response.status, 200);
    await cluster.kill('s2');
    const again = await deposit();
    assert.equal(again.response.status, 200);
    assert.equal(again.response.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(again.data, first.data);
    await cluster.start('s2');
    assert.equal(await c.balance(), OPENING + 1234);
  });

  it('keeps a key 24 hours and then forgets it: after that the same key is a new operation', async () => {
    const c = await customer(cluster, 'retained');
    const withdraw = async (key: string) =>
      (await c.api.POST('/api/bank/withdraw', { body: { amountCents: 100 }, params: keyed(key) })).response;
    const [aged, kept] = [randomUUID(), randomUUID()];
    assert.equal((await withdraw(aged)).status, 200);
    assert.equal((await withdraw(kept)).status, 200);
    const replay = await withdraw(aged);
    assert.equal(replay.headers.get('idempotent-replayed'), 'true', 'inside the window: the stored answer');
    const keyRows = (key: string) => query(cluster.databaseUrl, 'SELECT 1 FROM idempotency_keys WHERE key = $1', [key]);

    // What 24 hours would do: the key's row passes the retention, and a server's sweep removes it.
    await query(
      cluster.databaseUrl,
      "UPDATE idempotency_keys SET created_at = now() - interval '24 hours 1 minute' WHERE key = $1",
      [aged],
    );
    await waitFor(async () => (await keyRows(aged)).length === 0, { timeoutMs: 10_000, what: 'the aged key swept' });
    assert.equal((await keyRows(kept)).length, 1, 'a key inside its 24 hours stays');

    const again = await withdraw(aged);
    assert.equal(again.status, 200);
    assert.equal(again.headers.get('idempotent-replayed'), null, 'a forgotten key runs as a new operation');
    assert.equal(await c.balance(), OPENING - 300);
  });

  it('refuses bad amounts and recipients with a 4xx and changes nothing', async () => {
    const c = await customer(cluster, 'careful');
    await customer(cluster, 'payee');
    const bad: Array<[string, unknown, number]> = [
      ['/api/bank/withdraw', { amountCents: 0 }, 400],
      ['/api/bank/withdraw', { amountCents: -5 }, 400],
      ['/api/bank/deposit', { amountCents: 1.5 }, 400],
      ['/api/bank/deposit', { amountCents: 1e12 }, 400],
      ['/api/bank/deposit', { amountCents: '100' }, 400],
      ['/api/bank/deposit', { amountCents: null }, 400],
      ['/api/bank/deposit', {}, 400],
      ['/api/bank/withdraw', { amountCents: OPENING + 1 }, 409],
      ['/api/bank/transfer', { toUsername: 'careful', amountCents: 10 }, 400],
      ['/api/bank/transfer', { toUsername: 'nobody-here', amountCents: 10 }, 404],
      ['/api/bank/transfer', { toUsername: 'payee', amountCents: -10 }, 400],
      ['/api/bank/transfer', { amountCents: 10 }, 400],
    ];
    for (const [path, body, status] of bad) {
      // Raw: most of these bodies are what the schema refuses, on purpose.
      const r = await c.postRaw(path, body, { 'idempotency-key': randomUUID() });
      assert.equal(r.status, status, `${path} ${JSON.stringify(body)}: ${JSON.stringify(r.body)} ${r.servedBy}`);
      assert.equal(typeof r.body.error.code, 'string');
    }
    assert.equal(await c.balance(), OPENING);
    assert.deepEqual((await c.api.GET('/api/bank/transactions')).data?.transactions, []);
  });
});

describe('bank, stateful: the ATM keeps balances in its own memory', () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster({ mode: 'stateful' });
  });
  after(() => cluster.stop());

  it('two ATMs give two balances after a withdrawal, and a crashed ATM forgets', async () => {
    const c = await customer(cluster, 'twoatms');
    assert.equal(await c.balance('s1'), OPENING);
    assert.equal(await c.balance('s2'), OPENING);
    const w = await c.api.POST('/api/bank/withdraw', {
      body: { amountCents: 2500 },
      params: keyed(randomUUID()),
      headers: pinned('s1'),
    });
    assert.equal(w.response.status, 200);
    assert.equal(await c.balance('s1'), OPENING - 2500);
    assert.equal(await c.balance('s2'), OPENING, 's2 still shows what it remembered');
    await cluster.kill('s2');
    await cluster.start('s2');
    await waitFor(async () => (await c.balance('s2')) !== undefined);
    assert.equal(await c.balance('s2'), OPENING - 2500, 'restarted, it reads the ledger again');
  });

  it('an ATM keeps only the movements it made: a replay or a refusal changes nothing it shows', async () => {
    const c = await customer(cluster, 'atmreplay');
    assert.equal(await c.balance('s1'), OPENING);
    const withdraw = (amountCents: number, key: string) =>
      c.api.POST('/api/bank/withdraw', { body: { amountCents }, params: keyed(key), headers: pinned('s1') });
    const key = randomUUID();
    const first = await withdraw(500, key);
    assert.equal(first.data?.balanceCents, OPENING - 500);
    const replay = await withdraw(500, key);
    assert.equal(replay.response.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(replay.data, first.data);
    const refused = await withdraw(OPENING, randomUUID());
    assert.equal(refused.error?.error.code, 'insufficient_funds');
    assert.equal(await c.balance('s1'), OPENING - 500);
  });
});
