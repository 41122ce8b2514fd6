/**
 * `npm run lab` as a user runs it: the command line, its own stores (an embedded PostgreSQL and a
 * redis-server of its own), the progress and summary on stderr, the three files of the report, and
 * the refusals of a wrong command line. One quick experiment (stickiness): the experiments
 * themselves are checked in process by the other files of test/lab.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

async function lab(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/lab/cli.ts', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stderr };
}

describe('npm run lab, the command', () => {
  const dirs: string[] = [];
  after(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

  it('runs an experiment on its own stores and writes report.md, report.html and results.json', async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'statewise-lab-cli-')), 'report');
    dirs.push(out);
    const { code, stderr } = await lab(['stickiness', '--quick', '--out', out]);
    assert.equal(code, 0, stderr.slice(-2000));
    assert.match(stderr, /stickiness/);
    assert.match(stderr, new RegExp(`report: ${join(out, 'report.html').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));

    const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8'));
    assert.deepEqual(Object.keys(results.experiments), ['stickiness']);
    const markdown = await readFile(join(out, 'report.md'), 'utf8');
    assert.match(markdown, /stickiness/i);
    assert.match(markdown, /confirmed|refuted|depends/i, 'a verdict');
    const html = await readFile(join(out, 'report.html'), 'utf8');
    assert.match(html, /<svg/, 'charts drawn inline');
    // Self-contained: nothing fetched (no script, no stylesheet or image from anywhere).
    assert.doesNotMatch(html, /<script|<link|<img|@import|url\(\s*['"]?https?:/i);
  });

  it('refuses an unknown experiment and a bad --repeat, saying what is known', async () => {
    const unknown = await lab(['crsh']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown experiment\(s\): crsh; known: crash, /);
    const repeat = await lab(['--repeat', '0']);
    assert.equal(repeat.code, 2);
    assert.match(repeat.stderr, /--repeat is a whole number from 1 to 20/);
  });
});
