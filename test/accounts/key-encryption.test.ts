/**
 * The signing keys at rest: sealed with AES-256-GCM under a key-encryption key kept out of the
 * database, so a dump cannot forge tokens; older plain rows sealed at start; `rewrap` moves every
 * record to a new key-encryption key, from the table and from `npm run keys`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { loadServerConfig } from '../../src/config/server-config.ts';
import { KeyEncryption, newKeyEncryptionKey } from '../../src/accounts/tokens/key-encryption.ts';
import { SigningKeyTable } from '../../src/accounts/tokens/signing-keys.ts';
import { migrate } from '../../src/records/migrate.ts';
import { createPool } from '../../src/records/pool.ts';
import { freshDatabase } from '../support/postgres.ts';

const sealer = (...keys: string[]) => new KeyEncryption({ value: keys.join(',') });

describe('key encryption', () => {
  const [a, b] = [newKeyEncryptionKey(), newKeyEncryptionKey()];

  it('opens what it sealed, and nothing tampered with, moved to another kid or sealed by another key', () => {
    const sealed = sealer(a).seal('kid-1', 'secret pem');
    assert.match(sealed, /^sealed\.v1\.[0-9a-f]{12}\./);
    assert.doesNotMatch(sealed, /secret/);
    assert.equal(sealer(a).open('kid-1', sealed), 'secret pem');
    assert.notEqual(sealer(a).seal('kid-1', 'secret pem'), sealed, 'a fresh IV each time');
    assert.throws(() => sealer(a).open('kid-2', sealed), /authenticate/, 'the kid is bound to the record');
    const parts = sealed.split('.');
    parts[5] = Buffer.from('x'.repeat(10)).toString('base64url');
    assert.throws(() => sealer(a).open('kid-1', parts.join('.')), /authenticate/);
    assert.throws(() => sealer(b).open('kid-1', sealed), /does not have/);
    assert.equal(sealer(b, a).open('kid-1', sealed), 'secret pem', 'an older key still opens');
    assert.throws(() => sealer(a).open('kid-1', 'plain pem'), /unsealed/);
  });

  it('is required by the server configuration, and must be 32 bytes', () => {
    const base = { SW_DATABASE_URL: 'postgres://x@127.0.0.1/db' };
    assert.throws(() => loadServerConfig(base), /SW_KEY_ENCRYPTION_KEY is required/);
    assert.throws(() => loadServerConfig({ ...base, SW_KEY_ENCRYPTION_KEY: 'c2hvcnQ' }), /32 bytes/);
    assert.throws(
      () => loadServerConfig({ ...base, SW_KEY_ENCRYPTION_KEY: a, SW_KEY_ENCRYPTION_KEY_FILE: '/x' }),
      /both set/,
    );
    assert.deepEqual(loadServerConfig({ ...base, SW_KEY_ENCRYPTION_KEY: a }).keyEncryption, { value: a });
  });
});

describe('signing keys at rest', () => {
  let databaseUrl: string;
  let pool: pg.Pool;
  before(async () => {
    databaseUrl = await freshDatabase();
    pool = createPool(databaseUrl, { max: 2 });
    await migrate(pool);
  });
  after(() => pool.end());
  const stored = async () =>
    (await pool.query<{ kid: string; private_pem: string }>('SELECT kid, private_pem FROM signing_keys ORDER BY kid'))
      .rows;

  /** The key-encryption key the rows are sealed with so far. */
  const firstKey = newKeyEncryptionKey();

  it('seals a key stored in plain text by an earlier version at start, and new keys from the first', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await pool.query(
      `INSERT INTO signing_keys (kid, alg, private_pem, public_jwk, retired_at, expires_at)
       VALUES ('0-legacy', 'RS256', $1, '{}', now(), now() + interval '1 hour')`,
      [pem],
    );
    const table = new SigningKeyTable(pool, sealer(firstKey));
    await table.ensureOne();
    const rows = await stored();
    assert.equal(rows.length, 2, 'the legacy key and a new signing key');
    for (const row of rows) assert.match(row.private_pem, /^sealed\.v1\./);
    const legacy = (await table.all()).find((k) => k.kid === '0-legacy')!;
    assert.equal(legacy.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), pem);
  });

  it('rewraps every key under a new key-encryption key: `npm run keys -- rewrap --new` on npm start’s file', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'statewise-kek-'));
    try {
      const file = join(dataDir, 'key-encryption-key');
      await writeFile(file, `${firstKey}\n`, { mode: 0o600 });
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', 'src/cli/keys.ts', 'rewrap', '--new', '--data-dir', dataDir, '--database-url', databaseUrl],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...process.env, SW_KEY_ENCRYPTION_KEY: '', SW_KEY_ENCRYPTION_KEY_FILE: '' },
        },
      );
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (out += c.toString()));
      const [code] = await once(child, 'exit');
      assert.equal(code, 0, out);
      assert.match(out, /2 signing key\(s\) sealed again/);

      const lines = (await readFile(file, 'utf8')).trim().split('\n');
      assert.equal(lines.length, 1, 'the old key-encryption key is gone from the file');
      assert.notEqual(lines[0], firstKey);
      assert.equal(
        (await new SigningKeyTable(pool, sealer(lines[0]!)).all()).length,
        2,
        'the new key opens every record',
      );
      await assert.rejects(new SigningKeyTable(pool, sealer(firstKey)).all(), /does not have/);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
