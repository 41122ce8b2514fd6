/**
 * Where the CPU goes: V8 CPU profiles of the embedded balancer (in front of 3 raw node:http
 * servers, so only the balancer's own work is measured) and of one app server answering a session
 * GET /api/me (postgres and redis stores), under autocannon load. Prints the self time grouped by
 * where the code lives (node internals, a package, a file of statewise) and the top functions.
 * `npm run bench:profile` (BENCH_SECONDS); profiles are left in $TMPDIR/statewise-profiles.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleServer } from '../src/supervisor/server-bundle.ts';
import { load, registerSession, SECONDS, startInfrastructure, startProcess } from './lib/harness.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount: number;
}

const dir = join(tmpdir(), 'statewise-profiles');

/** The place a frame's code lives: a package, a file of this project, or node itself. */
function placeOf(url: string): string {
  if (url === '') return '(native, GC, idle)';
  if (url.startsWith('node:')) return 'node internals';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.includes('/.cache/')) return 'statewise (the bundled server)';
  const own = /\/(src|bench)\/(.+)$/.exec(url);
  return own ? `${own[1]}/${own[2]}` : url;
}

/** Summarizes the samples taken in the measured window only (not the start-up, not the warm-up). */
async function summarize(name: string, file: string, window: { from: number; to: number }): Promise<string> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as {
    nodes: ProfileNode[];
    startTime: number;
    samples: number[];
    timeDeltas: number[];
  };
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const hits = new Map<number, number>();
  // Sample times are microseconds of a monotonic clock: the window is given on the same clock.
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    at += profile.timeDeltas[i]!;
    if (at >= window.from && at <= window.to) hits.set(id, (hits.get(id) ?? 0) + 1);
  });
  let total = 0;
  let idle = 0;
  const byPlace = new Map<string, number>();
  const byFunction = new Map<string, number>();
  for (const [id, count] of hits) {
    const n = nodes.get(id)!;
    total += count;
    if (n.callFrame.functionName === '(idle)') {
      idle += count;
      continue;
    }
    const place = placeOf(n.callFrame.url);
    byPlace.set(place, (byPlace.get(place) ?? 0) + count);
    const fn = `${n.callFrame.functionName || '(anonymous)'} (${place})`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + count);
  }
  const busy = total - idle;
  const top = (map: Map<string, number>, count: number) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, count)
      .map(([what, hits]) => `| ${what} | ${((100 * hits) / busy).toFixed(1)}% |`);
  return [
    `### ${name}`,
    '',
    `Busy ${((100 * busy) / total).toFixed(0)}% of the samples; shares below are of the busy time.`,
    '',
    '| where | self time |',
    '|---|---:|',
    ...top(byPlace, 10),
    '',
    '| function | self time |',
    '|---|---:|',
    ...top(byFunction, 12),
    '',
  ].join('\n');
}

/** Forks `path` with --cpu-prof, runs `work`, stops it with SIGINT (which writes the profile). */
async function profiled(
  name: string,
  path: string,
  env: NodeJS.ProcessEnv,
  work: (url: string) => Promise<{ from: number; to: number }>,
): Promise<string> {
  const profileDir = join(dir, name.replace(/\W+/g, '-'));
  await rm(profileDir, { recursive: true, force: true });
  await mkdir(profileDir, { recursive: true });
  const child: ChildProcess = fork(path, [], {
    execArgv: [...(path.endsWith('.ts') ? ['--import', 'tsx'] : []), '--cpu-prof', `--cpu-prof-dir=${profileDir}`],
    env: { ...process.env, ...env, SW_PORT: '0', SW_LOG_LEVEL: 'warn' },
  });
  const [{ port }] = (await once(child, 'message')) as [{ port: number }];
  const window = await work(`http://127.0.0.1:${port}`);
  child.kill('SIGINT');
  await once(child, 'exit');
  const [file] = await readdir(profileDir);
  return summarize(name, join(profileDir, file!), window);
}

/**
 * The last SECONDS of `run` (the measured part of a load, after its warm-up), in microseconds of
 * the monotonic clock V8's profiles use: performance.timeOrigin + now(), as the profile's clock.
 */
async function measured(run: () => Promise<unknown>): Promise<{ from: number; to: number }> {
  await run();
  const to = hrMicros();
  return { from: to - SECONDS * 1e6, to };
}
const hrMicros = () => Number(process.hrtime.bigint() / 1000n);

const infra = await startInfrastructure();
const sections: string[] = [];
try {
  const upstreams = await Promise.all(
    [1, 2, 3].map(() => startProcess(new URL('./peers/raw-hello.ts', import.meta.url).pathname, {})),
  );
  sections.push(
    await profiled(
      'embedded balancer, GET / over 3 raw node:http servers',
      new URL('./peers/embedded-balancer.ts', import.meta.url).pathname,
      { SW_UPSTREAMS: upstreams.map((u, i) => `s${i + 1}=${u.url}`).join(',') },
      async (url) => {
        // Health checks admit the servers first.
        while ((await fetch(url).catch(() => undefined))?.status !== 200) await new Promise((r) => setTimeout(r, 50));
        return measured(() => load('embedded balancer', `${url}/`));
      },
    ),
  );
  for (const upstream of upstreams) await upstream.stop();

  for (const store of ['postgres', 'redis'] as const) {
    sections.push(
      await profiled(
        `app server, session GET /api/me, store=${store}`,
        await bundleServer(),
        { SW_STORE: store, SW_DATABASE_URL: infra.databaseUrl, SW_REDIS_URL: infra.redisUrl },
        async (url) => {
          const cookie = await registerSession(url, `prof_${store}`);
          return measured(() =>
            load(`session GET /api/me (${store})`, `${url}/api/me`, { cookie, 'user-agent': 'bench' }),
          );
        },
      ),
    );
  }
} finally {
  await infra.stop();
}
process.stdout.write(`\n${sections.join('\n')}`);
process.exit(0);
