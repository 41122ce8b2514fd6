/**
 * API tokens, black box, from the OWASP JWT cheat sheet (../shared/research/sessions.md, checks
 * 22-29), on three in-process servers (app.inject) sharing one database: forged and malformed
 * tokens are refused, keys rotate (through the real `keys` CLI) without signing anyone out, refresh
 * tokens are single use with family revocation. On every backend.
 */
import { TEST_KEY_ENCRYPTION_KEY } from '../support/key-encryption.ts';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { startApps, statusOf, type InjectClient, type TestApps } from '../support/app.ts';
import { waitFor } from '../support/wait.ts';
import { BACKENDS, newUsername, PASSWORD } from '../security/backends.ts';
import { attackerKeys, decode, forge, hs256, publicPem, rs256, signingKey } from '../security/jwt.ts';

const SERVERS = ['s1', 's2', 's3'];

async function keysCli(databaseUrl: string, ...args: string[]): Promise<string> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli/keys.ts', ...args, '--database-url', databaseUrl],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, SW_KEY_ENCRYPTION_KEY: TEST_KEY_ENCRYPTION_KEY },
    },
  );
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const [code] = await once(child, 'exit');
  assert.equal(code, 0, out);
  return out;
}

for (const backend of BACKENDS) {
  describe(`API tokens on ${backend.name}`, () => {
    let apps: TestApps;
    /** One API client; through the sticky balancer it stayed on one server, here it is s1's. */
    let client: InjectClient;
    before(async () => {
      apps = await startApps({ ...backend.apps, servers: SERVERS.length, env: { SW_LOGIN_LIMIT: '1000' } });
      client = apps.servers[0]!.client('api-client');
    });
    after(() => apps.close());

    const server = (id: string) => {
      const found = apps.servers.find((s) => s.id === id);
      assert.ok(found, `server ${id}`);
      return found;
    };
    const tokensFor = async () => {
      const username = newUsername('api');
      const credentials = { username, password: PASSWORD };
      assert.equal(await statusOf(server('s1').client().api.POST('/api/auth/register', { body: credentials })), 201);
      const r = await client.api.POST('/api/auth/token', { body: credentials });
      assert.equal(r.response.status, 200);
      return { username, ...r.data! };
    };
    const me = (token: string, on?: string) =>
      (on ? server(on).client('api-client') : client).apiWith({ authorization: `Bearer ${token}` }).GET('/api/me');
    /** The published keys (JWKS). */
    const jwks = async () =>
      (await client.api.GET('/.well-known/jwks.json')).data!.keys as Array<{ kid: string } & Record<string, unknown>>;

    it('issues a short-lived RS256 access token any server verifies on its own', async () => {
      const t = await tokensFor();
      assert.equal(t.tokenType, 'Bearer');
      assert.ok(t.expiresIn <= 900);
      const { header, payload } = decode(t.accessToken);
      assert.equal(header.alg, 'RS256');
      assert.equal(typeof header.kid, 'string');
      for (const claim of ['iss', 'aud', 'sub', 'exp', 'iat', 'jti']) assert.ok(payload[claim] !== undefined, claim);
      assert.ok((payload.exp as number) - (payload.iat as number) <= 900);
      for (const id of SERVERS) assert.equal(await statusOf(me(t.accessToken, id)), 200, id);
      const keys = await jwks();
      assert.ok(keys.some((k) => k.kid === header.kid));
      assert.ok(!keys.some((k) => 'd' in k), 'no private parts published');
    });

    it('refuses forged, tampered and out-of-date tokens', async () => {
      const t = await tokensFor();
      const { header, payload } = decode(t.accessToken);
      const key = await signingKey(apps.databaseUrl, header.kid as string);
      const now = Math.floor(Date.now() / 1000);
      const jwk = (await jwks()).find((k) => k.kid === header.kid)!;
      const attacker = attackerKeys();
      const [headerPart, , signaturePart] = t.accessToken.split('.');
      const cases: Record<string, string> = {
        'alg none': forge({ ...header, alg: 'none' }, payload, () => ''),
        'alg none, signature kept': forge({ ...header, alg: 'none' }, payload, () => signaturePart!),
        'HS256 keyed with the public key': forge({ ...header, alg: 'HS256' }, payload, hs256(publicPem(jwk))),
        'tampered payload': `${headerPart}.${Buffer.from(JSON.stringify({ ...payload, name: 'admin' })).toString('base64url')}.${signaturePart}`,
        expired: forge(header, { ...payload, iat: now - 1000, exp: now - 120 }, rs256(key)),
        'not valid yet (nbf)': forge(header, { ...payload, nbf: now + 600 }, rs256(key)),
        'wrong issuer': forge(header, { ...payload, iss: 'someone-else' }, rs256(key)),
        'wrong audience': forge(header, { ...payload, aud: 'another-api' }, rs256(key)),
        'no exp': forge(header, { ...payload, exp: undefined }, rs256(key)),
        'lifetime over 15 min': forge(header, { ...payload, exp: now + 86_400 }, rs256(key)),
        'unknown kid': forge({ ...header, kid: 'not-a-key' }, payload, rs256(key)),
        'attacker key via jku': forge(
          { ...header, kid: 'evil', jku: 'http://evil.example/jwks.json' },
          payload,
          rs256(attacker.privateKey),
        ),
        'attacker key via x5u under our kid': forge(
          { ...header, x5u: 'http://evil.example/cert.pem' },
          payload,
          rs256(attacker.privateKey),
        ),
        garbage: 'not.a.token',
        'two parts': `${headerPart}.${signaturePart}`,
      };
      for (const [name, token] of Object.entries(cases)) {
        const r = await me(token);
        assert.equal(r.response.status, 401, name);
        assert.equal(r.error?.error.code, 'invalid_token', name);
      }
      // Our own key with a jku header: the header is ignored, the token stands on its signature.
      assert.equal(
        await statusOf(me(forge({ ...header, jku: 'http://evil.example/jwks.json' }, payload, rs256(key)))),
        200,
      );
      assert.equal(await statusOf(me(t.accessToken)), 200, 'the genuine token still works');
    });

    it('rotates refresh tokens; reuse is refused and kills the newest token of the family', async () => {
      const t = await tokensFor();
      const refresh = (refreshToken: string) => client.api.POST('/api/auth/refresh', { body: { refreshToken } });
      const first = await refresh(t.refreshToken);
      assert.equal(first.response.status, 200);
      assert.notEqual(first.data!.refreshToken, t.refreshToken);
      assert.equal(await statusOf(me(first.data!.accessToken)), 200);
      const second = await refresh(first.data!.refreshToken);
      assert.equal(second.response.status, 200);

      const reuse = await refresh(t.refreshToken);
      assert.equal(reuse.response.status, 401, 'a used refresh token is refused');
      const newest = await refresh(second.data!.refreshToken);
      assert.equal(newest.response.status, 401, 'the whole family is revoked, the newest token included');
      assert.equal(await statusOf(me(second.data!.accessToken)), 401, "and the family's access tokens");
      // Stateful: the mark is in the memory of the server that saw the reuse; another still lets the token in.
      assert.equal(await statusOf(me(second.data!.accessToken, 's2')), backend.shared ? 401 : 200);
      assert.equal(await statusOf(refresh('rt_made-up')), 401);
    });

    it('logs out a token sign-in with its bearer token: its access and refresh tokens die on every server; another lives', async () => {
      const t = await tokensFor();
      const other = await client.api.POST('/api/auth/token', { body: { username: t.username, password: PASSWORD } });
      const refreshed = await client.api.POST('/api/auth/refresh', { body: { refreshToken: t.refreshToken } });
      assert.equal(refreshed.response.status, 200);
      const { accessToken, refreshToken } = refreshed.data!;
      for (const id of SERVERS) assert.equal(await statusOf(me(t.accessToken, id)), 200, `valid on ${id} first`);

      const logout = () =>
        server('s2')
          .client('api-client')
          .apiWith({ authorization: `Bearer ${accessToken}` })
          .POST('/api/auth/logout');
      assert.equal(await statusOf(logout()), 204);
      for (const id of SERVERS) {
        for (const token of [t.accessToken, accessToken]) {
          const answer = await me(token, id);
          // Stateful: only the server that logged it out knows (the refresh token is a record: dead everywhere).
          if (!backend.shared && id !== 's2') {
            assert.equal(answer.response.status, 200, `memory: ${id} never heard`);
            continue;
          }
          assert.equal(answer.response.status, 401, `refused on ${id}`);
          assert.match(answer.error!.error.message, /its sign-in was logged out/);
        }
      }
      const again = await client.api.POST('/api/auth/refresh', { body: { refreshToken } });
      assert.equal(again.response.status, 401, 'its refresh token is dead too');
      assert.equal(await statusOf(me(other.data!.accessToken, 's2')), 200, 'another sign-in of the user lives');

      const stale = await logout();
      assert.equal(stale.response.status, 401, 'logging out with a dead token says so');
      assert.equal(stale.error?.error.code, 'invalid_token');
    });

    it('rotates signing keys without signing anyone out, and refuses a removed key', async () => {
      const before = await tokensFor();
      const oldKid = decode(before.accessToken).header.kid as string;
      await keysCli(apps.databaseUrl, 'rotate');
      const after = await waitFor(
        async () => {
          const t = await tokensFor();
          return decode(t.accessToken).header.kid !== oldKid ? t : null;
        },
        { timeoutMs: 15_000, what: 'new tokens to carry the new kid' },
      );
      const newKid = decode(after.accessToken).header.kid as string;
      const kids = (await jwks()).map((k) => k.kid);
      assert.ok(kids.includes(oldKid) && kids.includes(newKid), 'both keys are published');
      for (const id of SERVERS)
        assert.equal(await statusOf(me(before.accessToken, id)), 200, 'old tokens still verify');

      await keysCli(apps.databaseUrl, 'remove', oldKid);
      await waitFor(
        async () =>
          (await Promise.all(SERVERS.map((id) => statusOf(me(before.accessToken, id))))).every((s) => s === 401),
        { timeoutMs: 15_000, what: 'the removed key to be refused on every server' },
      );
      for (const id of SERVERS) {
        assert.equal(await statusOf(me(before.accessToken, id)), 401, `removed key refused on ${id}`);
        assert.equal(await statusOf(me(after.accessToken, id)), 200);
      }
      const published = (await jwks()).map((k) => k.kid);
      assert.ok(!published.includes(oldKid), 'the removed key left the JWKS');
      // A kid of the older base64url scheme may start with '-': the CLI takes it as the KID, not an option.
      assert.equal(await keysCli(apps.databaseUrl, 'remove', '-yAbsentKid'), 'no key -yAbsentKid\n');
    });

    it('refuses bad credentials for tokens as for logins', async () => {
      const t = await tokensFor();
      const token = (username: string) =>
        client.api.POST('/api/auth/token', { body: { username, password: 'not the password' } });
      const wrong = await token(t.username);
      const ghost = await token(newUsername('ghost'));
      assert.deepEqual([wrong.response.status, ghost.response.status], [401, 401]);
      assert.deepEqual(wrong.error, ghost.error);
    });
  });
}
