/**
 * Issue 11 bench: what a session-authenticated `GET /api/me` costs when Redis is 5 ms away (each
 * way) instead of next door. One app server (store=redis) per case, its Redis reached directly or
 * through bench/lib/delay-proxy.ts, with the near cache on (the default) and off
 * (SW_NEAR_CACHE_ENTRIES=0); a raw node:http hello in the same run is the machine's ceiling.
 * Everything on loopback: the proxy is the only added latency, no root needed (network namespaces
 * would add a veth hop of microseconds and nothing else). Each target under load (BENCH_CONNECTIONS,
 * default 64) and alone (one connection: what one request costs), in interleaved rounds, median kept.
 * `npm run bench:redis-latency` (BENCH_SECONDS, BENCH_ROUNDS, BENCH_REDIS_DELAY_MS).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg } from 'node:os';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { bundleServer } from '../src/supervisor/server-bundle.ts';
import {
  registerSession,
  CONNECTIONS,
  load,
  median,
  ROUNDS,
  SECONDS,
  startInfrastructure,
  startProcess,
  type Measurement,
} from './lib/harness.ts';

const DELAY_MS = Number(process.env.BENCH_REDIS_DELAY_MS ?? 5);

interface Target {
  name: string;
  url: string;
  headers: Record<string, string>;
}

/**
 * A measurement alone. autocannon's latencies are whole milliseconds, too coarse here; with one
 * connection and one request at a time, 1000 / req/s is the time each request took, exactly.
 */
interface Alone extends Measurement {
  mean: number;
}

