import type { LabInfrastructure } from './infrastructure.ts';
import type { LabSystem } from './lab-cluster.ts';
import type { ChartSpec } from './charts.ts';

/** What an experiment adds to the report: a claim of the articles, its verdict, a table, charts. */
export interface Section {
  title: string;
  /** What the articles (or common belief) say. */
  claim: string;
  /** Confirmed, refuted or "depends", with the numbers that say so. */
  verdict: string;
  header: string[];
  rows: Array<Array<string | number>>;
  /** What the HTML report draws. */
  charts: ChartSpec[];
  /** Anything a reader needs to read the numbers right (e.g. "2 cores: the curve flattens"). */
  notes?: string[];
}

/** What every experiment runs with. */
export interface ExperimentContext {
  infra: LabInfrastructure;
  /** The systems to compare (the redis one only when redis-server runs). */
  systems: readonly LabSystem[];
  /** A smoke test: fewer users, shorter loads, one run. */
  quick: boolean;
  /** Runs of each measurement (1 with quick, else 3 unless told). */
  repeat: number;
  /** Called before each step; the progress bar counts them (see `steps`). */
  step(label: string): void;
  log(line: string): void;
}

/**
 * One experiment of the lab (src/lab/experiments/): it runs on whole systems, returns plain JSON
 * (results.json keeps it under its name), and turns that into report sections.
 */
export interface Experiment<Result = unknown> {
  readonly name: string;
  /** How many times `run` calls ctx.step, for the progress bar. */
  steps(ctx: Pick<ExperimentContext, 'systems' | 'quick' | 'repeat'>): number;
  run(ctx: ExperimentContext): Promise<Result>;
  report(result: Result, ctx: { quick: boolean }): Section[];
}

/** One system's runs of an experiment, as results.json keeps them. */
export interface SystemRuns<Run> {
  system: string;
  runs: Run[];
}

/**
 * Runs `once` ctx.repeat times on each system, in turn, each run a step of the progress bar
 * ("<experiment>: <system> (run i of n)").
 */
export async function repeatEach<S extends { name: string }, Run>(
  ctx: Pick<ExperimentContext, 'repeat' | 'step'>,
  experiment: string,
  systems: readonly S[],
  once: (system: S) => Promise<Run>,
): Promise<SystemRuns<Run>[]> {
  const results: SystemRuns<Run>[] = [];
  for (const system of systems) {
    const runs: Run[] = [];
    for (let run = 1; run <= ctx.repeat; run++) {
      ctx.step(`${experiment}: ${system.name} (run ${run} of ${ctx.repeat})`);
      runs.push(await once(system));
    }
    results.push({ system: system.name, runs });
  }
  return results;
}

/** Every run of the systems whose name starts with `prefix` (e.g. 'stateless'). */
export const runsOf = <Run>(all: readonly SystemRuns<Run>[], prefix: string): Run[] =>
  all.filter((r) => r.system.startsWith(prefix)).flatMap((r) => r.runs);
