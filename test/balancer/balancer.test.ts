/**
 * The load balancer against real servers and real clients: three tiny node:http upstreams (see
 * fake-upstream.ts), global fetch and the ws client. Every test starts its own servers and
 * balancer, so killing one never leaks into the next test.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, it } from 'node:test';
import type { FastifyBaseLogger, FastifyPluginAsync } from 'fastify';
import pino from 'pino';
import { request as undiciRequest } from 'undici';
import WebSocket from 'ws';
import { createBalancer, type Balancer, type BalancePolicy, type ControlRoutes } from '../../src/balancer/balancer.ts';
import { ERROR_STATUS, type ErrorCode } from '../../src/kernel/errors.ts';
import { waitFor } from '../support/wait.ts';
import { startFakeUpstream, type EchoBody, type FakeUpstream } from './fake-upstream.ts';

interface Answer {
  status: number;
  servedBy: string | null;
  headers: Headers;
  json: unknown;
}

interface ErrorAnswer {
  error: { code: string; message: string };
}

interface Setup {
  balancer: Balancer;
  servers: FakeUpstream[];
  /** Sends through the balancer. */
  request(path: string, init?: RequestInit): Promise<Answer>;
  healthy(id: string): boolean;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(
  options: {
    servers?: number;
    policy?: BalancePolicy;
    healthIntervalMs?: number;
    control?: ControlRoutes;
    logger?: FastifyBaseLogger;
  } = {},
): Promise<Setup> {
  const servers = await Promise.all(
    Array.from({ length: options.servers ?? 3 }, (_, i) => startFakeUpstream(`s${i + 1}`)),
  );
  cleanups.push(async () => {
    await Promise.all(servers.map((s) => s.kill()));
  });
  const balancer = await createBalancer({
    port: 0,
    policy: options.policy ?? 'round-robin',
    healthIntervalMs: options.healthIntervalMs ?? 50,
    logger: options.logger ?? false,
    control: options.control,
  });
  cleanups.push(() => balancer.close());
  balancer.setUpstreams(servers.map(({ id, url }) => ({ id, url })));
  const healthy = (id: string) => balancer.health().find((h) => h.id === id)?.healthy === true;
  await waitFor(() => servers.every((s) => healthy(s.id)), { what: 'every upstream healthy' });

  const request = async (path: string, init?: RequestInit): Promise<Answer> => {
    const response = await fetch(`${balancer.url}${path}`, init);
    const text = await response.text();
    const json: unknown =
      (response.headers.get('content-type') ?? '').includes('json') && text ? JSON.parse(text) : text;
    return {
      status: response.status,
      servedBy: response.headers.get('x-served-by'),
      headers: response.headers,
      json,
    };
  };
  return { balancer, servers, request, healthy };
}

function countBy(answers: Answer[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const a of answers) counts[a.servedBy ?? '?'] = (counts[a.servedBy ?? '?'] ?? 0) + 1;
  return counts;
}

async function sequential(n: number, send: () => Promise<Answer>): Promise<Answer[]> {
  const answers: Answer[] = [];
  for (let i = 0; i < n; i++) answers.push(await send());
  return answers;
}

function stickyCookies(answer: Answer): string[] {
  return answer.headers.getSetCookie().filter((c) => c.startsWith('sw_server='));
}

function assertError(answer: Answer, status: number, code: string, message?: string): void {
  assert.equal(answer.status, status, JSON.stringify(answer.json));
  assert.match(answer.headers.get('content-type') ?? '', /application\/json/);
  const body = answer.json as ErrorAnswer;
  assert.equal(body.error.code, code);
  assert.equal(ERROR_STATUS[code as ErrorCode], status, `the one error table gives ${code} this status`);
  if (message !== undefined) assert.equal(body.error.message, message);
  else assert.ok(body.error.message.length > 5);
}

const posts = (servers: FakeUpstream[]) => servers.flatMap((s) => s.received.filter((r) => r.method === 'POST'));

function openSocket(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ ws: WebSocket; setCookie: string[] }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws') + '/ws', { headers });
    let setCookie: string[] = [];
    ws.once('upgrade', (response) => {
      setCookie = response.headers['set-cookie'] ?? [];
    });
    ws.once('open', () => resolve({ ws, setCookie }));
    ws.once('unexpected-response', (_request, response) => reject(new Error(`unexpected ${response.statusCode}`)));
    ws.once('error', reject);
  });
}

