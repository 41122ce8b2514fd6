/**
 * `npm run fuzz`: the OpenAPI property cases of test/fuzz/openapi-cases.ts at volume. Starts one
 * embedded PostgreSQL (as scripts/test.ts does), builds an app server per store in process, runs
 * the cases spread evenly over every operation of GET /docs/json, collects every invariant
 * violation instead of stopping at the first, and prints a summary: cases per route, statuses, and
 * each violation with the request that caused it.
 *
 *   npm run fuzz                                  10,000 cases on each store (memory, postgres, redis)
 *   npm run fuzz -- --runs 2000 --store redis     2,000 cases on redis only
 *   npm run fuzz -- --seed 1234                   the same cases again (the seed is printed)
 *
 * Exits 1 when a violation that is not a known bug (KNOWN_BUGS), or an uncaught exception, was seen.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { startEmbeddedPostgres } from '../src/records/embedded-postgres.ts';
import { freePort } from '../src/kernel/free-port.ts';
import { startApps, STORES, type Store } from '../test/support/app.ts';
import {
  describeCase,
  EXCLUDED_ROUTES,
  Fuzzer,
  FUZZ_ENV,
  KNOWN_BUGS,
  newViolations,
  summarise,
  type CaseSpec,
} from '../test/fuzz/openapi-cases.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10000' },
    store: { type: 'string', multiple: true },
    seed: { type: 'string' },
  },
});
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, not ${values.runs}`);
const stores = (values.store ?? ['all']).flatMap((s) => s.split(',')).flatMap((s) => (s === 'all' ? [...STORES] : [s]));
for (const store of stores) {
  if (!(STORES as readonly string[]).includes(store)) throw new Error(`--store is one of ${STORES.join(', ')} or all`);
}
const seed = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed);

/** Exceptions nobody caught: in a real server process, each would end it. */
const uncaught: Array<{ after: string; error: string }> = [];
let lastCase = '(before the first case)';
process.on('uncaughtException', (error) => uncaught.push({ after: lastCase, error: error.stack ?? String(error) }));
process.on('unhandledRejection', (error) =>
  uncaught.push({ after: lastCase, error: (error as Error)?.stack ?? String(error) }),
);

const dataDir = await mkdtemp(join(tmpdir(), 'statewise-fuzz-pg-'));
const pg = await startEmbeddedPostgres({ dataDir, port: await freePort() });
process.env.STATEWISE_TEST_PG_URL = pg.url;

console.log(`fuzz: ${runs} cases on each of ${stores.join(', ')}; seed ${seed} (replay with --seed ${seed})`);
console.log(`not fuzzed: ${EXCLUDED_ROUTES.map((e) => `${e.route}: ${e.reason}`).join('; ')}`);
let failed = false;
try {
  for (const store of stores as Store[]) {
    // Each store gets its own cases (the same seed replays them all).
    const storeSeed = seed + STORES.indexOf(store) * 100_003;
    const apps = await startApps({ store, servers: 1, env: FUZZ_ENV });
    const fuzzer = await Fuzzer.open(apps.servers[0]!, apps.databaseUrl);
    try {
      // Every operation gets its share, interleaved so that one route's effects meet another's checks.
      const ops = fuzzer.operations;
      const queues = ops.map((op, i) => {
        const count = Math.floor(runs / ops.length) + (i < runs % ops.length ? 1 : 0);
        return count === 0 ? [] : fc.sample(fuzzer.arbitraryFor(op), { numRuns: count, seed: storeSeed + i });
      });
      const order = fc.sample(
        fc.shuffledSubarray(
          queues.flatMap((q, i) => q.map(() => i)),
          { minLength: runs },
        ),
        {
          numRuns: 1,
          seed: storeSeed,
        },
      )[0]!;
      const started = Date.now();
      let done = 0;
      for (const index of order) {
        const spec = queues[index]!.shift() as CaseSpec;
        lastCase = `${store} case ${done + 1}: ${spec.route}`;
        const result = await fuzzer.run(spec);
        lastCase += ` -> ${result.request.method} ${result.request.url.slice(0, 120)} ${result.status}`;
        if (
          newViolations(result).length > 0 &&
          fuzzer.tally.violations.filter((r) => newViolations(r).length > 0).length <= 3
        ) {
          console.log(`new violation (${store}, case ${done + 1}):\n${describeCase(result)}`);
        }
        if (++done % 1000 === 0) {
          console.log(`  ${store}: ${done}/${runs} cases, ${((Date.now() - started) / 1000).toFixed(0)} s`);
        }
      }
      console.log(
        `${summarise(fuzzer.tally, `${store} store, seed ${seed}`)}\n(${((Date.now() - started) / 1000).toFixed(1)} s)\n`,
      );
      if (fuzzer.tally.violations.some((r) => newViolations(r).length > 0)) failed = true;
    } finally {
      await fuzzer.close();
      await apps.close();
    }
  }
} finally {
  await pg.stop();
  await rm(dataDir, { recursive: true, force: true });
}

console.log('known bugs (KNOWN_BUGS, reported, not fixed yet):');
for (const bug of KNOWN_BUGS) console.log(`  ${bug.id}: ${bug.description}`);
if (uncaught.length > 0) {
  failed = true;
  console.log(`uncaught exceptions: ${uncaught.length} (each would end a real server process)`);
  const seen = new Map<string, { count: number; after: string }>();
  for (const u of uncaught) {
    const first = seen.get(u.error);
    if (first) first.count++;
    else seen.set(u.error, { count: 1, after: u.after });
  }
  // A timer's exception lands after the case that started it, not during it: the case named is only the last one run.
  for (const [error, { count, after }] of seen) console.log(`-- ${count} x, first seen after ${after}:\n${error}`);
}
console.log(failed ? 'fuzz: FOUND violations (see above)' : 'fuzz: no new violations');
process.exit(failed ? 1 : 0);
