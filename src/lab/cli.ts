/**
 * `npm run lab -- [experiment ...] [--quick]`: starts its own stores (embedded PostgreSQL, and
 * redis-server when installed), runs the experiments on whole systems, and writes
 * reports/<timestamp>/report.md, report.html and results.json. Experiments so far: crash.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startLabInfrastructure } from './infrastructure.ts';
import { EXPERIMENTS, runLab, type ExperimentName } from './run-lab.ts';

const { values, positionals } = parseArgs({
  args: process.argv.slice(2),
  options: { quick: { type: 'boolean', default: false } },
  allowPositionals: true,
});
const unknown = positionals.filter((name) => !(EXPERIMENTS as readonly string[]).includes(name));
if (unknown.length > 0) {
  process.stderr.write(`unknown experiment(s): ${unknown.join(', ')}; known: ${EXPERIMENTS.join(', ')}\n`);
  process.exit(2);
}
const experiments = (positionals.length > 0 ? positionals : [...EXPERIMENTS]) as ExperimentName[];
const log = (line: string) => process.stderr.write(`${line}\n`);
const outDir = join(
  fileURLToPath(new URL('../../reports/', import.meta.url)),
  new Date().toISOString().replace(/[:.]/g, '-'),
);
const infra = await startLabInfrastructure(log);
try {
  await runLab({ experiments, quick: values.quick, infra, outDir, log });
  log(`report: ${join(outDir, 'report.html')}`);
} finally {
  await infra.stop();
}
