/**
 * `npm run lab -- [experiment ...] [--quick] [--repeat N] [--out DIR]`: starts its own stores
 * (embedded PostgreSQL, and redis-server when installed), runs the experiments on whole systems,
 * and writes reports/<timestamp>/ (or DIR) report.md, report.html and results.json. Each system runs 3 times (1 with
 * --quick; --repeat N). The experiments: src/lab/experiments/index.ts.
 */
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { startLabInfrastructure } from './infrastructure.ts';
import { EXPERIMENT_NAMES } from './experiments/index.ts';
import { renderSummary } from './report.ts';
import { runLab } from './run-lab.ts';

const { values, positionals } = parseArgs({
  args: process.argv.slice(2),
  options: { quick: { type: 'boolean', default: false }, repeat: { type: 'string' }, out: { type: 'string' } },
  allowPositionals: true,
});
const unknown = positionals.filter((name) => !EXPERIMENT_NAMES.includes(name));
if (unknown.length > 0) {
  process.stderr.write(`unknown experiment(s): ${unknown.join(', ')}; known: ${EXPERIMENT_NAMES.join(', ')}\n`);
  process.exit(2);
}
const repeat = values.repeat === undefined ? undefined : Number(values.repeat);
if (repeat !== undefined && (!Number.isInteger(repeat) || repeat < 1 || repeat > 20)) {
  process.stderr.write('--repeat is a whole number from 1 to 20\n');
  process.exit(2);
}
const experiments = positionals.length > 0 ? positionals : EXPERIMENT_NAMES;
const log = (line: string) => process.stderr.write(`${line}\n`);
const outDir = values.out
  ? resolve(values.out)
  : join(fileURLToPath(new URL('../../reports/', import.meta.url)), new Date().toISOString().replace(/[:.]/g, '-'));
const bar = new cliProgress.SingleBar(
  { format: '{bar} {value}/{total} {step}', hideCursor: true, stream: process.stderr },
  cliProgress.Presets.shades_classic,
);
const infra = await startLabInfrastructure(log);
try {
  bar.start(1, 0, { step: 'starting' });
  const results = await runLab({
    experiments,
    quick: values.quick,
    repeat,
    infra,
    outDir,
    log: (line) => (bar.isActive ? bar.update({ step: line }) : log(line)),
    progress: (done, total, step) => {
      bar.setTotal(total);
      bar.update(done, { step });
    },
  });
  bar.stop();
  log(renderSummary(results));
  log(`report: ${join(outDir, 'report.html')}`);
} finally {
  bar.stop();
  await infra.stop();
}
