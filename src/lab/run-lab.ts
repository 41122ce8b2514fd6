import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { crash } from './experiments/crash.ts';
import type { LabInfrastructure } from './infrastructure.ts';
import type { LabSystem } from './lab-cluster.ts';
import { renderHtml, renderMarkdown } from './report.ts';
import type { LabResults } from './results.ts';

export type { LabResults } from './results.ts';

export const EXPERIMENTS = ['crash'] as const;
export type ExperimentName = (typeof EXPERIMENTS)[number];

export interface LabOptions {
  experiments: readonly ExperimentName[];
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

/** Runs the experiments one system at a time and writes the report. */
export async function runLab(options: LabOptions): Promise<LabResults> {
  const results: LabResults = {
    startedAt: new Date().toISOString(),
    machine: { cores: availableParallelism(), cpu: cpus()[0]?.model.trim() ?? 'unknown', node: process.version },
    quick: options.quick,
    skipped: [],
  };
  const systems = SYSTEMS.filter((system) => {
    if (system.store !== 'redis' || options.infra.redisUrl) return true;
    results.skipped.push(`${system.name}: redis-server is not installed`);
    return false;
  });
  const repeat = options.repeat ?? (options.quick ? 1 : 3);
  const total = options.experiments.length * systems.length * repeat;
  let done = 0;
  if (options.experiments.includes('crash')) {
    results.crash = [];
    for (const system of systems) {
      const runs = [];
      for (let run = 1; run <= repeat; run++) {
        options.progress?.(done++, total, `crash: ${system.name} (run ${run} of ${repeat})`);
        runs.push(await crash(system, options.infra, options.quick ? 30 : 300));
      }
      results.crash.push({ system: system.name, runs });
    }
  }
  options.progress?.(total, total, 'report');
  await mkdir(options.outDir, { recursive: true });
  await writeFile(join(options.outDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(join(options.outDir, 'report.md'), renderMarkdown(results));
  await writeFile(join(options.outDir, 'report.html'), await renderHtml(results));
  return results;
}
