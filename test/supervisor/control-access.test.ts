/**
 * Defect 3: any web page could make a visitor's browser POST /_cluster/servers/s1/kill on
 * localhost, and the supervisor obeyed (loopback callers are trusted). Now unsafe requests from
 * another origin are refused, and loopback trust needs the balancer's own Host (DNS rebinding).
 * The control API runs on a real balancer with a real (not started) supervisor behind it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { createBalancer, type Balancer } from '../../src/balancer/balancer.ts';
import { topologyFor } from '../../src/config/topology.ts';
import { ERROR_STATUS, type ErrorCode } from '../../src/kernel/errors.ts';
import { CONTROL_PREFIXES, controlApi } from '../../src/supervisor/control-api.ts';
import { Supervisor } from '../../src/supervisor/supervisor.ts';

const TOKEN = 'test-admin-token-0123456789';

describe('cluster control refuses other origins', () => {
  let balancer: Balancer;
  let port: number;
  const logged: string[] = [];
  before(async () => {
    const supervisor = new Supervisor({
      servers: 0,
      topology: topologyFor('stateless', 'postgres'),
      port: 0,
      host: '127.0.0.1',
      dataDir: '/nonexistent',
      adminToken: TOKEN,
      log: (line) => logged.push(line),
    });
    balancer = await createBalancer({
      port: 0,
      host: '127.0.0.1',
      policy: 'round-robin',
      logger: false,
      control: {
        plugin: controlApi(supervisor, { adminToken: TOKEN, listenHost: '127.0.0.1', log: (l) => logged.push(l) }),
        prefixes: CONTROL_PREFIXES,
      },
    });
    port = Number(new URL(balancer.url).port);
  });
  after(() => balancer.close());

  const send = async (method: 'GET' | 'POST' | 'DELETE', path: string, headers: Record<string, string> = {}) => {
    const response = await request(`http://127.0.0.1:${port}${path}`, {
      method,
      headers: { host: `127.0.0.1:${port}`, ...headers },
    });
    const body = (await response.body.json()) as { error?: { code: ErrorCode; message: string } };
    if (body.error) assert.equal(ERROR_STATUS[body.error.code], response.statusCode, 'the one table gives the status');
    return { status: response.statusCode, body };
  };
  const KILL = '/_cluster/servers/s1/kill';

  it('refuses a kill sent by a page of another origin, loopback or not', async () => {
    for (const headers of <Array<Record<string, string>>>[
      { origin: 'http://evil.example' },
      { origin: 'null' },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site', origin: `http://localhost:${port}` },
      { origin: 'http://evil.example', authorization: `Bearer ${TOKEN}` },
    ]) {
      const answer = await send('POST', KILL, headers);
      assert.equal(answer.status, 403, JSON.stringify(headers));
      assert.equal(answer.body.error?.code, 'forbidden');
    }
  });

  it('lets the same origin through (the dashboard), and curl on loopback', async () => {
    // s1 does not exist in this supervisor: a 404 means the request passed the access check.
    const sameOrigin = await send('POST', KILL, {
      origin: `http://127.0.0.1:${port}`,
      'sec-fetch-site': 'same-origin',
    });
    assert.equal(sameOrigin.status, 404);
    assert.equal(sameOrigin.body.error?.code, 'not_found');
    assert.equal((await send('POST', KILL)).status, 404, 'no Origin, no Sec-Fetch-Site: not a browser');
    assert.equal((await send('POST', KILL, { host: `localhost:${port}` })).status, 404);
    assert.equal((await send('GET', '/_cluster')).status, 200);
  });

  it('does not trust loopback under another name (DNS rebinding) without the admin token', async () => {
    const rebound = await send('GET', '/_cluster', { host: `attacker.example:${port}` });
    assert.equal(rebound.status, 403);
    assert.equal((await send('POST', KILL, { host: `attacker.example:${port}` })).status, 403);
    const withToken = await send('GET', '/_cluster', {
      host: `attacker.example:${port}`,
      authorization: `Bearer ${TOKEN}`,
    });
    assert.equal(withToken.status, 200);
    const wrongToken = await send('GET', '/_cluster', {
      host: `attacker.example:${port}`,
      authorization: 'Bearer nope',
    });
    assert.equal(wrongToken.status, 403);
  });

  it('answers a bad request with the code the table maps, not 400 for everything', async () => {
    const tooLong = await send('POST', `/_cluster/servers/${'x'.repeat(100)}/kill`);
    assert.equal(tooLong.status, 400);
    assert.equal(tooLong.body.error?.code, 'invalid_input');
    assert.equal((await send('DELETE', '/_cluster/servers/s9')).body.error?.code, 'not_found');
  });

  it('a known path with another method is 405 with Allow, as on the app server; an unknown one 404', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const wrong = await request(`http://127.0.0.1:${port}${KILL}`, { method: 'GET', headers: auth });
    assert.equal(wrong.statusCode, 405);
    assert.equal(wrong.headers.allow, 'POST');
    assert.equal(((await wrong.body.json()) as { error: { code: string } }).error.code, 'method_not_allowed');
    const list = await send('DELETE', '/_cluster', auth);
    assert.equal(list.status, 405);
    assert.equal(list.body.error?.code, 'method_not_allowed');
    assert.equal((await send('GET', '/_cluster/nothing-here', auth)).body.error?.code, 'not_found');
  });
});
