import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { ExperimentContext } from './experiment.ts';
import { EXPERIMENTS } from './experiments/index.ts';
import type { LabInfrastructure } from './infrastructure.ts';
import type { LabSystem } from './lab-cluster.ts';
import { renderHtml, renderMarkdown } from './report.ts';
import type { LabResults } from './results.ts';

export type { LabResults } from './results.ts';

export interface LabOptions {
  /** Names from src/lab/experiments/index.ts, run in that file's order. */
  experiments: readonly string[];
  /** Fewer users and one run: a smoke test (CI) rather than a measurement. */
  quick: boolean;
  /** Runs of each system in each experiment. @default 1 with quick, else 3 */
  repeat?: number;
  infra: LabInfrastructure;
  /** The run's folder: report.md, report.html and results.json go there. */
  outDir: string;
  log(line: string): void;
  /** Told before each step (one system in one experiment) and once at the end. */
  progress?(done: number, total: number, step: string): void;
}

const SYSTEMS: LabSystem[] = [
  { name: 'stateful (server memory, sticky)', mode: 'stateful', store: 'postgres' },
  { name: 'stateless, postgres', mode: 'stateless', store: 'postgres' },
  { name: 'stateless, redis', mode: 'stateless', store: 'redis' },
];

/** The stores' versions, for the report's description of the machine. */
async function versions(infra: LabInfrastructure): Promise<{ postgres?: string; redis?: string }> {
  const client = new pg.Client(infra.databaseUrl);
  await client.connect();
  const postgres = (await client.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version;
  await client.end();
  if (!infra.redisUrl) return { postgres };
  const redis = new Redis(infra.redisUrl);
  const info = await redis.info('server');
  redis.disconnect();
  return { postgres, redis: /redis_version:(\S+)/.exec(info)?.[1] };
}

/** Runs the experiments one after the other and writes the report. */
export async function runLab(options: LabOptions): Promise<LabResults> {
  const results: LabResults = {
    startedAt: new Date().toISOString(),
    machine: {
      cores: availableParallelism(),
      cpu: cpus()[0]?.model.trim() ?? 'unknown',
      node: process.version,
      ...(await versions(options.infra)),
    },
    quick: options.quick,
    skipped: [],
    experiments: {},
  };
  const systems = SYSTEMS.filter((system) => {
    if (system.store !== 'redis' || options.infra.redisUrl) return true;
    results.skipped.push(`${system.name}: redis-server is not installed`);
    return false;
  });
  const repeat = options.repeat ?? (options.quick ? 1 : 3);
  const chosen = EXPERIMENTS.filter((e) => options.experiments.includes(e.name));
  const total = chosen.reduce((sum, e) => sum + e.steps({ systems, quick: options.quick, repeat }), 0);
  let done = 0;
  for (const experiment of chosen) {
    const ctx: ExperimentContext = {
      infra: options.infra,
      systems,
      quick: options.quick,
      repeat,
      step: (label) => options.progress?.(done++, total, label),
      log: options.log,
    };
    results.experiments[experiment.name] = await experiment.run(ctx);
  }
  options.progress?.(total, total, 'report');
  await mkdir(options.outDir, { recursive: true });
  await writeFile(join(options.outDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(join(options.outDir, 'report.md'), renderMarkdown(results));
  await writeFile(join(options.outDir, 'report.html'), await renderHtml(results));
  return results;
}
