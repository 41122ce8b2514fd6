/** What a lab run measured: results.json, and what the report is drawn from. */
export interface LabResults {
  startedAt: string;
  machine: { cores: number; cpu: string; node: string; postgres?: string; redis?: string };
  quick: boolean;
  skipped: string[];
  /** Each experiment's results under its name (src/lab/experiments/), in the order they ran. */
  experiments: Record<string, unknown>;
}
