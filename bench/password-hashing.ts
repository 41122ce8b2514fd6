/**
 * Issue 11 bench: password checks per second, the cost of a sign-in on the CPU, before and after
 * the move to Argon2id. Each scheme runs for BENCH_SECONDS (default 5) with as many checks in
 * flight as there are cores, on the same machine in the same run:
 *   - scrypt N=2^14, r=8, p=1: what statewise stored until now;
 *   - scrypt N=2^17, r=8, p=1: OWASP's minimum for scrypt;
 *   - Argon2id m=19 MiB, t=2, p=1: OWASP's first choice, what statewise stores now.
 * `npm run bench:passwords`
 */
import { randomBytes, scrypt } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus } from 'node:os';
import { hash } from '@node-rs/argon2';
import { ARGON2ID } from '../src/accounts/passwords.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const inFlight = availableParallelism();

const scryptAt = (log2N: number) => () =>
  new Promise<void>((resolve, reject) =>
    scrypt(
      'correct horse battery',
      randomBytes(16),
      32,
      { N: 2 ** log2N, r: 8, p: 1, maxmem: 2 ** (log2N + 11) },
      (e) => (e ? reject(e) : resolve()),
    ),
  );
const argon2id = () => hash('correct horse battery', ARGON2ID).then(() => undefined);

async function perSecond(check: () => Promise<void>): Promise<{ rate: number; ms: number }> {
  await check(); // warm
  const end = performance.now() + SECONDS * 1000;
  let done = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < end) {
        await check();
        done++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  return { rate: done / elapsed, ms: (elapsed * 1000 * inFlight) / done };
}

const rows: Array<[string, string, { rate: number; ms: number }]> = [];
for (const [name, memory, check] of [
  ['scrypt N=2^14, r=8 (before)', '16 MiB', scryptAt(14)],
  ['scrypt N=2^17, r=8 (OWASP scrypt)', '128 MiB', scryptAt(17)],
  ['Argon2id m=19 MiB, t=2, p=1 (now)', '19 MiB', argon2id],
] as const) {
  rows.push([name, memory, await perSecond(check)]);
  process.stderr.write(`  ${name}: ${rows.at(-1)![2].rate.toFixed(1)}/s\n`);
}
const before = rows[0]![2].rate;
const report = [
  `# Password checks per second, ${new Date().toISOString()}`,
  '',
  `Machine: ${availableParallelism()} cores (${cpus()[0]?.model.trim()}); node ${process.version}; ${inFlight} in flight, ${SECONDS} s each.`,
  '',
  '| scheme | memory per check | checks/s | ms per check (one core) | x before |',
  '|---|---:|---:|---:|---:|',
  ...rows.map(
    ([name, memory, r]) =>
      `| ${name} | ${memory} | ${r.rate.toFixed(1)} | ${r.ms.toFixed(1)} | ${(r.rate / before).toFixed(2)} |`,
  ),
  '',
  'A sign-in is one check (plus a rehash, once, for an account stored with the older scheme).',
  '',
].join('\n');
process.stdout.write(`\n${report}`);
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
await writeFile(new URL('./results/password-hashing.md', import.meta.url), report);
