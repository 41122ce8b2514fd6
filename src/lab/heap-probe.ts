/**
 * A server's memory after a full garbage collection, for the memory experiment: without one, a
 * heap figure is mostly garbage not yet collected. The servers of a cluster started through
 * `startWithHeapProbe` preload a few lines (NODE_OPTIONS: --expose-gc --import) that, on SIGUSR2,
 * collect garbage and write process.memoryUsage() to a file the lab then reads. Nothing else of
 * the server changes.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { until } from './until.ts';

export interface MemoryReading {
  heapUsed: number;
  rss: number;
}

export interface HeapProbe {
  /** Asks the server process `pid` for its memory after a full GC. */
  read(pid: number): Promise<MemoryReading>;
  dispose(): Promise<void>;
}

const preload = (dir: string) => `import { renameSync, writeFileSync } from 'node:fs';
process.on('SIGUSR2', () => {
  globalThis.gc();
  globalThis.gc();
  const { heapUsed, rss } = process.memoryUsage();
  const file = ${JSON.stringify(dir)} + '/memory-' + process.pid + '.json';
  writeFileSync(file + '.tmp', JSON.stringify({ heapUsed, rss }));
  renameSync(file + '.tmp', file);
});
`;

/**
 * Runs `start` (which forks the servers) with the probe preloaded into every process it forks;
 * NODE_OPTIONS is this process's again as soon as `start` returns.
 */
export async function startWithHeapProbe<T>(start: () => Promise<T>): Promise<{ started: T; probe: HeapProbe }> {
  const dir = await mkdtemp(join(tmpdir(), 'statewise-lab-heap-'));
  const file = join(dir, 'probe.mjs');
  await writeFile(file, preload(dir));
  const options = process.env.NODE_OPTIONS;
  process.env.NODE_OPTIONS = `${options ?? ''} --expose-gc --import ${pathToFileURL(file).href}`.trim();
  let started: T;
  try {
    started = await start();
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  } finally {
    if (options === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = options;
  }
  return {
    started,
    probe: {
      async read(pid) {
        const reading = join(dir, `memory-${pid}.json`);
        await rm(reading, { force: true });
        process.kill(pid, 'SIGUSR2');
        await until(() => existsSync(reading), `the memory of process ${pid}`, 10_000);
        return JSON.parse(await readFile(reading, 'utf8')) as MemoryReading;
      },
      dispose: () => rm(dir, { recursive: true, force: true }),
    },
  };
}
