/**
 * Issue 2 and 3 bench: an authenticated `GET /api/me` on ONE app server, per session-state backend,
 * beside a raw node:http hello (the machine's ceiling), a Fastify hello (the framework alone) and
 * Express 5 + express-session + connect-redis on the same Redis, all in one run. Targets are measured in interleaved rounds and
 * the median kept, so drift of this shared VM hits every target alike.
 * `npm run bench` (BENCH_SECONDS per measurement, BENCH_ROUNDS rounds).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { bundleServer } from '../src/supervisor/server-bundle.ts';
import {
  BENCH_JSON,
  BENCH_PASSWORD,
  registerSession,
  CONNECTIONS,
  load,
  median,
  ratio,
  ROUNDS,
  SECONDS,
  startInfrastructure,
  startProcess,
  table,
  type Measurement,
} from './lib/harness.ts';

interface Target {
  name: string;
  url: string;
  headers: Record<string, string>;
}

const infra = await startInfrastructure();
const serverEntry = await bundleServer();
const stops: Array<() => Promise<void>> = [];
const targets: Target[] = [];

try {
  const raw = await startProcess(new URL('./peers/raw-hello.ts', import.meta.url).pathname, {});
  stops.push(raw.stop);
  targets.push({ name: 'raw node:http hello', url: raw.url, headers: {} });
  const fastify = await startProcess(new URL('./peers/fastify-hello.ts', import.meta.url).pathname, {});
  stops.push(fastify.stop);
  targets.push({ name: 'fastify hello (the framework alone)', url: fastify.url, headers: {} });

  for (const store of ['memory', 'postgres', 'redis'] as const) {
    const server = await startProcess(serverEntry, {
      SW_MODE: store === 'memory' ? 'stateful' : 'stateless',
      SW_STORE: store,
      SW_DATABASE_URL: infra.databaseUrl,
      SW_REDIS_URL: infra.redisUrl,
      SW_PORT: '0',
      SW_LOG_LEVEL: 'warn',
    });
    stops.push(server.stop);
    const cookie = await registerSession(server.url, `bench_${store}`);
    targets.push({
      name: `statewise session GET /api/me (${store})`,
      url: `${server.url}/api/me`,
      headers: { cookie, 'user-agent': 'bench' },
    });
    const token = await fetch(`${server.url}/api/auth/token`, {
      method: 'POST',
      headers: BENCH_JSON,
      body: JSON.stringify({ username: `bench_${store}`, password: BENCH_PASSWORD }),
    });
    const { accessToken } = (await token.json()) as { accessToken: string };
    targets.push({
      name: `statewise bearer GET /api/me (${store})`,
      url: `${server.url}/api/me`,
      headers: { authorization: `Bearer ${accessToken}` },
    });
  }

  const express = await startProcess(new URL('./peers/express-session.ts', import.meta.url).pathname, {
    REDIS_URL: infra.redisUrl,
  });
  stops.push(express.stop);
  const login = await fetch(`${express.url}/login`);
  targets.push({
    name: 'express 5 + express-session + connect-redis GET /me',
    url: `${express.url}/me`,
    headers: { cookie: login.headers.getSetCookie()[0]!.split(';')[0]! },
  });

  process.stderr.write(
    `bench: ${ROUNDS} rounds of ${SECONDS} s per target, ${CONNECTIONS} connections, node ${process.version}\n`,
  );
  const runs = new Map<string, Measurement[]>();
  for (let round = 1; round <= ROUNDS; round++) {
    process.stderr.write(`round ${round}\n`);
    for (const t of targets) runs.set(t.name, [...(runs.get(t.name) ?? []), await load(t.name, t.url, t.headers)]);
  }
  const rows = targets.map((t) => median(runs.get(t.name)!));
  const rps = (name: string) => rows.find((r) => r.name === name)?.requestsPerSecond ?? 0;
  const rawRps = rps('raw node:http hello');
  const redis = rps('statewise session GET /api/me (redis)');
  const ratios = [
    ['redis session / raw hello (target >= 0.5)', ratio(redis, rawRps)],
    [
      'redis session / express-session + connect-redis (target >= 5)',
      ratio(redis, rps('express 5 + express-session + connect-redis GET /me')),
    ],
    ['redis session / memory session (target >= 0.8)', ratio(redis, rps('statewise session GET /api/me (memory)'))],
    ['postgres session / raw hello', ratio(rps('statewise session GET /api/me (postgres)'), rawRps)],
    ['bearer (memory) / raw hello (target >= 0.6)', ratio(rps('statewise bearer GET /api/me (memory)'), rawRps)],
    ['bearer (redis) / raw hello', ratio(rps('statewise bearer GET /api/me (redis)'), rawRps)],
    ['bearer (postgres) / raw hello', ratio(rps('statewise bearer GET /api/me (postgres)'), rawRps)],
    ['fastify hello / raw hello (the framework alone)', ratio(rps('fastify hello (the framework alone)'), rawRps)],
    [
      'bearer (memory) / fastify hello',
      ratio(rps('statewise bearer GET /api/me (memory)'), rps('fastify hello (the framework alone)')),
    ],
    ['redis session / fastify hello', ratio(redis, rps('fastify hello (the framework alone)'))],
  ];
  const report = `${table(rows)}\n\n| ratio | value |\n|---|---:|\n${ratios.map(([k, v]) => `| ${k} | ${v} |`).join('\n')}\n`;
  process.stdout.write(`\n${report}`);
  await mkdir(new URL('./results/', import.meta.url), { recursive: true });
  await writeFile(
    new URL('./results/session-me.md', import.meta.url),
    `# GET /api/me, ${new Date().toISOString()}\n\nMedian of ${ROUNDS} interleaved rounds of ${SECONDS} s, ${CONNECTIONS} connections, autocannon, ${process.version}, one app server process.\n\n${report}`,
  );
} finally {
  for (const stop of stops) await stop();
  await infra.stop();
}
