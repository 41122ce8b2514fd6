/**
 * Accounts in process (app.inject) over every session-state backend: sessions, their timeouts,
 * tokens, and log out everywhere. Whole clusters test what needs processes (test/security).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { startApps, statusOf, STORES, type TestApps } from '../support/app.ts';
import { servedBy } from '../support/http.ts';
import { newUsername, PASSWORD } from '../security/backends.ts';
import { waitFor } from '../support/wait.ts';

for (const store of STORES) {
  const shared = store !== 'memory';

  describe(`accounts on ${store}`, () => {
    let apps: TestApps;
    before(async () => {
      apps = await startApps({ store, servers: 2 });
    });
    after(() => apps.close());

    it('registers, signs in, answers /api/me, and signs out', async () => {
      const [s1] = apps.servers;
      const browser = s1!.client();
      const username = newUsername('acc');
      const registered = await browser.api.POST('/api/auth/register', { body: { username, password: PASSWORD } });
      assert.equal(registered.response.status, 201);
      assert.equal(servedBy(registered), 's1');
      assert.equal((await browser.api.GET('/api/me')).data?.user.username, username);
      assert.equal(await statusOf(browser.api.POST('/api/auth/logout')), 204);
      assert.equal(await statusOf(browser.api.GET('/api/me')), 401);
    });

    it(`a token issued right after "log out everywhere" works on every server; one issued before is refused`, async () => {
      const [s1, s2] = apps.servers as [NonNullable<(typeof apps.servers)[0]>, NonNullable<(typeof apps.servers)[0]>];
      const browser = s1.client();
      const username = newUsername('lae');
      const credentials = { username, password: PASSWORD };
      assert.equal(await statusOf(browser.api.POST('/api/auth/register', { body: credentials })), 201);
      const token = async () => {
        const r = await s1.client().api.POST('/api/auth/token', { body: credentials });
        assert.equal(r.response.status, 200);
        return r.data!.accessToken;
      };
      const me = (server: typeof s1, bearer: string) =>
        statusOf(
          server
            .client()
            .apiWith({ authorization: `Bearer ${bearer}` })
            .GET('/api/me'),
        );
      // Three rounds: each one logs out and at once (the same second, mostly) asks for a new token.
      for (let round = 0; round < 3; round++) {
        const before = await token();
        assert.equal(await me(s1, before), 200);
        const signIn = s1.client();
        assert.equal(await statusOf(signIn.api.POST('/api/auth/login', { body: credentials })), 200);
        assert.equal(await statusOf(signIn.api.POST('/api/auth/logout-all')), 204);
        const afterwards = await token();
        assert.equal(await me(s1, before), 401, 'issued before: refused');
        assert.equal(await me(s1, afterwards), 200, 'issued after: works on the server that issued it');
        if (shared) {
          assert.equal(await me(s2, before), 401, 'issued before: refused on another server');
          assert.equal(await me(s2, afterwards), 200, 'issued after: works on another server');
        }
      }
    });
  });

  describe(`session timeouts on ${store}`, () => {
    const IDLE = 800;
    const ABSOLUTE = 4000;
    let apps: TestApps;
    before(async () => {
      apps = await startApps({
        store,
        env: { SW_SESSION_IDLE_MS: String(IDLE), SW_SESSION_ABSOLUTE_MS: String(ABSOLUTE) },
      });
    });
    after(() => apps.close());

    it('keeps an active session alive past the idle window, and ends it after idling', async () => {
      const browser = apps.servers[0]!.client();
      const started = Date.now();
      const registered = browser.api.POST('/api/auth/register', {
        body: { username: newUsername('idle'), password: PASSWORD },
      });
      assert.equal(await statusOf(registered), 201);
      let lastActive = Date.now();
      while (Date.now() - started < IDLE * 1.5) {
        assert.equal(await statusOf(browser.api.GET('/api/me')), 200, 'activity inside the window extends it');
        lastActive = Date.now();
        await delay(100); // pacing the client, not synchronising
      }
      // Idle: no request at all until the window has passed (a probe would be activity itself).
      await waitFor(() => Date.now() - lastActive > IDLE + 100, {
        timeoutMs: IDLE * 2,
        what: 'the idle window to pass',
      });
      const probe = await statusOf(browser.api.GET('/api/me'));
      assert.ok(Date.now() - started < ABSOLUTE - 1000, 'well before the absolute limit');
      assert.equal(probe, 401, 'ended by the idle timeout');
    });

    it('ends a session at the absolute limit whatever its activity', async () => {
      const browser = apps.servers[0]!.client();
      const started = Date.now();
      const registered = browser.api.POST('/api/auth/register', {
        body: { username: newUsername('abs'), password: PASSWORD },
      });
      assert.equal(await statusOf(registered), 201);
      // Active all along (every 200 ms, well inside the idle window): only the absolute limit can end it.
      await waitFor(async () => (await statusOf(browser.api.GET('/api/me'))) === 401, {
        timeoutMs: ABSOLUTE * 2,
        intervalMs: 200,
        what: 'the absolute limit',
      });
      const lifetime = Date.now() - started;
      assert.ok(lifetime >= ABSOLUTE - 300 && lifetime < ABSOLUTE + IDLE, `ended after ${lifetime} ms`);
    });
  });
}
