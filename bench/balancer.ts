/**
 * Issue 10 bench: the embedded balancer against HAProxy 2.6 (one thread) and nginx 1.22 (one
 * worker), keep-alive on both sides, in front of the same 3 app servers, in one run. One server
 * alone, without a balancer, is the reference. Interleaved rounds, the median kept.
 * `npm run bench:balancer` (BENCH_SECONDS, BENCH_ROUNDS, BENCH_CONNECTIONS).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus } from 'node:os';
import { bundleServer } from '../src/supervisor/server-bundle.ts';
import { findBinary, startExternalBalancer, type RunningBalancer } from '../src/balancer/external/run.ts';
import {
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

const PATHS = ['/healthz', '/api/menu'] as const;

/** Waits until a balancer answers and has sent to every server. */
async function waitForAll(url: string, ids: readonly string[]): Promise<void> {
  const deadline = Date.now() + 15_000;
  const seen = new Set<string>();
  while (Date.now() < deadline) {
    const response = await fetch(`${url}/healthz`).catch(() => undefined);
    const by = response?.headers.get('x-served-by');
    await response?.arrayBuffer();
    if (by) seen.add(by);
    if (ids.every((id) => seen.has(id))) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`${url} did not reach every server (saw ${[...seen].join(', ') || 'none'})`);
}

const infra = await startInfrastructure();
const serverEntry = await bundleServer();
const stops: Array<() => Promise<void>> = [];
const fronts: Array<{ name: string; url: string }> = [];
const skipped: string[] = [];

try {
  const servers = await Promise.all(
    [1, 2, 3].map(async (n) => {
      const server = await startProcess(serverEntry, {
        SW_SERVER_ID: `s${n}`,
        SW_MODE: 'stateless',
        SW_STORE: 'postgres',
        SW_DATABASE_URL: infra.databaseUrl,
        SW_PORT: '0',
        SW_LOG_LEVEL: 'warn',
      });
      stops.push(server.stop);
      return { id: `s${n}`, url: server.url, address: server.url.replace('http://', '') };
    }),
  );
  const ids = servers.map((s) => s.id);
  fronts.push({ name: 'one server, no balancer', url: servers[0]!.url });

  const embedded = await startProcess(new URL('./peers/embedded-balancer.ts', import.meta.url).pathname, {
    SW_UPSTREAMS: servers.map((s) => `${s.id}=${s.url}`).join(','),
  });
  stops.push(embedded.stop);
  fronts.push({ name: 'embedded balancer', url: embedded.url });

  for (const kind of ['haproxy', 'nginx'] as const) {
    const binary = findBinary(kind);
    if (!binary) {
      skipped.push(`${kind} is not installed (apt-get install ${kind}): skipped`);
      continue;
    }
    const running: RunningBalancer = await startExternalBalancer(kind, binary, servers);
    stops.push(running.stop);
    fronts.push({ name: kind === 'haproxy' ? 'HAProxy 2.6, one thread' : 'nginx 1.22, one worker', url: running.url });
  }
  for (const front of fronts.slice(1)) await waitForAll(front.url, ids);
  for (const line of skipped) process.stderr.write(`${line}\n`);

  const runs = new Map<string, Measurement[]>();
  for (let round = 1; round <= ROUNDS; round++) {
    process.stderr.write(`round ${round}/${ROUNDS}\n`);
    for (const path of PATHS)
      for (const front of fronts) {
        const name = `${front.name}: GET ${path}`;
        const m = await load(name, `${front.url}${path}`);
        runs.set(name, [...(runs.get(name) ?? []), m]);
      }
  }
  const results = [...runs.values()].map(median);
  const find = (front: string, path: string) => results.find((r) => r.name === `${front}: GET ${path}`);

  const lines = [
    `# Balancers, ${new Date().toISOString()}`,
    '',
    `Machine: ${availableParallelism()} cores (${cpus()[0]?.model.trim()}); node ${process.version}. ` +
      `3 app servers (stateless, store=postgres), each balancer in its own process; autocannon ` +
      `${CONNECTIONS} connections, ${SECONDS} s per measurement, median of ${ROUNDS} interleaved rounds. ` +
      `Everything shares the same cores, the load generator included.`,
    ...(skipped.length ? ['', ...skipped.map((s) => `- ${s}`)] : []),
    '',
    table(results),
    '',
    '| ratio (targets: throughput >= 0.8 x HAProxy, p99 <= 2 x HAProxy) | value |',
    '|---|---:|',
  ];
  for (const path of PATHS) {
    const ours = find('embedded balancer', path);
    const haproxy = find('HAProxy 2.6, one thread', path);
    const nginx = find('nginx 1.22, one worker', path);
    if (ours && haproxy) {
      lines.push(
        `| GET ${path}: embedded / HAProxy throughput | ${ratio(ours.requestsPerSecond, haproxy.requestsPerSecond)} |`,
      );
      lines.push(`| GET ${path}: embedded / HAProxy p99 | ${ratio(ours.p99, haproxy.p99)} |`);
    }
    if (ours && nginx)
      lines.push(
        `| GET ${path}: embedded / nginx throughput | ${ratio(ours.requestsPerSecond, nginx.requestsPerSecond)} |`,
      );
  }
  const report = lines.join('\n') + '\n';
  process.stdout.write(`\n${report}`);
  await mkdir(new URL('./results/', import.meta.url), { recursive: true });
  await writeFile(new URL('./results/balancer.md', import.meta.url), report);
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => {});
  await infra.stop();
}
