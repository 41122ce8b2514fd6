/**
 * Issue 4 bench: idempotent withdrawals per second and cart line updates per second on ONE app
 * server, per backend, each beside its ceiling measured in the same run: a bare guarded UPDATE
 * loop through the same driver (on one hot row, and spread over as many rows as the bench has
 * accounts), a bare HINCRBY loop for Redis, a bare upsert loop for PostgreSQL, and a raw node:http
 * hello for what any HTTP request can reach on this machine.
 * `npm run bench:shop` (BENCH_SECONDS=5 by default). Writes bench/results/money-and-carts.md.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { entry } from '../src/supervisor/child-process.ts';
import { bareHincrbyCeiling, bareUpdateCeiling, bareUpsertCeiling } from './lib/ceilings.ts';
import {
  BENCH_JSON,
  registerSession,
  CONNECTIONS,
  load,
  ratio,
  SECONDS,
  startInfrastructure,
  startProcess,
  table,
  type Measurement,
} from './lib/harness.ts';

/** Accounts for the spread withdrawals: one per connection, as distinct ATM customers. */
const ACCOUNTS = CONNECTIONS;
const PG_CLIENTS = 16;

const infra = await startInfrastructure();
const rows: Measurement[] = [];
const ceilings: Array<[string, number]> = [];
const ratios: Array<[string, string]> = [];

try {
  process.stderr.write(`bench: ${SECONDS} s per target, ${CONNECTIONS} connections\n`);
  /** Measures one ceiling, keeps it for the report, and returns it. */
  const ceiling = async (name: string, measure: Promise<number>): Promise<number> => {
    const value = await measure;
    ceilings.push([name, value]);
    process.stderr.write(`  ${name}: ${value} ops/s\n`);
    return value;
  };
  const raw = await startProcess(new URL('./peers/raw-hello.ts', import.meta.url).pathname, {});
  const rawHello = await ceiling(
    'raw node:http hello (req/s)',
    load('raw node:http hello', raw.url).then((m) => m.requestsPerSecond),
  );
  await raw.stop();
  const updateOne = await ceiling(
    `bare guarded UPDATE, one row (pg, ${PG_CLIENTS} clients)`,
    bareUpdateCeiling(infra.databaseUrl, SECONDS, PG_CLIENTS, 1),
  );
  const updateSpread = await ceiling(
    `bare guarded UPDATE, ${ACCOUNTS} rows (pg, ${PG_CLIENTS} clients)`,
    bareUpdateCeiling(infra.databaseUrl, SECONDS, PG_CLIENTS, ACCOUNTS),
  );
  const hincrby = await ceiling(
    `bare HINCRBY (ioredis, ${CONNECTIONS} loops)`,
    bareHincrbyCeiling(infra.redisUrl, SECONDS, CONNECTIONS),
  );
  const upsert = await ceiling(
    `bare upsert-increment (pg, ${PG_CLIENTS} clients)`,
    bareUpsertCeiling(infra.databaseUrl, SECONDS, PG_CLIENTS),
  );

  for (const store of ['memory', 'postgres', 'redis'] as const) {
    const server = await startProcess(entry('server/main.ts'), {
      SW_MODE: store === 'memory' ? 'stateful' : 'stateless',
      SW_STORE: store,
      SW_DATABASE_URL: infra.databaseUrl,
      SW_REDIS_URL: infra.redisUrl,
      SW_PORT: '0',
      SW_LOG_LEVEL: 'warn',
      SW_LOGIN_LIMIT: '1000000',
      SW_LOGIN_IP_LIMIT: '1000000',
    });
    const cookies = await registerUsers(server.url, `bench_${store}`, ACCOUNTS);
    const auth = (cookie: string) => ({ 'content-type': 'application/json', 'user-agent': 'bench', cookie });

    const hot = await loadWithdrawals(`idempotent withdraw, one account (${store})`, server.url, [cookies[0]!], auth);
    const spread = await loadWithdrawals(
      `idempotent withdraw, ${ACCOUNTS} accounts (${store})`,
      server.url,
      cookies,
      auth,
    );
    const cart = await loadCartUpdates(`cart line update (${store})`, server.url, auth(cookies[0]!));
    rows.push(hot, spread, cart);

    ratios.push([`withdraw one account (${store}) / bare UPDATE one row`, ratio(hot.requestsPerSecond, updateOne)]);
    ratios.push([
      `withdraw ${ACCOUNTS} accounts (${store}) / bare UPDATE ${ACCOUNTS} rows`,
      ratio(spread.requestsPerSecond, updateSpread),
    ]);
    if (store === 'redis') ratios.push([`cart (redis) / bare HINCRBY`, ratio(cart.requestsPerSecond, hincrby)]);
    if (store === 'postgres') ratios.push([`cart (postgres) / bare upsert`, ratio(cart.requestsPerSecond, upsert)]);
    ratios.push([`cart (${store}) / raw node:http hello`, ratio(cart.requestsPerSecond, rawHello)]);
    await server.stop();
  }
} finally {
  await infra.stop();
}

/** Registers `count` users and funds each for the whole run; returns their session cookies. */
async function registerUsers(url: string, prefix: string, count: number): Promise<string[]> {
  const cookies: string[] = [];
  for (let i = 0; i < count; i++) {
    const cookie = await registerSession(url, `${prefix}_${i}`);
    const funded = await fetch(`${url}/api/bank/deposit`, {
      method: 'POST',
      headers: { ...BENCH_JSON, cookie, 'idempotency-key': `fund-${prefix}-${i}` },
      body: JSON.stringify({ amountCents: 100_000_000 }),
    });
    if (funded.status !== 200) throw new Error(`deposit: ${funded.status}`);
    cookies.push(cookie);
  }
  return cookies;
}

/** Withdrawals of 1 cent, each with a fresh Idempotency-Key, round robin over the given accounts. */
function loadWithdrawals(
  name: string,
  url: string,
  cookies: readonly string[],
  auth: (cookie: string) => Record<string, string>,
): Promise<Measurement> {
  let n = 0;
  const run = `${Date.now()}`;
  return load(name, `${url}/api/bank/withdraw`, auth(cookies[0]!), {
    requests: [
      {
        method: 'POST',
        setupRequest: (request) => ({
          ...request,
          headers: { ...auth(cookies[n % cookies.length]!), 'idempotency-key': `w-${run}-${n++}` },
          body: JSON.stringify({ amountCents: 1 }),
        }),
      },
    ],
  });
}

/**
 * Cart line updates: "add 1" (one atomic increment), and every 10th request "set to 1" (one atomic
 * set), so that the line stays under its bound (the stock shown, 50 for margherita) however long
 * the run: adds in flight between two sets stay far below 40.
 */
function loadCartUpdates(name: string, baseUrl: string, headers: Record<string, string>): Promise<Measurement> {
  let n = 0;
  return load(name, `${baseUrl}/api/cart/items`, headers, {
    requests: [
      {
        setupRequest: (request) =>
          ++n % 10 === 0
            ? { ...request, method: 'PUT', path: '/api/cart/items/margherita', body: JSON.stringify({ qty: 1 }) }
            : {
                ...request,
                method: 'POST',
                path: '/api/cart/items',
                body: JSON.stringify({ itemId: 'margherita', qty: 1 }),
              },
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
  '| ratio (target >= 0.5 against the driver loops) | value |',
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
