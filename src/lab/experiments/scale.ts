import { availableParallelism } from 'node:os';
import type { Experiment, Section } from '../experiment.ts';
import { startLabCluster, type LabCluster } from '../lab-cluster.ts';
import { CONNECTIONS, measureLoad, signUp, stopAtOnce, type LoadDurations, type LoadResult } from '../load.ts';
import { median, spread } from '../stats.ts';

export interface ScaleResult {
  /** os.availableParallelism() where it ran. */
  cores: number;
  connections: number;
  seconds: number;
  systems: Array<{ system: string; points: Array<{ servers: number; runs: ScaleRun[] }> }>;
}

/** A load, and the requests the balancer sent each server meanwhile: proof that each one took part. */
export type ScaleRun = LoadResult & { perServer: Record<string, number> };

const MAX_SERVERS = 3;

const durations = (quick: boolean): LoadDurations =>
  quick ? { warmupSeconds: 0, seconds: 1 } : { warmupSeconds: 1, seconds: 5 };

/** Processes that want a core at once: the app servers, the balancer and the load generator. */
export const busyProcesses = (servers: number) => servers + 2;

/** Requests per second for each core that the busy processes can use at once. */
export const perCore = (requestsPerSecond: number, servers: number, cores: number) =>
  requestsPerSecond / Math.min(busyProcesses(servers), cores);

/** Requests the balancer has sent to each server so far. */
const requestsSent = (cluster: LabCluster) =>
  Object.fromEntries(cluster.supervisor.view().servers.map((s) => [s.id, s.requests]));

/**
 * Experiment 3, scale: an authenticated GET /api/me through the balancer with 3, 2 and 1 app
 * servers, for each stateless system. The system starts with 3 and loses one by SIGKILL after each
 * point: the same figures as adding servers, without waiting for each new one to boot (the quick
 * smoke test stays short); the balancer stops routing to a server the moment its process exits.
 */
