import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { readKeyEncryptionKeys, type KeyEncryptionSource } from '../../config/key-encryption-keys.ts';

export type { KeyEncryptionSource };

const SEALED = 'sealed.v1';
const IV_BYTES = 12;

/** A fresh key-encryption key, as the settings and files hold it (32 random bytes, base64url). */
export const newKeyEncryptionKey = (): string => randomBytes(32).toString('base64url');

/** Its name in `npm start`'s data folder (.statewise/ by default). */
export const KEY_ENCRYPTION_KEY_FILE = 'key-encryption-key';

/** The file `npm start` keeps its key in for the embedded database; made once, readable by its owner only. */
export async function ensureKeyEncryptionKeyFile(file: string): Promise<void> {
  await writeFile(file, `${newKeyEncryptionKey()}\n`, { flag: 'wx', mode: 0o600 }).catch(
    (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    },
  );
}

/** A key's name in a sealed record: which key opens it, without saying anything of the key. */
const keyId = (key: Buffer) => createHash('sha256').update('statewise-kek').update(key).digest('hex').slice(0, 12);

/**
 * Envelope encryption of the signing keys' private halves at rest (AES-256-GCM, node:crypto), so
 * that a dump or a backup of the database does not let its reader forge tokens. A record is
 * `sealed.v1.<key id>.<iv>.<tag>.<ciphertext>`; the signing key's kid is the additional data, so
 * a sealed key moved to another row does not open.
 */
export class KeyEncryption {
  #keys: Array<{ id: string; key: Buffer }>;

  constructor(private readonly source: KeyEncryptionSource) {
    this.#keys = KeyEncryption.#read(source);
  }

  /** The id of the key that seals. */
  get currentId(): string {
    return this.#keys[0]!.id;
  }

  static isSealed(stored: string): boolean {
    return stored.startsWith(`${SEALED}.`);
  }

  seal(kid: string, secret: string): string {
    const { id, key } = this.#keys[0]!;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(Buffer.from(kid));
    const ciphertext = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
    return [
      SEALED,
      id,
      iv.toString('base64url'),
      cipher.getAuthTag().toString('base64url'),
      ciphertext.toString('base64url'),
    ].join('.');
  }

  /** The secret; throws when the record is not sealed, or sealed by a key this process lacks. */
  open(kid: string, stored: string): string {
    if (!KeyEncryption.isSealed(stored)) throw new Error(`signing key ${kid} is stored unsealed`);
    const [, , id, iv, tag, ciphertext] = stored.split('.');
    let entry = this.#keys.find((k) => k.id === id);
    if (!entry && 'file' in this.source) {
      // `npm run keys -- rewrap` may have written a new key to the file since we read it.
      this.#keys = KeyEncryption.#read(this.source);
      entry = this.#keys.find((k) => k.id === id);
    }
    if (!entry) {
      throw new Error(
        `signing key ${kid} is sealed with key-encryption key ${id}, which this server does not have (it has ${this.#keys.map((k) => k.id).join(', ')})`,
      );
    }
    const decipher = createDecipheriv('aes-256-gcm', entry.key, Buffer.from(iv!, 'base64url'))
      .setAAD(Buffer.from(kid))
      .setAuthTag(Buffer.from(tag!, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(ciphertext!, 'base64url')), decipher.final()]).toString('utf8');
  }

  /** Sealed by the current key: nothing for rewrap to do. */
  isCurrent(stored: string): boolean {
    return stored.split('.')[2] === this.currentId;
  }

  static #read(source: KeyEncryptionSource): Array<{ id: string; key: Buffer }> {
    return readKeyEncryptionKeys(source).map((key) => ({ id: keyId(key), key }));
  }
}
