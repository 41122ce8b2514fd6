/**
 * Browser sessions, black box, from the OWASP Session Management checklist
 * (../shared/research/sessions.md, section c), on three in-process servers (app.inject) sharing one
 * database. Every case runs on the three backends; where the stateful design (memory: each server
 * keeps its own sessions) behaves differently, the test asserts what it really does.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startApps, statusOf, type TestApps } from '../support/app.ts';
import { BACKENDS, newUsername, PASSWORD } from '../security/backends.ts';

const SERVERS = ['s1', 's2', 's3'];
/** Requests with a dead or made-up session id allowed per address per minute in this suite. */
const GUESS_LIMIT = 200;
/** The host the browser believes it talks to, and so its own origin. */
const HOST = 'statewise.test';

const setCookies = (r: { response: Response }): string[] => r.response.headers.getSetCookie();

for (const backend of BACKENDS) {
  describe(`browser sessions on ${backend.name}`, () => {
    let apps: TestApps;
    before(async () => {
      apps = await startApps({
        ...backend.apps,
        servers: SERVERS.length,
        env: { SW_LOGIN_LIMIT: '5', SW_UNKNOWN_SESSION_IP_LIMIT: String(GUESS_LIMIT) },
      });
    });
    after(() => apps.close());

    /** A browser of one server: in stateful mode that is where its session lives. */
    const browser = (ua = 'Mozilla/5.0 test', on = 's1') => {
      const server = apps.servers.find((s) => s.id === on);
      assert.ok(server, `server ${on}`);
      return server.client(ua);
    };
    const signedUp = async (b = browser()) => {
      const username = newUsername();
      const r = await b.api.POST('/api/auth/register', { body: { username, password: PASSWORD } });
      assert.equal(r.response.status, 201);
      return { b, username, user: r.data!.user };
    };

    it('sets the cookie HttpOnly, SameSite=Lax, Path=/, for the browser session only', async () => {
      const b = browser();
      const r = await b.api.POST('/api/auth/register', { body: { username: newUsername(), password: PASSWORD } });
      const cookie = setCookies(r).find((c) => c.startsWith('sid='))!;
      assert.ok(cookie, 'sid cookie over plain http');
      assert.match(cookie, /; HttpOnly/);
      assert.match(cookie, /; SameSite=Lax/);
      assert.match(cookie, /; Path=\//);
      assert.doesNotMatch(cookie, /Max-Age|Expires|Domain/i);
    });

    it('issues unique ids of 256 random bits that carry no user data', async () => {
      const { username, user } = await signedUp();
      const ids: string[] = [];
      for (let i = 0; i < 20; i++) {
        const b = browser(`agent-${i}`);
        const r = await b.api.POST('/api/auth/login', {
          body: { username, password: PASSWORD },
          headers: { 'x-forwarded-for': `10.0.0.${i}` },
        });
        if (i < 4) assert.equal(r.response.status, 200);
        const id = b.cookies.get('sid');
        if (!id) continue;
        assert.equal(Buffer.from(id, 'base64url').length, 32, 'at least 128 bits');
        assert.ok(!id.includes(username) && !Buffer.from(id, 'base64url').toString('latin1').includes(user.id));
        ids.push(id);
      }
      assert.ok(ids.length >= 4, 'logins went through until the per-user limit');
      assert.equal(new Set(ids).size, ids.length, 'every login got a new id');
    });

    it('issues 1000 distinct ids with the bits of random numbers (visitor sessions)', async () => {
      // A visitor's first cart write starts a session: the same id generator as a login, no scrypt.
      const ids = await Promise.all(
        Array.from({ length: 1000 }, async (_, i) => {
          const b = browser(`visitor-${i}`, SERVERS[i % SERVERS.length]);
          const r = await b.api.POST('/api/cart/items', { body: { itemId: 'lemonade', qty: 1 } });
          assert.equal(r.response.status, 200);
          return Buffer.from(b.cookies.get('sid')!, 'base64url');
        }),
      );
      assert.equal(new Set(ids.map((id) => id.toString('hex'))).size, 1000, 'all distinct');
      for (const id of ids) assert.ok(id.length * 8 >= 128, 'at least 128 bits');
      // Random bits: about half of all bits set, and every bit position set in about half the ids.
      const ones = (byte: number) => byte.toString(2).replaceAll('0', '').length;
      const total = ids.reduce((sum, id) => sum + id.reduce((n, byte) => n + ones(byte), 0), 0);
      const share = total / (ids.length * ids[0]!.length * 8);
      assert.ok(share > 0.49 && share < 0.51, `share of 1 bits ${share}`);
      for (let bit = 0; bit < ids[0]!.length * 8; bit++) {
        const set = ids.filter((id) => (id[bit >> 3]! >> (bit & 7)) & 1).length;
        assert.ok(set > 400 && set < 600, `bit ${bit} set in ${set} of 1000 ids`);
      }
      // No sequence: sorted neighbours share no more leading bytes than chance allows.
      const sorted = ids.map((id) => id.toString('hex')).sort();
      for (let i = 1; i < sorted.length; i++) {
        let common = 0;
        while (sorted[i]![common] === sorted[i - 1]![common]) common++;
        assert.ok(common < 10, `neighbours share ${common} hex digits`);
      }
    });

    it('takes the id only from the cookie, never from the URL or the body', async () => {
      const { b } = await signedUp();
      const id = b.cookies.get('sid')!;
      const bare = browser();
      assert.equal((await bare.get(`/api/me?sid=${id}`)).status, 401, 'query string'); // raw: a query the schema does not have
      const viaPath = await bare.get(`/api/me;sid=${id}`); // raw: a path outside the API
      assert.ok(viaPath.status >= 400 && viaPath.status < 500, `path parameter: ${viaPath.status}`);
      // A logout that names the id in its body logs nobody out.
      assert.ok((await bare.post('/api/auth/logout', { sid: id })).status < 500); // raw: a body the schema refuses
      assert.equal(await statusOf(b.api.GET('/api/me')), 200, 'the real session is untouched');
    });

    it('refuses an id with one byte flipped, and the real one still works', async () => {
      const { b } = await signedUp();
      const id = Buffer.from(b.cookies.get('sid')!, 'base64url');
      for (const at of [0, 15, id.length - 1]) {
        const flipped = Buffer.from(id);
        flipped[at]! ^= 0x01;
        const forger = browser();
        forger.cookies.set('sid', flipped.toString('base64url'));
        const r = await forger.api.GET('/api/me');
        assert.equal(r.response.status, 401, `byte ${at}`);
        assert.equal(setCookies(r).length, 0, 'nothing adopted');
      }
      assert.equal(await statusOf(b.api.GET('/api/me')), 200);
    });

    it('a logout racing requests in flight stays a logout (no request brings the session back)', async () => {
      const { b } = await signedUp();
      const cookie = b.cookies.get('sid')!;
      // Requests that read and touch the session, and write session state, on every server it lives on.
      const servers = backend.shared ? SERVERS : ['s1'];
      const racing = Array.from({ length: 60 }, (_, i) => {
        const r = browser('Mozilla/5.0 test', servers[i % servers.length]);
        r.cookies.set('sid', cookie);
        return statusOf(
          i % 2 ? r.api.GET('/api/me') : r.api.POST('/api/cart/items', { body: { itemId: 'lemonade', qty: 1 } }),
        );
      });
      const out = statusOf(b.api.POST('/api/auth/logout'));
      const results = await Promise.all([out, ...racing]);
      assert.equal(results[0], 204);
      for (const status of results.slice(1)) assert.ok([200, 401].includes(status), `racing request: ${status}`);
      for (const server of servers) {
        const replay = browser('Mozilla/5.0 test', server);
        replay.cookies.set('sid', cookie);
        assert.equal(await statusOf(replay.api.GET('/api/me')), 401, `still logged out on ${server}`);
      }
    });

    it('does not adopt an id it never issued', async () => {
      const b = browser();
      b.cookies.set('sid', Buffer.alloc(32, 7).toString('base64url'));
      const me = await b.api.GET('/api/me');
      assert.equal(me.response.status, 401);
      assert.equal(setCookies(me).length, 0, 'no session is created for a made-up id');
    });

    it('throttles an address that guesses session ids, with one budget over all servers', async () => {
      // From 127.0.0.1, a trusted proxy: X-Forwarded-For names the client, as through the balancer.
      const guesser = { 'x-forwarded-for': '203.0.113.7' };
      // Where the ids would live: every server on a shared store, one server in the stateful design.
      const servers = backend.shared ? SERVERS : ['s1'];
      const { b: victim } = await signedUp();
      const statuses: number[] = [];
      for (let round = 0; round < 23; round++) {
        const batch = await Promise.all(
          Array.from({ length: 10 }, async (_, i) => {
            const b = browser('Mozilla/5.0 test', servers[(round * 10 + i) % servers.length]);
            b.cookies.set('sid', randomBytes(32).toString('base64url'));
            const { response } = await b.api.GET('/api/me', { headers: guesser });
            if (response.status === 429) assert.ok(Number(response.headers.get('retry-after')) >= 1, 'Retry-After');
            return response.status;
          }),
        );
        statuses.push(...batch);
      }
      const count = (status: number) => statuses.filter((s) => s === status).length;
      assert.deepEqual([count(401), count(429)], [GUESS_LIMIT, 230 - GUESS_LIMIT]);
      // A live session is never counted nor refused, from the guesser's address or any other.
      assert.equal(await statusOf(victim.api.GET('/api/me', { headers: guesser })), 200);
      assert.equal(await statusOf(victim.api.GET('/api/me')), 200);
    });

    it('gives a new id on login and refuses the old one', async () => {
      const { b, username } = await signedUp();
      const before = b.cookies.get('sid')!;
      assert.equal(await statusOf(b.api.POST('/api/auth/login', { body: { username, password: PASSWORD } })), 200);
      const afterLogin = b.cookies.get('sid')!;
      assert.notEqual(afterLogin, before);
      const old = browser();
      old.cookies.set('sid', before);
      assert.equal(await statusOf(old.api.GET('/api/me')), 401, 'the pre-login id is dead');
      assert.equal(await statusOf(b.api.GET('/api/me')), 200);
    });

    it('logs out on every server at once and expires the cookie', async () => {
      const { b } = await signedUp();
      const cookie = b.cookies.get('sid')!;
      const out = await b.api.POST('/api/auth/logout');
      assert.equal(out.response.status, 204);
      assert.match(setCookies(out).join(), /sid=;.*Expires=Thu, 01 Jan 1970/);
      for (const server of SERVERS) {
        const replay = browser('Mozilla/5.0 test', server);
        replay.cookies.set('sid', cookie);
        assert.equal(await statusOf(replay.api.GET('/api/me')), 401, `old cookie refused on ${server}`);
      }
    });

    it('a session made on one server works on another only when the store is shared', async () => {
      const { b } = await signedUp(browser('Mozilla/5.0 test', 's1'));
      const elsewhere = browser('Mozilla/5.0 test', 's2');
      elsewhere.cookies.set('sid', b.cookies.get('sid')!);
      assert.equal(await statusOf(elsewhere.api.GET('/api/me')), backend.shared ? 200 : 401);
    });

    it('lists the user’s sessions and revokes one', async () => {
      const { b: phone, username } = await signedUp(browser('Phone/1.0'));
      const laptop = browser('Laptop/2.0');
      assert.equal(await statusOf(laptop.api.POST('/api/auth/login', { body: { username, password: PASSWORD } })), 200);
      const list = await laptop.api.GET('/api/auth/sessions');
      assert.equal(list.response.status, 200);
      const { sessions } = list.data!;
      assert.deepEqual(sessions.map((s) => s.userAgent).sort(), ['Laptop/2.0', 'Phone/1.0']);
      assert.deepEqual(
        sessions.filter((s) => s.current).map((s) => s.userAgent),
        ['Laptop/2.0'],
      );
      assert.ok(
        sessions.every((s) => !Number.isNaN(Date.parse(s.createdAt)) && !Number.isNaN(Date.parse(s.lastSeenAt))),
      );
      assert.ok(!sessions.some((s) => s.id === phone.cookies.get('sid')), 'the listing never shows a cookie value');
      const phoneSession = sessions.find((s) => !s.current)!;
      const revoke = () => laptop.api.DELETE('/api/auth/sessions/{id}', { params: { path: { id: phoneSession.id } } });
      assert.equal(await statusOf(revoke()), 204);
      assert.equal(await statusOf(phone.api.GET('/api/me')), 401);
      assert.equal(await statusOf(laptop.api.GET('/api/me')), 200);
      assert.equal(await statusOf(revoke()), 404);
    });

    it('log out everywhere kills the other sessions, refresh tokens and access tokens', async () => {
      const { b: phone, username } = await signedUp(browser('Phone/1.0'));
      const laptop = browser('Laptop/2.0');
      await laptop.api.POST('/api/auth/login', { body: { username, password: PASSWORD } });
      const tokens = await browser('api-client').api.POST('/api/auth/token', {
        body: { username, password: PASSWORD },
      });
      assert.equal(tokens.response.status, 200);
      const { accessToken, refreshToken } = tokens.data!;
      const bearer = () => browser('api-client').apiWith({ authorization: `Bearer ${accessToken}` });
      assert.equal(await statusOf(bearer().GET('/api/me')), 200);

      assert.equal(await statusOf(laptop.api.POST('/api/auth/logout-all')), 204);
      assert.equal(await statusOf(phone.api.GET('/api/me')), 401);
      assert.equal(await statusOf(laptop.api.GET('/api/me')), 401);
      assert.equal(await statusOf(bearer().GET('/api/me')), 401, 'the access token is revoked');
      const refresh = await browser('api-client').api.POST('/api/auth/refresh', { body: { refreshToken } });
      assert.equal(refresh.response.status, 401, 'the refresh token is revoked');
    });

    it('marks authenticated responses Cache-Control: no-store', async () => {
      const { b } = await signedUp();
      assert.equal((await b.api.GET('/api/me')).response.headers.get('cache-control'), 'no-store');
      assert.equal((await b.api.GET('/api/auth/sessions')).response.headers.get('cache-control'), 'no-store');
    });

    it('revokes a session presented with another User-Agent, and the 401 says why', async () => {
      const { b } = await signedUp(browser('Original/1.0'));
      const thief = browser('Thief/6.6');
      thief.cookies.set('sid', b.cookies.get('sid')!);
      const refused = await thief.api.GET('/api/me');
      assert.equal(refused.response.status, 401);
      assert.equal(refused.error?.error.code, 'not_authenticated');
      assert.match(refused.error!.error.message, /another browser/);
      const after = await b.api.GET('/api/me');
      assert.equal(after.response.status, 401, 'the session is gone for everyone');
      assert.match(after.error!.error.message, /Your session has ended/);
      const stranger = await browser('Stranger/1.0').api.GET('/api/me');
      assert.match(stranger.error!.error.message, /^Sign in first/, 'no cookie: nothing ended');
    });

    it('keeps the session when the browser updates itself (only its version numbers change)', async () => {
      const chrome = (v: string) =>
        `Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_${v}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${v}.0.0.0 Safari/537.36`;
      const { b } = await signedUp(browser(chrome('120')));
      const updated = browser(chrome('121'));
      updated.cookies.set('sid', b.cookies.get('sid')!);
      assert.equal(await statusOf(updated.api.GET('/api/me')), 200);
      const firefox = browser('Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:121.0) Gecko/20100101 Firefox/121.0');
      firefox.cookies.set('sid', b.cookies.get('sid')!);
      assert.equal(await statusOf(firefox.api.GET('/api/me')), 401, 'another browser still ends it');
    });

    it('refuses cross-site requests made with the cookie; bearer requests are exempt', async () => {
      const { b, username } = await signedUp();
      const site = { host: HOST };
      const evil = await b.post('/api/auth/logout', {}, { ...site, origin: 'http://evil.example' }); // raw: a forged Origin
      assert.equal(evil.status, 403);
      assert.equal(evil.body.error.code, 'csrf_rejected');
      // raw: a forged Sec-Fetch-Site
      const crossSite = await b.post('/api/auth/logout', {}, { ...site, 'sec-fetch-site': 'cross-site' });
      assert.equal(crossSite.status, 403);
      assert.equal(await statusOf(b.api.GET('/api/me')), 200, 'still signed in: nothing happened');
      const tokens = await browser('api').api.POST('/api/auth/token', { body: { username, password: PASSWORD } });
      // raw: a forged Origin, with a bearer token
      const bearer = await browser('api').post(
        '/api/auth/logout-all',
        {},
        {
          ...site,
          authorization: `Bearer ${tokens.data!.accessToken}`,
          origin: 'http://evil.example',
        },
      );
      assert.equal(bearer.status, 204, 'a bearer request is not CSRF-able');
      // raw: Origin and Sec-Fetch-Site set by hand (a browser's same-origin request)
      const same = await b.post(
        '/api/auth/logout',
        {},
        { ...site, origin: `http://${HOST}`, 'sec-fetch-site': 'same-origin' },
      );
      assert.equal(same.status, 204);
    });

    it('limits password attempts per user in shared state (per server in the stateful design)', async () => {
      const { username } = await signedUp();
      const attempt = (server: string, name = username) =>
        browser('Attacker/1.0', server).api.POST('/api/auth/login', {
          body: { username: name, password: 'wrong password!' },
        });
      for (let i = 0; i < 5; i++) assert.equal(await statusOf(attempt(SERVERS[i % 3]!)), 401);
      if (backend.shared) {
        for (const server of SERVERS) {
          const limited = (await attempt(server)).response;
          assert.equal(limited.status, 429, `the 6th attempt is refused on ${server}`);
          assert.ok(Number(limited.headers.get('retry-after')) >= 1);
        }
      } else {
        // s1 saw 2 of the 5 attempts: each server counts alone, so 3 servers allow 3 x the limit.
        assert.equal(await statusOf(attempt('s1')), 401);
      }
      // The answers do not tell whether a username exists, below the limit or past it.
      const { username: other } = await signedUp();
      const ghost = newUsername('ghost');
      const [known, unknown] = [await attempt('s3', other), await attempt('s3', ghost)];
      assert.deepEqual([known.response.status, unknown.response.status], [401, 401]);
      assert.deepEqual(known.error, unknown.error);
      for (let i = 0; i < 5; i++) await Promise.all([attempt('s3', other), attempt('s3', ghost)]);
      const [knownLimited, unknownLimited] = [await attempt('s3', other), await attempt('s3', ghost)];
      assert.deepEqual([knownLimited.response.status, unknownLimited.response.status], [429, 429]);
      assert.deepEqual(knownLimited.error, unknownLimited.error);
    });

    it('gives exactly one account to 50 concurrent registrations of one name over 3 servers', async () => {
      const username = newUsername('race');
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          statusOf(
            browser(`racer-${i}`, SERVERS[i % 3]).api.POST('/api/auth/register', {
              body: { username, password: `${PASSWORD} ${i}` },
            }),
          ),
        ),
      );
      assert.deepEqual([...results].sort(), [201, ...Array(49).fill(409)]);
      const winner = results.indexOf(201);
      const login = browser().api.POST('/api/auth/login', { body: { username, password: `${PASSWORD} ${winner}` } });
      assert.equal(await statusOf(login), 200);
    });
  });
}
