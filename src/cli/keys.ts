/**
 * `npm run keys -- <command>`: manage the JWT signing keys (records in PostgreSQL).
 *   list             the keys, newest first, with when they retire and expire
 *   rotate           a new key signs from now on; the old one verifies until its tokens expire
 *   remove KID       drop a key at once: its tokens are refused from now on
 *   new-kek          print a fresh key-encryption key (for SW_KEY_ENCRYPTION_KEY)
 *   rewrap           seal every signing key with the current key-encryption key (the first one
 *                    given); for `npm start`'s own key file, --new first puts a fresh key in it
 *                    and afterwards drops the old ones
 * Finds the database of a running `npm start` (.statewise/runtime.json), or pass --database-url.
 * The key-encryption key: SW_KEY_ENCRYPTION_KEY(_FILE), else `npm start`'s file in --data-dir.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createPool } from '../records/pool.ts';
import { SigningKeyTable } from '../accounts/tokens/signing-keys.ts';
import {
  KeyEncryption,
  KEY_ENCRYPTION_KEY_FILE,
  newKeyEncryptionKey,
  type KeyEncryptionSource,
} from '../accounts/tokens/key-encryption.ts';

// The KID after `remove` is taken verbatim, before parseArgs sees it: a key id of an older scheme
// (base64url) may start with '-', which parseArgs would read as an unknown option.
const args = process.argv.slice(2);
const removeAt = args.indexOf('remove');
const kidToRemove = removeAt >= 0 ? args.splice(removeAt + 1, 1)[0] : undefined;

const { values, positionals } = parseArgs({
  args,
  options: {
    'database-url': { type: 'string' },
    'data-dir': { type: 'string', default: fileURLToPath(new URL('../../.statewise', import.meta.url)) },
    'verify-for-seconds': { type: 'string', default: String(900 + 120) },
    new: { type: 'boolean', default: false },
  },
  allowPositionals: true,
});

async function databaseUrl(): Promise<string> {
  if (values['database-url']) return values['database-url'];
  try {
    const runtime = JSON.parse(await readFile(`${values['data-dir']}/runtime.json`, 'utf8')) as { databaseUrl: string };
    return runtime.databaseUrl;
  } catch {
    process.stderr.write('No running npm start found; pass --database-url postgres://...\n');
    process.exit(2);
  }
}

if (positionals[0] === 'new-kek') {
  process.stdout.write(`${newKeyEncryptionKey()}\n`);
  process.exit(0);
}

/** The key-encryption key(s), as the servers get them. */
function keyEncryptionSource(): KeyEncryptionSource {
  if (process.env.SW_KEY_ENCRYPTION_KEY) return { value: process.env.SW_KEY_ENCRYPTION_KEY };
  return { file: process.env.SW_KEY_ENCRYPTION_KEY_FILE || join(values['data-dir'], KEY_ENCRYPTION_KEY_FILE) };
}

/** Writes the key file whole or not at all (a torn key file would lock every server out). */
async function replaceKeyFile(file: string, keys: string[]): Promise<void> {
  await writeFile(`${file}.tmp`, `${keys.join('\n')}\n`, { mode: 0o600 });
  await rename(`${file}.tmp`, file);
}

const source = keyEncryptionSource();
const ownFile = 'file' in source && source.file === join(values['data-dir'], KEY_ENCRYPTION_KEY_FILE);
if (positionals[0] === 'rewrap' && values.new) {
  if (!ownFile || !('file' in source)) {
    process.stderr.write(
      "--new rotates npm start's own key file; with SW_KEY_ENCRYPTION_KEY, put the new key first yourself\n",
    );
    process.exit(2);
  }
  // New first (it seals), old after (running servers still open with it until the records move).
  await replaceKeyFile(source.file, [newKeyEncryptionKey(), (await readFile(source.file, 'utf8')).trim()]);
}

const pool = createPool(await databaseUrl(), { max: 1 });
const encryption = new KeyEncryption(source);
const table = new SigningKeyTable(pool, encryption);
try {
  const [command] = positionals;
  if (command === 'rotate') {
    const kid = await table.rotate(Number(values['verify-for-seconds']) * 1000);
    process.stdout.write(`new signing key ${kid}; older keys verify for ${values['verify-for-seconds']} s more\n`);
  } else if (command === 'remove' && kidToRemove) {
    const removed = await table.remove(kidToRemove);
    process.stdout.write(removed ? `removed ${kidToRemove}\n` : `no key ${kidToRemove}\n`);
  } else if (command === 'rewrap') {
    const changed = await table.rewrap();
    process.stdout.write(`${changed} signing key(s) sealed again with key-encryption key ${encryption.currentId}\n`);
    if (ownFile && 'file' in source) {
      const [current] = (await readFile(source.file, 'utf8')).trim().split('\n');
      await replaceKeyFile(source.file, [current!]);
      process.stdout.write(`older key-encryption keys removed from ${source.file}\n`);
    } else {
      process.stdout.write("the older key-encryption keys can now be removed from the servers' setting\n");
    }
  } else if (command === 'list' || command === undefined) {
    for (const key of await table.all()) {
      const state = key.retiredAt ? `retired, verifies until ${key.expiresAt?.toISOString()}` : 'signing';
      process.stdout.write(`${key.kid}  created ${key.createdAt.toISOString()}  ${state}\n`);
    }
  } else {
    process.stderr.write(
      'usage: npm run keys -- list | rotate | remove KID | new-kek | rewrap [--new] [--database-url URL]\n',
    );
    process.exitCode = 2;
  }
} finally {
  await pool.end();
}