export const scale: Experiment<ScaleResult> = {
  name: 'scale',
  steps: ({ systems, repeat }) => systems.filter((s) => s.mode === 'stateless').length * repeat * MAX_SERVERS,
  async run(ctx) {
    const time = durations(ctx.quick);
    const result: ScaleResult = {
      cores: availableParallelism(),
      connections: CONNECTIONS,
      seconds: time.seconds,
      systems: [],
    };
    const runId = Date.now().toString(36);
    for (const [index, system] of ctx.systems.filter((s) => s.mode === 'stateless').entries()) {
      const points = Array.from({ length: MAX_SERVERS }, (_, i) => ({ servers: i + 1, runs: [] as ScaleRun[] }));
      for (let run = 1; run <= ctx.repeat; run++) {
        ctx.log(`scale: starting ${system.name} with ${MAX_SERVERS} servers`);
        const cluster = await startLabCluster(system, ctx.infra, MAX_SERVERS);
        try {
          const cookie = await signUp(cluster.url, `lab_scale_${runId}_${index}_${run}`);
          for (const point of [...points].reverse()) {
            const extra = cluster.supervisor.server(`s${point.servers + 1}`);
            if (extra) {
              ctx.log(`scale: killing s${point.servers + 1} of ${system.name}`);
              await extra.kill();
            }
            ctx.step(`scale: ${system.name}, ${point.servers} server(s) (run ${run} of ${ctx.repeat})`);
            const before = requestsSent(cluster);
            // In a worker thread: the balancer runs in this process's event loop.
            const load = await measureLoad({ url: `${cluster.url}/api/me`, headers: { cookie }, inWorker: true }, time);
            const after = requestsSent(cluster);
            const perServer = Object.fromEntries(Object.entries(after).map(([id, n]) => [id, n - (before[id] ?? 0)]));
            point.runs.push({ ...load, perServer });
          }
        } finally {
          ctx.log(`scale: stopping ${system.name}`);
          await stopAtOnce(cluster);
        }
      }
      result.systems.push({ system: system.name, points });
    }
    return result;
  },
  report(result, { quick }): Section[] {
    const rps = (runs: LoadResult[]) => median(runs.map((r) => r.requestsPerSecond));
    const growth = result.systems.map(({ system, points }) => ({
      system,
      times: rps(points.at(-1)!.runs) / rps(points[0]!.runs),
    }));
    const said = growth.map((g) => `${g.system} x${g.times.toFixed(2)}`).join(', ');
    const enoughCores = result.cores >= busyProcesses(MAX_SERVERS);
    const verdict = growth.every((g) => g.times >= 0.8 * MAX_SERVERS)
      ? `Confirmed: ${MAX_SERVERS} servers give ${said} the throughput of one.`
      : enoughCores
        ? `Refuted here: ${MAX_SERVERS} servers give only ${said} the throughput of one, with ${result.cores} cores for ${busyProcesses(MAX_SERVERS)} busy processes: something shared (the balancer's one thread, the store) is the limit.`
        : `Depends on the cores: ${MAX_SERVERS} servers give ${said} the throughput of one, because ${busyProcesses(MAX_SERVERS)} busy processes (the servers, the balancer, the load generator) share ${result.cores} cores: a server added on the same machine adds no CPU. Stateless servers can be added; they only scale on cores (or machines) of their own.`;
    return [
      {
        title: `Scale: 1 to ${MAX_SERVERS} stateless app servers behind the balancer (${result.cores} cores)`,
        claim:
          'The articles: stateless servers scale horizontally; add servers behind the balancer and the system serves proportionally more.',
        verdict,
        header: ['system', 'servers', 'req/s', 'p50 ms', 'p99 ms', 'x 1 server', 'req/s per busy core', 'failed'],
        rows: result.systems.flatMap(({ system, points }) =>
          points.map((p) => [
            system,
            p.servers,
            spread(p.runs.map((r) => r.requestsPerSecond)),
            spread(p.runs.map((r) => r.p50)),
            spread(p.runs.map((r) => r.p99)),
            `x${(rps(p.runs) / rps(points[0]!.runs)).toFixed(2)}`,
            Math.round(perCore(rps(p.runs), p.servers, result.cores)),
            spread(p.runs.map((r) => r.failed)),
          ]),
        ),
        charts: [
          {
            title: 'Throughput through the balancer (median)',
            axis: 'requests/s',
            kind: 'line',
            labelAxis: 'app servers',
            values: result.systems.flatMap(({ system, points }) =>
              points.map((p) => ({ label: String(p.servers), series: system, value: rps(p.runs) })),
            ),
          },
          {
            title: 'Per-core efficiency (median)',
            axis: 'requests/s per busy core',
            kind: 'line',
            labelAxis: 'app servers',
            values: result.systems.flatMap(({ system, points }) =>
              points.map((p) => ({
                label: String(p.servers),
                series: system,
                value: Math.round(perCore(rps(p.runs), p.servers, result.cores)),
              })),
            ),
          },
        ],
        notes: [
          `This machine has ${result.cores} cores (os.availableParallelism()). Each point keeps N app servers, the balancer (one thread, in the lab's process) and the load generator (autocannon, ${result.connections} connections, in a worker thread) busy: N + 2 processes.${enoughCores ? '' : ` With ${result.cores} cores they already outnumber the cores at one server, so the curve flattens: more servers share the same CPU.`}`,
          'Per-core efficiency = throughput / min(servers + 2, cores): requests per second for each core the busy processes can use at once. Flat means each core does the same work however the servers are split; falling means the extra processes cost more than they bring (context switches, more connections to the stores).',
          'The embedded balancer is one thread that every request crosses, whatever the number of servers: it bounds the curve. One server here against the same server loaded directly (the cost section) shows what that hop costs.',
          `GET /api/me with a session cookie, round robin over the servers, ${result.seconds} s per point; the system starts with 3 servers and loses one (SIGKILL) after each point; figures are the median (min to max) of the runs. The machine may be shared with other work: timings are noisy.`,
          ...(quick ? ['--quick: 1 s per point, no warm-up, one run: a smoke test, not a measurement.'] : []),
        ],
      },
    ];
  },
};
