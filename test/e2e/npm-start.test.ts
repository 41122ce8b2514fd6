/**
 * `npm start` on the embedded PostgreSQL: it comes up with every server up, reuses its data
 * directory on the next start, and leaves no process behind after SIGTERM or Ctrl-C (SIGINT).
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { describe, it } from 'node:test';
import { startCluster } from '../support/cluster.ts';
import { query } from '../support/db.ts';
import { Browser } from '../support/http.ts';

/** Every process below `root` in the process tree (children, grandchildren: postgres backends). */
function descendants(root: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parentOf.set(Number(entry), ppid);
    } catch {
      // The process ended while we were looking.
    }
  }
  const found: number[] = [];
  const walk = (pid: number) => {
    for (const [child, parent] of parentOf) if (parent === pid) (found.push(child), walk(child));
  };
  walk(root);
  return found;
}

const commandOf = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
  } catch {
    return '(gone)';
  }
};

/** Running, not a zombie waiting for its (already gone) parent's reaper. */
const alive = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
};

describe('npm start on the embedded PostgreSQL', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`starts, serves, and leaves no process behind after ${signal}`, async () => {
      const cluster = await startCluster({ embeddedPostgres: true });
      const view = await cluster.view();
      assert.deepEqual(
        view.servers.map((s) => [s.id, s.status]),
        [
          ['s1', 'up'],
          ['s2', 'up'],
          ['s3', 'up'],
        ],
      );
      assert.equal(view.store, 'postgres');
      const browser = new Browser(cluster.url);
      const registered = await browser.api.POST('/api/auth/register', {
        body: { username: 'frank', password: 'correct horse battery' },
      });
      assert.equal(registered.response.status, 201);

      // The signing keys are sealed with a key of npm start's own, in its data folder, owner-only.
      assert.equal(statSync(`${cluster.dataDir}/key-encryption-key`).mode & 0o777, 0o600);
      const stored = await query<{ private_pem: string }>(cluster.databaseUrl, 'SELECT private_pem FROM signing_keys');
      assert.ok(stored.length > 0);
      for (const { private_pem } of stored) {
        assert.match(private_pem, /^sealed\.v1\./);
        assert.doesNotMatch(private_pem, /PRIVATE KEY/);
      }

      const tree = descendants(cluster.process.pid!);
      const postmaster = Number(readFileSync(`${cluster.dataDir}/pg/postmaster.pid`, 'utf8').split('\n')[0]);
      assert.ok(tree.includes(postmaster), 'PostgreSQL runs under the supervisor');
      assert.ok(tree.length >= 3 + 2, `servers, runner and postgres are children: ${tree.length}`);

      cluster.process.kill(signal);
      await new Promise((resolve) => cluster.process.once('exit', resolve));
      const left = tree.filter(alive).map((pid) => `${pid}: ${commandOf(pid)}`);
      assert.deepEqual(left, [], 'every child process has exited');
    });
  }

  it('reuses its data directory: the account made before a restart is still there', async () => {
    const first = await startCluster({ embeddedPostgres: true });
    const browser = new Browser(first.url);
    const credentials = { username: 'gina', password: 'correct horse battery' };
    assert.equal((await browser.api.POST('/api/auth/register', { body: credentials })).response.status, 201);
    await first.stop();
    // Start again on the same data directory: no initdb, same rows.
    const { spawn } = await import('node:child_process');
    const started = Date.now();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli/start.ts', '--port', '0', '--host', '127.0.0.1', '--data-dir', first.dataDir],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /statewise is up at (\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.once('exit', () => reject(new Error(`exited: ${out}`)));
    });
    const readyMs = Date.now() - started;
    process.stdout.write(`# ready with an existing data directory in ${readyMs} ms\n`);
    const again = new Browser(url);
    const login = await again.api.POST('/api/auth/login', { body: credentials });
    assert.equal(login.response.status, 200);
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  });
});
