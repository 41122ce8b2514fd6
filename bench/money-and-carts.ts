/**
 * Issue 4 bench: idempotent withdrawals per second and cart line updates per second on ONE app
 * server, per backend, each beside its ceiling measured in the same run (a bare guarded UPDATE loop
 * through the same driver; a bare HINCRBY loop for Redis; a bare upsert loop for PostgreSQL).
 * `npm run bench:shop` (BENCH_SECONDS=10 by default).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { entry } from '../src/supervisor/child-process.ts';
import { bareHincrbyCeiling, bareUpdateCeiling, bareUpsertCeiling } from './lib/ceilings.ts';
import {
  CONNECTIONS,
  load,
  ratio,
  SECONDS,
  startInfrastructure,
  startProcess,
  table,
  type Measurement,
} from './lib/harness.ts';

const infra = await startInfrastructure();
const rows: Measurement[] = [];
const ceilings: Array<[string, number]> = [];
const ratios: Array<[string, string]> = [];

try {
  process.stderr.write(`bench: ${SECONDS} s per target, ${CONNECTIONS} connections\n`);
  const updateCeiling = await bareUpdateCeiling(infra.databaseUrl, SECONDS, 16);
  ceilings.push(['bare guarded UPDATE loop (pg, 16 clients)', updateCeiling]);
  const hincrbyCeiling = await bareHincrbyCeiling(infra.redisUrl, SECONDS, CONNECTIONS);
  ceilings.push([`bare HINCRBY loop (ioredis, ${CONNECTIONS} loops)`, hincrbyCeiling]);
  const upsertCeiling = await bareUpsertCeiling(infra.databaseUrl, SECONDS, 16);
  ceilings.push(['bare upsert-increment loop (pg, 16 clients)', upsertCeiling]);
  for (const [name, value] of ceilings) process.stderr.write(`  ${name}: ${value} ops/s\n`);

  for (const store of ['memory', 'postgres', 'redis'] as const) {
    const server = await startProcess(entry('server/main.ts'), {
      SW_MODE: store === 'memory' ? 'stateful' : 'stateless',
      SW_STORE: store,
      SW_DATABASE_URL: infra.databaseUrl,
      SW_REDIS_URL: infra.redisUrl,
      SW_PORT: '0',
      SW_LOG_LEVEL: 'warn',
      SW_LOGIN_LIMIT: '1000000',
    });
    const headers = { 'content-type': 'application/json', 'user-agent': 'bench' };
    const registered = await fetch(`${server.url}/api/auth/register`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ username: `bench_${store}`, password: 'a long bench password' }),
    });
    if (registered.status !== 201) throw new Error(`register: ${registered.status}`);
    const cookie = registered.headers.getSetCookie()[0]!.split(';')[0]!;
    const auth = { ...headers, cookie };

    // Enough money for every withdrawal of the run.
    await fetch(`${server.url}/api/bank/deposit`, {
      method: 'POST',
      headers: { ...auth, 'idempotency-key': `fund-${store}` },
      body: JSON.stringify({ amountCents: 100_000_000 }),
    });
    const withdraw = await loadWithUniqueKeys(
      `statewise idempotent withdraw (${store})`,
      `${server.url}/api/bank/withdraw`,
      auth,
    );
    rows.push(withdraw);
    ratios.push([
      `withdraw (${store}) / bare UPDATE (target >= 0.5)`,
      ratio(withdraw.requestsPerSecond, updateCeiling),
    ]);

    const cart = await load(`statewise cart line +1 (${store})`, `${server.url}/api/cart/items`, auth, {
      method: 'POST',
      body: JSON.stringify({ itemId: 'margherita', qty: 1 }),
    });
    rows.push(cart);
    const cartCeiling = store === 'redis' ? hincrbyCeiling : upsertCeiling;
    const ceilingName = store === 'redis' ? 'bare HINCRBY' : 'bare upsert';
    if (store !== 'memory')
      ratios.push([`cart +1 (${store}) / ${ceilingName} (target >= 0.5)`, ratio(cart.requestsPerSecond, cartCeiling)]);
    await server.stop();
  }
} finally {
  await infra.stop();
}

/** Each request carries a fresh Idempotency-Key, as distinct client withdrawals would. */
function loadWithUniqueKeys(name: string, url: string, headers: Record<string, string>): Promise<Measurement> {
  let n = 0;
  const run = `${Date.now()}`;
  return load(name, url, headers, {
    requests: [
      {
        method: 'POST',
        setupRequest: (request) => ({
          ...request,
          headers: { ...headers, 'idempotency-key': `w-${run}-${n++}` },
          body: JSON.stringify({ amountCents: 1 }),
        }),
      },
    ],
  });
}

const report = [
  '| ceiling | ops/s |',
  '|---|---:|',
  ...ceilings.map(([k, v]) => `| ${k} | ${v} |`),
  '',
  table(rows),
  '',
  '| ratio | value |',
  '|---|---:|',
  ...ratios.map(([k, v]) => `| ${k} | ${v} |`),
  '',
].join('\n');
process.stdout.write(`\n${report}`);
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
await writeFile(
  new URL('./results/money-and-carts.md', import.meta.url),
  `# Money and carts, ${new Date().toISOString()}\n\n${report}`,
);