/** One connection, one request at a time: the latency of a request with no queue in front of it. */
async function alone(target: Target): Promise<Alone> {
  const options = { url: target.url, headers: target.headers, connections: 1, pipelining: 1 };
  await autocannon({ ...options, duration: 1 });
  const result = await autocannon({ ...options, duration: SECONDS });
  const m: Alone = {
    name: target.name,
    requestsPerSecond: Math.round(result.requests.average),
    mean: 1000 / result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
  process.stderr.write(
    `  ${m.name}, alone: ${m.requestsPerSecond} req/s, ${m.mean.toFixed(2)} ms each, p99 ${m.p99} ms\n`,
  );
  return m;
}

/** Median round trip of a Redis PING at this address: what the proxy adds, measured. */
async function pingMs(host: string, port: number): Promise<number> {
  const client = new Redis({ host, port, lazyConnect: true, maxRetriesPerRequest: 1 });
  await client.connect();
  const times: number[] = [];
  for (let i = 0; i < 200; i++) {
    const start = performance.now();
    await client.ping();
    times.push(performance.now() - start);
  }
  client.disconnect();
  return times.sort((a, b) => a - b)[100]!;
}

// The machine is shared: its load before and after says how far to trust the absolute figures.
const loadBefore = loadavg()[0]!;
const infra = await startInfrastructure();
const redis = new URL(infra.redisUrl);
// Its own process: in this one, autocannon's busy event loop would make its timers late.
const proxyProcess = await startProcess(new URL('./lib/delay-proxy.ts', import.meta.url).pathname, {
  DELAY_PROXY_TARGET: `${redis.hostname}:${redis.port}`,
  DELAY_PROXY_MS: String(DELAY_MS),
});
const proxy = { host: '127.0.0.1', port: Number(new URL(proxyProcess.url).port) };
const serverEntry = await bundleServer();
const stops: Array<() => Promise<void>> = [proxyProcess.stop];
const targets: Target[] = [];

try {
  const raw = await startProcess(new URL('./peers/raw-hello.ts', import.meta.url).pathname, {});
  stops.push(raw.stop);
  targets.push({ name: 'raw node:http hello (ceiling)', url: raw.url, headers: {} });

  const cases = [
    { redis: 'direct', url: infra.redisUrl, nearCache: true },
    { redis: 'direct', url: infra.redisUrl, nearCache: false },
    { redis: `+${DELAY_MS} ms each way`, url: `redis://${proxy.host}:${proxy.port}`, nearCache: true },
    { redis: `+${DELAY_MS} ms each way`, url: `redis://${proxy.host}:${proxy.port}`, nearCache: false },
  ];
  for (const [i, c] of cases.entries()) {
    const server = await startProcess(serverEntry, {
      SW_MODE: 'stateless',
      SW_STORE: 'redis',
      SW_DATABASE_URL: infra.databaseUrl,
      SW_REDIS_URL: c.url,
      SW_NEAR_CACHE_ENTRIES: c.nearCache ? '100000' : '0',
      SW_PORT: '0',
      SW_LOG_LEVEL: 'warn',
    });
    stops.push(server.stop);
    const cookie = await registerSession(server.url, `bench_latency_${i}`);
    targets.push({
      name: `session GET /api/me, redis ${c.redis}, near cache ${c.nearCache ? 'on' : 'off'}`,
      url: `${server.url}/api/me`,
      headers: { cookie, 'user-agent': 'bench' },
    });
  }

  const direct = await pingMs(redis.hostname, Number(redis.port));
  const delayed = await pingMs(proxy.host, proxy.port);
  process.stderr.write(`redis PING p50: direct ${direct.toFixed(2)} ms, through the proxy ${delayed.toFixed(2)} ms\n`);
  process.stderr.write(`bench: ${ROUNDS} rounds of ${SECONDS} s per target and load, node ${process.version}\n`);
  const loadedRuns = new Map<string, Measurement[]>();
  const aloneRuns = new Map<string, Alone[]>();
  for (let round = 1; round <= ROUNDS; round++) {
    process.stderr.write(`round ${round}\n`);
    for (const t of targets) {
      loadedRuns.set(t.name, [...(loadedRuns.get(t.name) ?? []), await load(t.name, t.url, t.headers)]);
      aloneRuns.set(t.name, [...(aloneRuns.get(t.name) ?? []), await alone(t)]);
    }
  }
  const loaded = targets.map((t) => median(loadedRuns.get(t.name)!));
  const single = targets.map((t) => median(aloneRuns.get(t.name)!) as Alone);
  const [, onDirect, offDirect, onDelayed, offDelayed] = single;
  const [rawLoaded, onDirectLoaded, offDirectLoaded, onDelayedLoaded, offDelayedLoaded] = loaded;
  const ms = (x: number) => x.toFixed(2);
  /** a / b per round: measured next to each other, so the machine's drift mostly cancels within a round. */
  const perRound = (a: Measurement, b: Measurement) => {
    const bs = loadedRuns.get(b.name)!;
    const ratios = loadedRuns.get(a.name)!.map((m, i) => m.requestsPerSecond / bs[i]!.requestsPerSecond);
    const median = [...ratios].sort((x, y) => x - y)[Math.floor(ratios.length / 2)]!;
    return `${ratios.map((r) => r.toFixed(2)).join(', ')} (median ${median.toFixed(2)})`;
  };
  const report = [
    `# Session GET /api/me with Redis ${DELAY_MS} ms away, ${new Date().toISOString()}`,
    '',
    `Machine: ${availableParallelism()} cores (${cpus()[0]?.model.trim()}); node ${process.version}. ` +
      `One app server process per row (store=redis, a signed-in session cookie), PostgreSQL and Redis on loopback; ` +
      `"+${DELAY_MS} ms each way" reaches Redis through bench/lib/delay-proxy.ts. ` +
      `Median of ${ROUNDS} interleaved rounds of ${SECONDS} s, autocannon. \`npm run bench:redis-latency\`. ` +
      `Load average (1 min) before ${loadBefore.toFixed(1)}, after ${loadavg()[0]!.toFixed(1)}: other work shares this machine, ` +
      `so compare rows of one run (interleaved, they saw the same drift) rather than runs.`,
    '',
    `Redis PING round trip, p50 of 200: direct ${ms(direct)} ms, through the proxy ${ms(delayed)} ms ` +
      `(the proxy's timers have millisecond resolution and never deliver early, so a little over ${2 * DELAY_MS} ms).`,
    '',
    `## Under load (${CONNECTIONS} connections)`,
    '',
    '| target | req/s | p50 ms | p99 ms | non-2xx | errors | req/s over the rounds |',
    '|---|---:|---:|---:|---:|---:|---|',
    ...loaded.map((r) => {
      const all = loadedRuns.get(r.name)!.map((m) => m.requestsPerSecond);
      return `| ${r.name} | ${r.requestsPerSecond} | ${r.p50} | ${r.p99} | ${r.non2xx} | ${r.errors} | ${all.join(', ')} |`;
    }),
    '',
    '## Alone (1 connection, one request at a time)',
    '',
    '| target | req/s | ms per request (1000 / req/s) | p99 ms |',
    '|---|---:|---:|---:|',
    ...single.map((r) => `| ${r.name} | ${r.requestsPerSecond} | ${ms(r.mean)} | ${r.p99} |`),
    '',
    '## What it means',
    '',
    `- One request alone, near cache on: ${ms(onDirect!.mean)} ms with Redis next door, ${ms(onDelayed!.mean)} ms ` +
      `with it ${ms(delayed)} ms away: the session is read from the server's memory, so the round trip is not paid ` +
      `(only the rare request that touches the session's idle clock, at most once a minute, or reads it again after ` +
      `an invalidation waits for Redis).`,
    `- Near cache off: ${ms(offDirect!.mean)} ms next door, ${ms(offDelayed!.mean)} ms away: every request waits for ` +
      `Redis: ${ms(offDelayed!.mean - offDirect!.mean)} ms more per request, ` +
      `${((offDelayed!.mean - offDirect!.mean) / (delayed - direct)).toFixed(1)} round trips (the session read).`,
    `- Under load, req/s with Redis away / next door, round by round: near cache on ${perRound(onDelayedLoaded!, onDirectLoaded!)}; ` +
      `off ${perRound(offDelayedLoaded!, offDirectLoaded!)}. With the near cache the rows move with the machine's other load ` +
      `(see the rounds), not with where Redis is. Without it the server waits instead of working: p50 ${offDelayedLoaded!.p50} ms ` +
      `against ${offDirectLoaded!.p50} ms next door, and ${offDelayedLoaded!.requestsPerSecond} req/s, under the ` +
      `${Math.round(CONNECTIONS / (delayed / 1000))} req/s that ${CONNECTIONS} connections each waiting one round trip allow (Little's law).`,
    `- The ceiling, raw node:http hello on the same machine: ${rawLoaded!.requestsPerSecond} req/s.`,
    '',
  ].join('\n');
  process.stdout.write(`\n${report}`);
  await mkdir(new URL('./results/', import.meta.url), { recursive: true });
  await writeFile(new URL('./results/redis-latency.md', import.meta.url), report);
} finally {
  for (const stop of stops) await stop();
  await infra.stop();
}
process.exit(0);
