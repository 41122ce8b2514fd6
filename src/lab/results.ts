import type { CrashResult } from './experiments/crash.ts';

/** What a lab run measured: results.json, and what the report is drawn from. */
export interface LabResults {
  startedAt: string;
  machine: { cores: number; cpu: string; node: string };
  quick: boolean;
  skipped: string[];
  /** Each system's runs, repeated (once with --quick, else three times). */
  crash?: Array<{ system: string; runs: CrashResult[] }>;
}
