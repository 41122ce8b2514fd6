/**
 * The key-encryption keys as the settings give them (SW_KEY_ENCRYPTION_KEY or _FILE): read and
 * checked here, at start, by the config; used by accounts/tokens/key-encryption.ts to seal keys.
 */
import { readFileSync } from 'node:fs';

/** Where the key-encryption keys come from: the value itself, or a file (re-read on demand). */
export type KeyEncryptionSource = { value: string } | { file: string };

/**
 * The keys in a setting or file: one per line (or comma), newest first. The first seals; every
 * one opens, so a new key can be rolled out before `npm run keys -- rewrap` moves the records.
 */
function parseKeyEncryptionKeys(text: string, where: string): Buffer[] {
  const keys = text
    .split(/[\n,]/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => Buffer.from(line, /^[0-9a-f]{64}$/i.test(line) ? 'hex' : 'base64url'));
  if (keys.length === 0) throw new Error(`${where} holds no key-encryption key`);
  for (const key of keys) {
    if (key.length !== 32) {
      throw new Error(`${where}: a key-encryption key is 32 bytes (base64url or hex); one decodes to ${key.length}`);
    }
  }
  return keys;
}

/** The keys of a source, newest first (a file is read now). Throws when there is none or one is not 32 bytes. */
export function readKeyEncryptionKeys(source: KeyEncryptionSource): Buffer[] {
  return 'file' in source
    ? parseKeyEncryptionKeys(readFileSync(source.file, 'utf8'), source.file)
    : parseKeyEncryptionKeys(source.value, 'the setting');
}
