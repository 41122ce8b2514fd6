/**
 * Property-based tests generated from the served OpenAPI document: every path and method gets
 * requests built from its schemas (valid and invalid path params, junk queries and headers,
 * credentials or none, valid and broken bodies) and every answer is checked against the contract's
 * invariants (test/fuzz/openapi-cases.ts). A few hundred cases per `npm test`; `npm run fuzz` runs
 * thousands. A failure prints the request, the answer and fast-check's seed and path: replay it with
 * FUZZ_ROUTE='<METHOD> <path>' FUZZ_SEED=<seed> FUZZ_PATH=<path> npm test -- test/fuzz/openapi.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { AppError, ERROR_STATUS, type ErrorCode } from '../../src/kernel/errors.ts';
import type { UserId } from '../../src/kernel/ids.ts';
import type { IdempotencyKey } from '../../src/idempotency/key.ts';
import { startApps, type Store, type TestApps } from '../support/app.ts';
import { describeCase, EXCLUDED_ROUTES, Fuzzer, FUZZ_ENV, newViolations, summarise } from './openapi-cases.ts';

/** Cases per store in one `npm test` (spread evenly over the document's operations). */
const PLAN: Array<{ store: Store; cases: number }> = [
  { store: 'memory', cases: 300 },
  { store: 'postgres', cases: 100 },
  { store: 'redis', cases: 100 },
];
/** Replays a failure: FUZZ_SEED (and FUZZ_PATH) as fast-check printed them; FUZZ_ROUTE runs that operation only. */
const replay = {
  ...(process.env.FUZZ_SEED === undefined ? {} : { seed: Number(process.env.FUZZ_SEED) }),
  ...(process.env.FUZZ_PATH === undefined ? {} : { path: process.env.FUZZ_PATH }),
};

for (const { store, cases } of PLAN) {
  describe(`OpenAPI property tests on ${store}`, () => {
    let apps: TestApps;
    let fuzzer: Fuzzer;
    before(async () => {
      apps = await startApps({ store, servers: 1, env: FUZZ_ENV });
      fuzzer = await Fuzzer.open(apps.servers[0]!, apps.databaseUrl);
    });
    after(async () => {
      await fuzzer?.close();
      await apps?.close();
    });

    it('every operation of /docs/json keeps the invariants', async (t) => {
      const operations = fuzzer.operations;
      assert.ok(operations.length >= 20, `${operations.length} operations in the document`);
      t.diagnostic(`not fuzzed: ${EXCLUDED_ROUTES.map((e) => `${e.route} (${e.reason})`).join('; ')}`);
      const perOperation = Math.max(3, Math.round(cases / operations.length));
      for (const op of operations) {
        if (process.env.FUZZ_ROUTE && op.key !== process.env.FUZZ_ROUTE) continue;
        await t.test(op.key, async () => {
          await fc.assert(
            fc.asyncProperty(fuzzer.arbitraryFor(op), async (spec) => {
              const result = await fuzzer.run(spec);
              if (newViolations(result).length > 0) assert.fail(`invariant broken:\n${describeCase(result)}`);
            }),
            { numRuns: perOperation, includeErrorInReport: true, ...replay },
          );
        });
      }
      if (!process.env.FUZZ_ROUTE) {
        for (const op of operations) assert.ok(fuzzer.tally.perRoute.get(op.key)?.cases, `${op.key} got no case`);
      }
      const known = new Map<string, number>();
      for (const r of fuzzer.tally.violations) {
        for (const id of new Set(r.violations.map((v) => v.known).filter((k) => k !== undefined))) {
          known.set(id, (known.get(id) ?? 0) + 1);
        }
      }
      t.diagnostic(
        `${fuzzer.tally.cases} cases; known bugs seen: ${[...known].map(([id, n]) => `${id} x${n}`).join(', ') || 'none'}`,
      );
      if (process.env.FUZZ_VERBOSE) console.log(summarise(fuzzer.tally, `${store} store`));
      // The served document is the contract: every status a route answered is one it lists.
      const undocumented = [...fuzzer.tally.undocumented].map(([route, set]) => `${route}: ${[...set].join(', ')}`);
      assert.deepEqual(undocumented, [], 'statuses answered but not in /docs/json');
    });
  });
}

