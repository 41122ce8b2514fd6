import { createPrivateKey, createPublicKey, generateKeyPair, randomBytes, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { exportJWK, type JWK } from 'jose';
import pg from 'pg';
import { inTransaction } from '../../records/pool.ts';
import * as q from '../queries.ts';
import { KeyEncryption } from './key-encryption.ts';

/** The only algorithm we sign and accept. Chosen by measurement (bench/jwt-verify.ts): RS256 has the
 * cheapest asymmetric verify here (~32 us with node:crypto, vs ~94 ES256 and ~127 EdDSA). */
export const ALGORITHM = 'RS256';
// The NOTIFY channel that tells every server to reload keys; it lives with the NOTIFY in queries.ts.
export { KEYS_CHANNEL } from '../queries.ts';

export interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicJwk: JWK;
  createdAt: Date;
  retiredAt: Date | null;
  expiresAt: Date | null;
}

interface KeyRow {
  kid: string;
  private_pem: string;
  public_jwk: JWK;
  created_at: Date;
  retired_at: Date | null;
  expires_at: Date | null;
}

const generate = promisify(generateKeyPair);

/**
 * The key table: create, rotate and remove keys. Used by the app servers (first start creates a
 * key) and by `npm run keys`. Rotation never signs anyone out: the retired key keeps verifying
 * until the last token it signed has expired (`verifyForMs`), then leaves the JWKS. Private halves
 * are stored sealed (key-encryption.ts), never in plain text.
 */
export class SigningKeyTable {
  constructor(
    private readonly db: pg.Pool,
    private readonly encryption: KeyEncryption,
  ) {}

  async all(): Promise<SigningKey[]> {
    const { rows } = await this.db.query<KeyRow>(q.liveSigningKeys());
    return rows.map((row) => {
      // A key stored before sealing existed is read as it is, and sealed at the next start (ensureOne).
      const pem = KeyEncryption.isSealed(row.private_pem)
        ? this.encryption.open(row.kid, row.private_pem)
        : row.private_pem;
      const privateKey = createPrivateKey(pem);
      return {
        kid: row.kid,
        privateKey,
        publicKey: createPublicKey(privateKey),
        publicJwk: row.public_jwk,
        createdAt: row.created_at,
        retiredAt: row.retired_at,
        expiresAt: row.expires_at,
      };
    });
  }

  /**
   * Creates the first key if there is none (safe when several servers start at once), and seals
   * any key stored in plain text by an earlier version.
   */
  async ensureOne(): Promise<void> {
    await this.#locked(async (client) => {
      await this.#reseal(client, (stored) => !KeyEncryption.isSealed(stored));
      const { rowCount } = await client.query(q.signingKeyExists());
      if (!rowCount) await this.#insert(client);
    });
  }

  /**
   * Seals every key with the current key-encryption key (the first one given): after it, the
   * older key-encryption keys can be thrown away. Returns how many records changed.
   */
  async rewrap(): Promise<number> {
    return this.#locked((client) =>
      this.#reseal(client, (stored) => !KeyEncryption.isSealed(stored) || !this.encryption.isCurrent(stored)),
    );
  }

  /** A new key signs from now on; the others retire and verify for `verifyForMs` more. */
  async rotate(verifyForMs: number): Promise<string> {
    return this.#locked(async (client) => {
      await client.query(q.retireSigningKeys(verifyForMs));
      return this.#insert(client);
    });
  }

  /** Removes a key at once: tokens signed with it are refused from now on. */
  async remove(kid: string): Promise<boolean> {
    return this.#locked(async (client) => {
      const { rowCount } = await client.query(q.removeSigningKey(kid));
      return (rowCount ?? 0) > 0;
    });
  }

  async #insert(client: pg.PoolClient): Promise<string> {
    const { privateKey, publicKey } = await generate('rsa', { modulusLength: 2048 });
    // Dated and hex so that a kid reads well in `npm run keys -- list` and never starts with '-'
    // (base64url can, and a command line would take it for an option).
    const kid = `${new Date().toISOString().slice(0, 10)}-${randomBytes(8).toString('hex')}`;
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: ALGORITHM, use: 'sig' };
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await client.query(q.insertSigningKey(kid, ALGORITHM, this.encryption.seal(kid, pem), publicJwk));
    return kid;
  }

  async #reseal(client: pg.PoolClient, needed: (stored: string) => boolean): Promise<number> {
    const { rows } = await client.query<{ kid: string; private_pem: string }>(q.signingKeySecrets());
    let changed = 0;
    for (const { kid, private_pem: stored } of rows) {
      if (!needed(stored)) continue;
      const pem = KeyEncryption.isSealed(stored) ? this.encryption.open(kid, stored) : stored;
      await client.query(q.replaceSigningKeySecret(kid, this.encryption.seal(kid, pem)));
      changed++;
    }
    return changed;
  }

  /** Runs `work` in a transaction under the keys lock; the NOTIFY, sent at COMMIT, makes every server reload. */
  #locked<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.db, async (client) => {
      await client.query(q.lockSigningKeys());
      const result = await work(client);
      await client.query(q.notifyKeysChanged());
      return result;
    });
  }
}
