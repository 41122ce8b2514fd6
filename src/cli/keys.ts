/**
 * `npm run keys -- <command>`: manage the JWT signing keys (records in PostgreSQL).
 *   list             the keys, newest first, with when they retire and expire
 *   rotate           a new key signs from now on; the old one verifies until its tokens expire
 *   remove KID       drop a key at once: its tokens are refused from now on
 * Finds the database of a running `npm start` (.statewise/runtime.json), or pass --database-url.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createPool } from '../records/pool.ts';
import { SigningKeyTable } from '../accounts/tokens/signing-keys.ts';

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

const pool = createPool(await databaseUrl(), { max: 1 });
const table = new SigningKeyTable(pool);
try {
  const [command] = positionals;
  if (command === 'rotate') {
    const kid = await table.rotate(Number(values['verify-for-seconds']) * 1000);
    process.stdout.write(`new signing key ${kid}; older keys verify for ${values['verify-for-seconds']} s more\n`);
  } else if (command === 'remove' && kidToRemove) {
    const removed = await table.remove(kidToRemove);
    process.stdout.write(removed ? `removed ${kidToRemove}\n` : `no key ${kidToRemove}\n`);
  } else if (command === 'list' || command === undefined) {
    for (const key of await table.all()) {
      const state = key.retiredAt ? `retired, verifies until ${key.expiresAt?.toISOString()}` : 'signing';
      process.stdout.write(`${key.kid}  created ${key.createdAt.toISOString()}  ${state}\n`);
    }
  } else {
    process.stderr.write('usage: npm run keys -- list | rotate | remove KID [--database-url URL]\n');
    process.exitCode = 2;
  }
} finally {
  await pool.end();
}
