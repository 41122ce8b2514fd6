/**
 * The configurations statewise generates for HAProxy 2.6 and nginx 1.22, run by the real binaries
 * (Debian packages; .ci/run installs them) in front of three fake app servers: round robin over
 * every server, the pin header, X-Forwarded-*, the sticky cookie (HAProxy) or cookie hash (nginx)
 * in stateful mode, a dead server's GETs moved to the others, and WebSocket upgrades.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { afterEach, describe, it } from 'node:test';
import WebSocket from 'ws';
import { deployConfig, UsageError } from '../../src/cli/deploy-config.ts';
import type { BalancePolicy } from '../../src/balancer/policies.ts';
import { findBinary, startExternalBalancer, type ExternalKind } from '../../src/balancer/external/run.ts';
import { waitFor } from '../support/wait.ts';
import { startFakeUpstream, type EchoBody, type FakeUpstream } from './fake-upstream.ts';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(kind: ExternalKind, policy: BalancePolicy = 'round-robin') {
  const binary = findBinary(kind);
  assert.ok(binary, `${kind} is installed (apt-get install ${kind})`);
  const servers: FakeUpstream[] = await Promise.all(['s1', 's2', 's3'].map((id) => startFakeUpstream(id)));
  cleanups.push(async () => void (await Promise.all(servers.map((s) => s.kill()))));
  const balancer = await startExternalBalancer(
    kind,
    binary,
    servers.map((s) => ({ id: s.id, address: s.url.replace('http://', '') })),
    { policy, healthIntervalMs: 100 },
  );
  cleanups.push(() => balancer.stop());
  const get = async (path: string, headers: Record<string, string> = {}) => {
    const response = await fetch(`${balancer.url}${path}`, { headers });
    return { status: response.status, headers: response.headers, body: (await response.json()) as EchoBody };
  };
  return { servers, url: balancer.url, get };
}

for (const kind of ['haproxy', 'nginx'] as const) {
  describe(`${kind}, configured by statewise`, () => {
    it('round robin over every server, the pin header, and X-Forwarded-* for the app', async () => {
      const { servers, get } = await setup(kind);
      const seen = new Set<string>();
      for (let i = 0; i < 9; i++) seen.add((await get('/api/me')).body.server);
      assert.deepEqual([...seen].sort(), ['s1', 's2', 's3']);
      for (let i = 0; i < 3; i++)
        assert.equal((await get('/api/me', { 'x-statewise-server': 's2' })).body.server, 's2');

      const before = servers[2]!.received.length;
      await get('/api/me?x=1', { 'x-statewise-server': 's3', 'x-forwarded-for': '203.0.113.9' });
      const received = servers[2]!.received.slice(before).at(-1)!;
      assert.equal(received.url, '/api/me?x=1');
      assert.equal(received.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
      assert.equal(received.headers['x-forwarded-proto'], 'http');
      assert.match(String(received.headers['x-forwarded-host']), /^127\.0\.0\.1:\d+$/);
    });

    it('stateful mode: a client stays on one server while it lives', async () => {
      const { get } = await setup(kind, 'sticky');
      const first = await get('/set-cookie');
      const cookies = first.headers.getSetCookie().map((c) => c.split(';')[0]!);
      assert.ok(cookies.includes('app=1'), 'the app’s own cookie is kept');
      // HAProxy names the server in sw_server; nginx sets a random key there, which it hashes.
      assert.ok(
        cookies.some((c) => /^sw_server=\w+$/.test(c)),
        `the balancer gives the sticky cookie: ${cookies.join(' | ')}`,
      );
      const jar = cookies.join('; ');
      const home = (await get('/api/me', { cookie: jar })).body.server;
      for (let i = 0; i < 6; i++) {
        const again = await get('/api/me', { cookie: jar });
        assert.equal(again.body.server, home);
        assert.deepEqual(again.headers.getSetCookie(), [], 'a client with the cookie is not given another');
      }
      // Every new client gets its own key, and so the clients spread over the servers.
      const homes = new Set<string>();
      for (let i = 0; i < 12; i++) {
        const jarOf = (await get('/set-cookie')).headers
          .getSetCookie()
          .map((c) => c.split(';')[0]!)
          .join('; ');
        homes.add((await get('/api/me', { cookie: jarOf })).body.server);
      }
      assert.ok(homes.size >= 2, `12 clients on ${[...homes].join(', ')}`);
    });

    it('a dead server: GETs go on succeeding on the others', async () => {
      const { servers, get } = await setup(kind);
      await servers[0]!.kill();
      const answers = [];
      for (let i = 0; i < 12; i++) answers.push(await get('/api/me'));
      assert.deepEqual(
        answers.map((a) => a.status),
        Array(12).fill(200),
      );
      assert.ok(answers.every((a) => a.body.server !== 's1'));
    });

    it("its own errors in the contract's JSON: a pin to a down or unknown server, every server down", async () => {
      const { servers, get } = await setup(kind);
      const error = async (headers: Record<string, string> = {}) => {
        const answer = await get('/api/me', headers);
        return { status: answer.status, type: answer.headers.get('content-type'), body: answer.body as unknown };
      };
      const unavailable = { status: 503, type: 'application/json' };
      const unknown = await error({ 'x-statewise-server': 's9' });
      assert.deepEqual({ status: unknown.status, type: unknown.type }, unavailable);
      assert.match(JSON.stringify(unknown.body), /"code":"server_unavailable"/);

      await servers[1]!.kill();
      // HAProxy knows from its health checks, nginx when the connection is refused.
      await waitFor(async () => (await error({ 'x-statewise-server': 's2' })).status === 503, {
        what: 'a request pinned to the dead s2 refused',
      });
      const pinned = await error({ 'x-statewise-server': 's2' });
      assert.equal(pinned.type, 'application/json');
      assert.match(JSON.stringify(pinned.body), /"code":"server_unavailable"/);

      await Promise.all([servers[0]!.kill(), servers[2]!.kill()]);
      // HAProxy: 503 once its checks see no server up; nginx cannot tell that from a refusal: 502.
      const expected = kind === 'haproxy' ? { status: 503, code: 'unavailable' } : { status: 502, code: 'bad_gateway' };
      await waitFor(async () => (await error()).status === expected.status, {
        what: `${expected.status} with no server up`,
      });
      const none = await error();
      assert.equal(none.type, 'application/json');
      assert.match(JSON.stringify(none.body), new RegExp(`"code":"${expected.code}"`));
    });

    it('tunnels a WebSocket upgrade to a server and back', async () => {
      const { url } = await setup(kind);
      const ws = new WebSocket(`${url.replace('http', 'ws')}/ws`);
      const reply = new Promise<string>((resolve, reject) => {
        ws.once('message', (data) => resolve(String(data)));
        ws.once('error', reject);
      });
      await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
      ws.send('hello');
      assert.match(await reply, /^s\d:hello$/);
      ws.close();
      await waitFor(() => ws.readyState === WebSocket.CLOSED, { what: 'closed' });
    });
  });
}

describe('npm run deploy: a config for a real deployment', () => {
  it('prints configs both binaries accept, and refuses what could break out of a directive', async () => {
    const dir = await mkdtemp(`${tmpdir()}/statewise-deploy-`);
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    for (const mode of ['stateless', 'stateful']) {
      const servers = ['--servers', 'app1=10.0.0.1:3000,10.0.0.2:3000', '--mode', mode];
      await writeFile(`${dir}/haproxy.cfg`, deployConfig(['haproxy', ...servers]));
      const haproxy = spawnSync(findBinary('haproxy')!, ['-c', '-f', `${dir}/haproxy.cfg`], { encoding: 'utf8' });
      assert.equal(haproxy.status, 0, haproxy.stderr + haproxy.stdout);
      await mkdir(`${dir}/logs`, { recursive: true });
      // nginx -t needs a pid and temp paths it may write: the test's folder, not /var.
      const nginx = deployConfig(['nginx', ...servers]).replace('http {', `pid ${dir}/nginx.pid;\nhttp {`);
      await writeFile(`${dir}/nginx.conf`, nginx);
      const check = spawnSync(findBinary('nginx')!, ['-t', '-p', dir, '-c', `${dir}/nginx.conf`], { encoding: 'utf8' });
      assert.equal(check.status, 0, check.stderr);
    }
    for (const bad of [
      ['haproxy', '--servers', '10.0.0.1:3000;\nlisten evil'],
      ['nginx', '--servers', 'a b=10.0.0.1:3000'],
      ['haproxy', '--servers', '10.0.0.1:3000', '--listen', '0.0.0.0:80 }'],
      ['haproxy', '--servers', '10.0.0.1:3000', '--mode', 'sideways'],
      ['traefik', '--servers', '10.0.0.1:3000'],
    ])
      assert.throws(() => deployConfig(bad), UsageError, bad.join(' '));
  });
});
