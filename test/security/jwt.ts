import { KeyEncryption } from '../../src/accounts/tokens/key-encryption.ts';
import { TEST_KEY_ENCRYPTION_KEY } from '../support/key-encryption.ts';
import { createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import pg from 'pg';

const b64 = (value: string | Buffer) => Buffer.from(value).toString('base64url');

/** Builds a JWT from any header and payload, signed (or not) however a test wants. */
export function forge(header: object, payload: object, signer: (input: Buffer) => Buffer | string): string {
  const input = `${b64(JSON.stringify(header))}.${b64(JSON.stringify(payload))}`;
  const signature = signer(Buffer.from(input));
  return `${input}.${typeof signature === 'string' ? signature : b64(signature)}`;
}

export const rs256 = (key: KeyObject) => (input: Buffer) => sign('sha256', input, key);
export const hs256 = (secret: string | Buffer) => (input: Buffer) =>
  createHmac('sha256', secret).update(input).digest();

export function decode(token: string): { header: Record<string, unknown>; payload: Record<string, unknown> } {
  const [h, p] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(h!, 'base64url').toString()),
    payload: JSON.parse(Buffer.from(p!, 'base64url').toString()),
  };
}

/**
 * The system's current signing key (a test plays an insider who has the database and the
 * key-encryption key, and forges claims with them).
 */
export async function signingKey(databaseUrl: string, kid: string): Promise<KeyObject> {
  const client = new pg.Client(databaseUrl);
  await client.connect();
  try {
    const { rows } = await client.query<{ private_pem: string }>(
      'SELECT private_pem FROM signing_keys WHERE kid = $1',
      [kid],
    );
    return createPrivateKey(new KeyEncryption({ value: TEST_KEY_ENCRYPTION_KEY }).open(kid, rows[0]!.private_pem));
  } finally {
    await client.end();
  }
}

/** The PEM text of a public JWK, as an attacker would feed it to an HMAC. */
export const publicPem = (jwk: object) =>
  createPublicKey({ key: jwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string;

export const attackerKeys = () => generateKeyPairSync('rsa', { modulusLength: 2048 });