async function echo(ws: WebSocket, text: string): Promise<string> {
  const reply = new Promise<string>((resolve) => ws.once('message', (data) => resolve(String(data))));
  ws.send(text);
  return reply;
}

describe('load balancer', () => {
  it('round robin spreads 30 GETs evenly over all 3 servers, passing X-Served-By through', async () => {
    const { request } = await setup();
    const answers = await sequential(30, () => request('/api/thing'));
    assert.deepEqual(
      answers.map((a) => a.status),
      Array(30).fill(200),
    );
    assert.deepEqual(countBy(answers), { s1: 10, s2: 10, s3: 10 });
    assert.equal((answers[0]!.json as EchoBody).server, answers[0]!.servedBy);
  });

  it('sticky: one Set-Cookie after the app cookies, the client stays, and moves with a new cookie when its server dies', async () => {
    const { request, servers } = await setup({ policy: 'sticky' });
    const first = await request('/set-cookie');
    const home = first.servedBy!;
    assert.deepEqual(first.headers.getSetCookie(), [
      'app=1; Path=/',
      `sw_server=${home}; Path=/; HttpOnly; SameSite=Lax`,
    ]);

    const cookie = { cookie: `theme=dark; sw_server=${home}` };
    const stayed = await sequential(10, () => request('/api/me', { headers: cookie }));
    assert.deepEqual(new Set(stayed.map((a) => a.servedBy)), new Set([home]));
    assert.ok(
      stayed.every((a) => stickyCookies(a).length === 0),
      'no Set-Cookie while the cookie is right',
    );

    await servers.find((s) => s.id === home)!.kill();
    const moved = await request('/api/me', { headers: cookie });
    assert.equal(moved.status, 200);
    assert.notEqual(moved.servedBy, home);
    assert.deepEqual(stickyCookies(moved), [`sw_server=${moved.servedBy}; Path=/; HttpOnly; SameSite=Lax`]);
    const after = await sequential(5, () => request('/api/me', { headers: { cookie: `sw_server=${moved.servedBy}` } }));
    assert.deepEqual(new Set(after.map((a) => a.servedBy)), new Set([moved.servedBy]));

    const pinned = await request('/api/me', {
      headers: { 'x-statewise-server': 's3' === home ? 's1' : 's3' },
    });
    assert.equal(stickyCookies(pinned).length, 0, 'a pinned request does not change the cookie');
  });

  it('the pin header routes to that server, and gives 503 server_unavailable for an unknown or down one', async () => {
    const { request, servers, healthy } = await setup();
    const pinned = await sequential(6, () => request('/api/me', { headers: { 'x-statewise-server': 's2' } }));
    assert.deepEqual(new Set(pinned.map((a) => a.servedBy)), new Set(['s2']));

    assertError(await request('/api/me', { headers: { 'x-statewise-server': 's9' } }), 503, 'server_unavailable');
    await servers[2]!.kill();
    await waitFor(() => !healthy('s3'), { what: 's3 marked down' });
    assertError(await request('/api/me', { headers: { 'x-statewise-server': 's3' } }), 503, 'server_unavailable');
  });

  it('a server that dies: GETs keep succeeding on the others (retried), with zero failures', async () => {
    // Checks far apart: only passive detection and retries can save these requests.
    const { request, servers, healthy } = await setup({ healthIntervalMs: 60_000 });
    await servers[1]!.kill();
    const parallel = await Promise.all(Array.from({ length: 30 }, () => request('/api/me')));
    const serial = await sequential(30, () => request('/api/me'));
    const all = [...parallel, ...serial];
    assert.deepEqual(
      all.map((a) => a.status),
      Array(60).fill(200),
    );
    assert.ok(all.every((a) => a.servedBy !== 's2'));
    assert.equal(healthy('s2'), false, 'the failed connection marked s2 down at once');
  });

  it('a server that goes silent: what waits on it moves on when the checks take it out, not after the 30 s timeout', async () => {
    const { request, servers, balancer, healthy } = await setup();
    const silent = servers[1]!;
    const pinned = { 'x-statewise-server': 's2' };
    const tunnel = await openSocket(balancer.url, pinned);
    cleanups.push(async () => void tunnel.ws.terminate());
    const tunnelClosed = new Promise<void>((resolve) => tunnel.ws.once('close', () => resolve()));

    silent.silent = true;
    const started = Date.now();
    const gets = Promise.all(Array.from({ length: 6 }, (_, i) => request(`/api/menu?n=${i}`)));
    const keyed = request('/api/orders', { method: 'POST', headers: { 'idempotency-key': 'k-1', ...pinned } });
    const unkeyed = request('/api/orders', { method: 'POST', headers: pinned, body: '{}' });
    await waitFor(() => silent.received.length === 4, { what: 's2 holding two GETs and two POSTs' });

    const answers = await gets;
    assert.deepEqual(
      answers.map((a) => a.status),
      Array(6).fill(200),
    );
    assert.ok(
      answers.every((a) => a.servedBy === 's1' || a.servedBy === 's3'),
      'the GETs s2 held were sent again to s1 or s3',
    );
    // Pinned: never moved. A keyed one is safe to repeat but only on s2; the other may have acted.
    assertError(await keyed, 503, 'server_unavailable');
    assertError(await unkeyed, 504, 'gateway_timeout');
    await tunnelClosed;
    const elapsed = Date.now() - started;
    assert.equal(healthy('s2'), false);
    // Two checks of 1 s each, 50 ms apart: about 2.1 s; the pool's own timeout would be 30 s.
    assert.ok(elapsed < 5000, `answered ${elapsed} ms after s2 went silent`);
    assert.deepEqual(posts([servers[0]!, servers[2]!]), [], 'no POST reached another server');
  });

  it('a large answer reaches a slow client whole; a client that leaves mid-answer frees the server', async () => {
    const { balancer, servers } = await setup({ servers: 1 });
    const bytes = 8 * 1024 * 1024;
    const slow = await undiciRequest(`${balancer.url}/big?bytes=${bytes}`);
    assert.equal(slow.statusCode, 200);
    let received = 0;
    let wrong = -1;
    for await (const chunk of slow.body as AsyncIterable<Buffer>) {
      for (let i = 0; i < chunk.length && wrong < 0; i++) if (chunk[i] !== (received + i) % 256) wrong = received + i;
      received += chunk.length;
      // A reader slower than the server: the relay pauses and resumes, and no byte is lost or moved.
      if (received % (1024 * 1024) < chunk.length) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(received, bytes);
    assert.equal(wrong, -1, 'every byte in its place');

    const leaving = await undiciRequest(`${balancer.url}/big?bytes=${256 * 1024 * 1024}`);
    for await (const _ of leaving.body as AsyncIterable<Buffer>) break; // one chunk, then gone
    await waitFor(() => servers[0]!.cutShort === 1, { what: 'the server told the client left' });
  });

  it('a WebSocket upgrade that meets a dead server is moved to a live one', async () => {
    const { servers, healthy, balancer } = await setup({ healthIntervalMs: 60_000 });
    await servers[1]!.kill();
    // Round robin: one of these three meets s2 while it is still marked healthy.
    for (let i = 0; i < 3; i++) {
      const { ws } = await openSocket(balancer.url);
      cleanups.push(async () => void ws.terminate());
      assert.match(await echo(ws, 'x'), /^s[13]:x$/);
    }
    assert.equal(healthy('s2'), false, 'the refused connection marked s2 down');
  });

  it('a connection failure before any answer: POST without a key is 502 and not retried; with an Idempotency-Key it is retried', async () => {
    // s1..s3 die while still marked healthy (checks far apart); s4 is the only live server.
    const { request, servers, healthy } = await setup({
      servers: 4,
      policy: 'sticky',
      healthIntervalMs: 60_000,
    });
    await Promise.all(servers.slice(0, 3).map((s) => s.kill()));
    const live = servers[3]!;

    const unsafe = await request('/api/transfer', {
      method: 'POST',
      headers: { cookie: 'sw_server=s1', 'content-type': 'application/json' },
      body: '{"amount":5}',
    });
    assertError(
      unsafe,
      502,
      'bad_gateway',
      'the server failed before answering; retry with an Idempotency-Key to make it safe',
    );
    assert.equal(posts(servers).length, 0, 'no other server got the POST');
    assert.equal(healthy('s1'), false);

    const pinned = await request('/api/me', { headers: { 'x-statewise-server': 's3' } });
    assertError(pinned, 503, 'server_unavailable');
    assert.equal(live.received.length, 0, 'a pinned request is not moved');

    const body = JSON.stringify({ amount: 5, note: 'café ☕', pad: 'x'.repeat(20_000) });
    const keyed = await request('/api/transfer', {
      method: 'POST',
      headers: {
        cookie: 'sw_server=s2',
        'content-type': 'application/json',
        'idempotency-key': 'k-1',
      },
      body,
    });
    assert.equal(keyed.status, 200);
    assert.equal(keyed.servedBy, 's4', 'moved past s2, then past s3 (both dead), to s4');
    assert.deepEqual(stickyCookies(keyed), ['sw_server=s4; Path=/; HttpOnly; SameSite=Lax']);
    assert.equal(posts(servers).length, 1);
    assert.ok(live.received[0]!.body.equals(Buffer.from(body)), 'the retried body arrived byte for byte');
    assert.equal(live.received[0]!.headers['content-type'], 'application/json');
    assert.deepEqual(['s1', 's2', 's3'].map(healthy), [false, false, false]);
  });

  it('a server that answers what is not HTTP: 502 to the client, not retried, logged with its id', async () => {
    const lines: Array<{ level: number; msg: string; server?: string }> = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const { request, servers, healthy } = await setup({ policy: 'sticky', logger });
    const answer = await request('/broken', { headers: { cookie: 'sw_server=s2' } });
    assert.equal(answer.status, 502);
    assert.equal((answer.json as ErrorAnswer).error.code, 'bad_gateway');
    assert.match((answer.json as ErrorAnswer).error.message, /^server "s2" failed while answering/);
    assert.deepEqual(
      servers.map((s) => s.received.length),
      [0, 1, 0],
      'a broken answer is not a failed connection: not moved',
    );
    assert.equal(healthy('s2'), true);
    assert.deepEqual(
      lines.map(({ level, msg, server }) => ({ level, msg, server })),
      [{ level: 50, msg: 'server failed to answer', server: 's2' }],
    );
  });

  it('/readyz 503 takes a server out of the rotation, and it is back when it recovers', async () => {
    const { request, servers, healthy } = await setup();
    servers[1]!.ready = false;
    await waitFor(() => !healthy('s2'), { what: 's2 out' });
    const out = await sequential(30, () => request('/api/me'));
    assert.deepEqual(countBy(out), { s1: 15, s3: 15 });
    servers[1]!.ready = true;
    await waitFor(() => healthy('s2'), { what: 's2 back' });
    assert.deepEqual(countBy(await sequential(30, () => request('/api/me'))), {
      s1: 10,
      s2: 10,
      s3: 10,
    });
  });

  it('every server down: 503 unavailable with Retry-After, for HTTP and WebSocket', async () => {
    const { request, servers, healthy, balancer } = await setup({ healthIntervalMs: 60_000 });
    await Promise.all(servers.map((s) => s.kill()));
    // Still marked healthy: every server is tried once, then the answer is 503.
    const tried = await request('/api/me');
    assertError(tried, 503, 'unavailable', 'no server is up');
    assert.equal(tried.headers.get('retry-after'), '1');
    assert.deepEqual(['s1', 's2', 's3'].map(healthy), [false, false, false]);
    // Known down: answered at once, POST included (nothing was sent anywhere).
    const post = await request('/api/x', { method: 'POST', body: 'x' });
    assertError(post, 503, 'unavailable', 'no server is up');
    assert.equal(post.headers.get('retry-after'), '1');
    await assert.rejects(openSocket(balancer.url), /unexpected 503/);
  });

  it('a WebSocket echo goes through the balancer and lands on the sticky server', async () => {
    const { request, servers, balancer } = await setup({ policy: 'sticky' });
    const home = (await request('/api/me')).servedBy!;
    const { ws, setCookie } = await openSocket(balancer.url, { cookie: `sw_server=${home}` });
    cleanups.push(async () => void ws.terminate());
    assert.deepEqual(setCookie, []);
    assert.equal(await echo(ws, 'hello'), `${home}:hello`);
    assert.equal(await echo(ws, 'again'), `${home}:again`);
    const upgrade = servers.find((s) => s.id === home)!.upgrades[0]!;
    assert.match(String(upgrade['x-forwarded-for']), /127\.0\.0\.1/);
    assert.equal(upgrade['x-forwarded-host'], new URL(balancer.url).host);

    // Without a cookie the handshake response brings one, naming the server that answers.
    const fresh = await openSocket(balancer.url);
    cleanups.push(async () => void fresh.ws.terminate());
    const id = /^sw_server=(s\d)/.exec(fresh.setCookie[0] ?? '')?.[1];
    assert.ok(id, `a sticky cookie on the 101: ${fresh.setCookie.join(' | ')}`);
    assert.equal(await echo(fresh.ws, 'hi'), `${id}:hi`);

    const pinned = await openSocket(balancer.url, { 'x-statewise-server': 's3' });
    cleanups.push(async () => void pinned.ws.terminate());
    assert.equal(await echo(pinned.ws, 'p'), 's3:p');
    assert.equal(
      balancer.health().reduce((n, h) => n + h.connections, 0),
      3,
    );
  });

  it('control routes answer before the proxy, with their own JSON parsing', async () => {
    const control: FastifyPluginAsync = async (app) => {
      app.get('/_cluster', async () => ({ cluster: true }));
      app.post('/_cluster/echo', async (req) => ({ type: typeof req.body, body: req.body }));
    };
    const { request, servers } = await setup({ control: { plugin: control, prefixes: ['/_cluster'] } });
    const view = await request('/_cluster');
    assert.deepEqual([view.status, view.servedBy, view.json], [200, null, { cluster: true }]);
    const posted = await request('/_cluster/echo', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"x":1}',
    });
    assert.deepEqual(posted.json, { type: 'object', body: { x: 1 } });
    assert.equal(
      servers.reduce((n, s) => n + s.received.length, 0),
      0,
    );
    assert.match((await request('/_clusterish')).servedBy ?? '', /^s\d$/, 'other paths are proxied');
    const unknown = await request('/_cluster/nothing?x=1');
    assert.deepEqual([unknown.status, unknown.servedBy], [404, null], 'a control path is never proxied');
    assertError(unknown, 404, 'not_found');
  });

  it('bodies, query strings and X-Forwarded-* arrive intact; methods are passed through', async () => {
    // One server, so "the last request it received" is the one just sent.
    const { request, servers, balancer } = await setup({ servers: 1 });
    const received = () => servers[0]!.received.at(-1)!;

    const binary = randomBytes(200_000);
    const sent = await request('/upload?kind=raw&n=1', {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: binary,
    });
    assert.equal(sent.status, 200);
    assert.ok(received().body.equals(binary));
    assert.equal(received().url, '/upload?kind=raw&n=1');

    const json = '{"a": [1, 2,   3], "b": "ü"}';
    await request('/api/json', {
      method: 'PUT',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: json,
    });
    assert.equal(received().body.toString('utf8'), json, 'JSON is forwarded as sent, not re-encoded');
    assert.equal(received().headers['content-type'], 'application/json; charset=utf-8');

    for (const method of ['PATCH', 'DELETE', 'OPTIONS']) {
      const answer = await request('/api/m', {
        method,
        headers: { 'content-type': 'text/plain' },
        body: method,
      });
      assert.equal((answer.json as EchoBody).method, method);
      assert.equal((answer.json as EchoBody).body, method);
    }
    const head = await request('/api/head', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.match(head.servedBy ?? '', /^s\d$/);

    await request('/api/me', { headers: { 'x-forwarded-for': '203.0.113.9' } });
    assert.equal(received().headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
    assert.equal(received().headers['x-forwarded-proto'], 'http');
    assert.equal(received().headers['x-forwarded-host'], new URL(balancer.url).host);

    const tooBig = await request('/api/big', {
      method: 'POST',
      body: Buffer.alloc(1024 * 1024 + 1),
    });
    assertError(tooBig, 413, 'body_too_large');

    // fetch refuses TRACE, undici does not.
    const trace = await undiciRequest(`${balancer.url}/api/me`, { method: 'TRACE' });
    assert.equal(trace.statusCode, 405);
    assert.equal(trace.headers.allow, 'GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS');
    assert.equal(((await trace.body.json()) as ErrorAnswer).error.code, 'method_not_allowed');
  });

  it('setUpstreams keeps the health of servers that stay and checks new ones at once; markDown stops routing now', async () => {
    const { request, servers, balancer, healthy } = await setup({ healthIntervalMs: 60_000 });
    const [s1, s2] = servers;
    balancer.setUpstreams([s1!, s2!].map(({ id, url }) => ({ id, url })));
    assert.deepEqual(
      balancer.health().map((h) => [h.id, h.healthy]),
      [
        ['s1', true],
        ['s2', true],
      ],
    );
    assert.deepEqual(countBy(await sequential(4, () => request('/api/me'))), { s1: 2, s2: 2 });

    const s4 = await startFakeUpstream('s4');
    cleanups.push(() => s4.kill());
    balancer.setUpstreams([s1!, s2!, s4].map(({ id, url }) => ({ id, url })));
    await waitFor(() => healthy('s4'), { what: 's4 admitted by its first check', timeoutMs: 2000 });

    balancer.markDown('s1');
    assert.equal(healthy('s1'), false);
    assert.deepEqual(countBy(await sequential(4, () => request('/api/me'))), { s2: 2, s4: 2 });
  });
});