/** The bugs the fuzzer found (and src fixed): each stays as a test of its own. */
describe('regressions found by the fuzzer', () => {
  let apps: TestApps;
  before(async () => {
    apps = await startApps({ store: 'memory', servers: 1 });
  });
  after(() => apps?.close());

  const contractError = (response: { statusCode: number; body: string; headers: Record<string, unknown> }) => {
    assert.match(String(response.headers['content-type']), /application\/json/);
    const body = JSON.parse(response.body) as { error: { code: ErrorCode; message: string } };
    assert.deepEqual(Object.keys(body), ['error']);
    assert.equal(typeof body.error.message, 'string');
    assert.equal(ERROR_STATUS[body.error.code], response.statusCode, body.error.code);
    return body.error.code;
  };

  it('a malformed percent-encoding in the path is a contract 400', async () => {
    const response = await apps.servers[0]!.app.inject({ method: 'GET', url: '/api/orders/%zz' });
    assert.equal(response.statusCode, 400);
    assert.equal(contractError(response), 'invalid_input');
  });

  it('a username with U+0000 is a 4xx, not a 500', async () => {
    const response = await apps.servers[0]!.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ username: 'a\u0000b', password: 'correct horse battery' }),
    });
    assert.ok(response.statusCode >= 400 && response.statusCode < 500, `${response.statusCode} ${response.body}`);
    contractError(response);
  });

  it('a transfer to a name with a lone surrogate is a 4xx, and so is its retry', async () => {
    const app = apps.servers[0]!.app;
    const json = { 'content-type': 'application/json' };
    const credentials = JSON.stringify({ username: 'lone_surrogate', password: 'correct horse battery' });
    assert.equal(
      (await app.inject({ method: 'POST', url: '/api/auth/register', headers: json, payload: credentials })).statusCode,
      201,
    );
    const token = await app.inject({ method: 'POST', url: '/api/auth/token', headers: json, payload: credentials });
    const headers = { ...json, authorization: `Bearer ${token.json().accessToken}`, 'idempotency-key': 'lone-1' };
    for (let attempt = 0; attempt < 2; attempt++) {
      const response = await app.inject({
        method: 'POST',
        url: '/api/bank/transfer',
        headers,
        payload: '{"toUsername":"\\ud800","amountCents":1}',
      });
      assert.ok(response.statusCode >= 400 && response.statusCode < 500, `${response.statusCode} ${response.body}`);
      contractError(response);
    }
  });

  it('a path parameter of 101+ characters gets a status and body of the contract (414 past 256)', async () => {
    const response = await apps.servers[0]!.app.inject({ method: 'GET', url: `/api/orders/${'a'.repeat(150)}` });
    assert.ok([400, 404].includes(response.statusCode), `${response.statusCode}`);
    contractError(response);
    const tooLong = await apps.servers[0]!.app.inject({ method: 'GET', url: `/api/orders/${'a'.repeat(300)}` });
    assert.equal(tooLong.statusCode, 414);
    assert.equal(contractError(tooLong), 'uri_too_long');
  });

  it('stores a refusal that echoes a lone surrogate, and replays it', async () => {
    const { idempotency } = apps.servers[0]!.services;
    const operation = {
      userId: '00000000-0000-4000-8000-000000000001' as UserId,
      key: 'lone-surrogate-echo' as IdempotencyKey,
      fingerprint: 'f',
    };
    const refuse = async (): Promise<never> => {
      throw new AppError('user_not_found', 'There is no user "\ud800".');
    };
    const first = await idempotency.run(operation, refuse);
    const replay = await idempotency.run(operation, refuse);
    assert.equal(first.status, 404);
    assert.equal(replay.headers['idempotent-replayed'], 'true');
    assert.equal((replay.body as { error: { message: string } }).error.message, 'There is no user "\ufffd".');
  });
});
