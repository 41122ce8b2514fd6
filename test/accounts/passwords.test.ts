/**
 * Password storage: Argon2id at OWASP's parameters for new hashes, older scrypt hashes still
 * accepted and replaced at the sign-in that proves them, and a bounded number of hashes at once.
 */
import assert from 'node:assert/strict';
import { randomBytes, scryptSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { BoundedGate } from '../../src/kernel/bounded-gate.ts';
import { AppError } from '../../src/kernel/errors.ts';
import { checkPasswordPolicy, PasswordHasher } from '../../src/accounts/passwords.ts';
import { query } from '../support/db.ts';
import { startApps, statusOf, type TestApps } from '../support/app.ts';
import { newUsername, PASSWORD } from '../security/backends.ts';

/** A hash as the previous release stored it: scrypt N=2^14, r=8, p=1. */
function oldScryptHash(password: string): string {
  const salt = randomBytes(16);
  const key = scryptSync(password.normalize('NFKC'), salt, 32, { N: 2 ** 14, r: 8, p: 1 });
  return ['scrypt', 2 ** 14, 8, 1, salt.toString('base64url'), key.toString('base64url')].join('$');
}

describe('the password policy', () => {
  it('says which rule a refused password breaks', () => {
    const refusal = (password: string) => {
      try {
        checkPasswordPolicy(password, 'alice');
        return 'accepted';
      } catch (error) {
        assert.ok(error instanceof AppError && error.code === 'invalid_input');
        return error.message;
      }
    };
    assert.match(refusal('nine char'), /at least 10 characters/);
    assert.match(refusal('password123'), /most common/);
    assert.match(refusal('xx-ALICE-rocks'), /contains the username/);
    assert.equal(refusal('ten chars!'), 'accepted', 'exactly the minimum');
  });
});

describe('password hashes', () => {
  const hasher = new PasswordHasher({ concurrency: 2, maxWaiting: 8 });

  it('are Argon2id with m=19 MiB, t=2, p=1, salted, and check only the right password', async () => {
    const [one, two] = await Promise.all([hasher.hash('påssword one'), hasher.hash('påssword one')]);
    assert.match(one, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    assert.notEqual(one, two, 'a new salt each time');
    assert.equal(await hasher.verify('påssword one', one), true);
    assert.equal(await hasher.verify('pa\u030Assword one', one), true, 'the same text in another Unicode form');
    assert.equal(await hasher.verify('påssword two', one), false);
    assert.equal(await hasher.verify('påssword one', 'not a hash'), false);
    assert.equal(hasher.needsRehash(one), false);
  });

  it('accept the older scrypt hashes, and ask for a rehash of them and of weaker Argon2id', async () => {
    const old = oldScryptHash(PASSWORD);
    assert.equal(await hasher.verify(PASSWORD, old), true);
    assert.equal(await hasher.verify('wrong password', old), false);
    assert.equal(hasher.needsRehash(old), true);
    assert.equal(hasher.needsRehash('$argon2id$v=19$m=4096,t=3,p=1$c2FsdHNhbHQ$aGFzaA'), true);
    assert.equal(hasher.needsRehash('$argon2id$v=19$m=19456,t=1,p=1$c2FsdHNhbHQ$aGFzaA'), true);
  });

  it('run at most `concurrency` at once and refuse past the queue with 503', async () => {
    let running = 0;
    let most = 0;
    const gate = new BoundedGate(2, 3, () => new AppError('unavailable', 'full'));
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const job = async () => {
      most = Math.max(most, ++running);
      await held;
      running--;
    };
    const accepted = Array.from({ length: 5 }, () => gate.run(job));
    await assert.rejects(gate.run(job), (error: unknown) => error instanceof AppError && error.status === 503);
    release();
    await Promise.all(accepted);
    assert.equal(most, 2);
    await gate.run(job); // the gate is free again
  });
});

describe('a sign-in with an older hash', () => {
  let apps: TestApps;
  before(async () => {
    apps = await startApps({ store: 'postgres' });
  });
  after(() => apps.close());

  it('signs in and stores an Argon2id hash in its place; a wrong password changes nothing', async () => {
    const username = newUsername('rehash');
    const client = apps.servers[0]!.client();
    const login = (password: string, as = client) => as.api.POST('/api/auth/login', { body: { username, password } });
    assert.equal(
      await statusOf(client.api.POST('/api/auth/register', { body: { username, password: PASSWORD } })),
      201,
    );
    const old = oldScryptHash(PASSWORD);
    await query(apps.databaseUrl, 'UPDATE users SET password_hash = $2 WHERE username = $1', [username, old]);
    const stored = async () =>
      (
        await query<{ h: string }>(apps.databaseUrl, 'SELECT password_hash AS h FROM users WHERE username = $1', [
          username,
        ])
      )[0]!.h;

    assert.equal(await statusOf(login('not the password')), 401);
    assert.equal(await stored(), old, 'a failed sign-in leaves the hash alone');

    assert.equal(await statusOf(login(PASSWORD)), 200);
    const stronger = await stored();
    assert.match(stronger, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    assert.equal(await statusOf(login(PASSWORD, apps.servers[0]!.client())), 200);
    assert.equal(await stored(), stronger, 'rehashed once, not at every sign-in');
  });
});
