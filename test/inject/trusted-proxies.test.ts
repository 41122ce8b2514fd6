/**
 * Per-address limits behind balancers: the client's address is the last hop of X-Forwarded-For
 * that is not a trusted proxy (SW_TRUSTED_PROXIES, default loopback). Clients behind a trusted
 * balancer on another host are counted apart; an untrusted hop and a client's own X-Forwarded-For
 * are not believed. Observed through the login limit per address (3 attempts here).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadServerConfig } from '../../src/config/server-config.ts';
import { TEST_KEY_ENCRYPTION_KEY } from '../support/key-encryption.ts';
import { startApp, type TestApps } from '../support/app.ts';

const LIMITS = { SW_LOGIN_IP_LIMIT: '3', SW_LOGIN_LIMIT: '1000' };
let attempt = 0;

/** One login attempt (an unknown user: the per-username limit never applies) from `remoteAddress`. */
async function login(apps: TestApps, remoteAddress: string, forwardedFor?: string): Promise<number> {
  const response = await apps.servers[0]!.app.inject({
    method: 'POST',
    url: '/api/auth/login',
    remoteAddress,
    headers: { 'content-type': 'application/json', ...(forwardedFor ? { 'x-forwarded-for': forwardedFor } : {}) },
    payload: JSON.stringify({ username: `nobody_${++attempt}`, password: 'not the password at all' }),
  });
  return response.statusCode;
}

const fourTimes = async (send: () => Promise<number>) => [await send(), await send(), await send(), await send()];

describe('trusted proxies', () => {
  describe('default: loopback balancers only', () => {
    let apps: TestApps;
    before(async () => {
      apps = await startApp({ store: 'memory', mode: 'stateful', env: LIMITS });
    });
    after(() => apps?.close());

    it('counts each client behind a loopback balancer by its own address', async () => {
      assert.deepEqual(await fourTimes(() => login(apps, '127.0.0.1', '203.0.113.1')), [401, 401, 401, 429]);
      assert.equal(await login(apps, '127.0.0.1', '203.0.113.2'), 401, 'another client is not limited');
    });

    it('does not believe an untrusted hop: everyone behind it is one address', async () => {
      assert.deepEqual(await fourTimes(() => login(apps, '10.0.0.5', '203.0.113.3')), [401, 401, 401, 429]);
      assert.equal(await login(apps, '10.0.0.5', '203.0.113.4'), 429);
    });

    it("does not believe a client's own X-Forwarded-For", async () => {
      let n = 0;
      const forged = () => login(apps, '198.51.100.7', `192.0.2.${++n}`);
      assert.deepEqual(await fourTimes(forged), [401, 401, 401, 429]);
    });
  });

  describe('SW_TRUSTED_PROXIES=loopback,10.0.0.0/8', () => {
    let apps: TestApps;
    before(async () => {
      apps = await startApp({
        store: 'memory',
        mode: 'stateful',
        env: { ...LIMITS, SW_TRUSTED_PROXIES: 'loopback,10.0.0.0/8' },
      });
    });
    after(() => apps?.close());

    it('counts clients behind a balancer on another host apart', async () => {
      assert.deepEqual(await fourTimes(() => login(apps, '10.0.0.5', '203.0.113.5')), [401, 401, 401, 429]);
      assert.equal(await login(apps, '10.0.0.5', '203.0.113.6'), 401);
      // A client that forges the header in front of the real chain is still its real address.
      assert.equal(await login(apps, '10.0.0.5', '203.0.113.5, 203.0.113.7'), 401, 'the last untrusted hop counts');
      assert.equal(await login(apps, '10.0.0.5', '203.0.113.7, 203.0.113.5'), 429);
    });
  });

  it('refuses a setting that is not addresses, CIDRs or a named range', () => {
    const base = { SW_DATABASE_URL: 'postgres://x@127.0.0.1/db', SW_KEY_ENCRYPTION_KEY: TEST_KEY_ENCRYPTION_KEY };
    for (const bad of ['10.0.0.0/33', 'example.com', '10.0.0.1/8/2', 'loopback,nonsense']) {
      assert.throws(() => loadServerConfig({ ...base, SW_TRUSTED_PROXIES: bad }), /SW_TRUSTED_PROXIES/, bad);
    }
    assert.deepEqual(loadServerConfig({ ...base, SW_TRUSTED_PROXIES: 'loopback, fd00::/8,192.0.2.1' }).trustedProxies, [
      'loopback',
      'fd00::/8',
      '192.0.2.1',
    ]);
    assert.deepEqual(loadServerConfig(base).trustedProxies, ['loopback']);
  });
});
