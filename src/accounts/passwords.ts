import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { AppError } from '../kernel/errors.ts';
import { COMMON_PASSWORDS } from './common-passwords.ts';

/** scrypt cost N=2^14, r=8: ~40 ms and 16 MiB per hash on this 2-core machine. Parameters are stored
 * with each hash, so raising them later only affects new hashes. */
const PARAMS = { N: 2 ** 14, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } satisfies ScryptOptions;
const KEY_LENGTH = 32;

function derive(password: string, salt: Buffer, params: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFKC'), salt, KEY_LENGTH, params, (error, key) =>
      error ? reject(error) : resolve(key),
    ),
  );
}

/** `scrypt$N$r$p$salt$hash`: the parameters travel with the hash so they can be raised later. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, PARAMS);
  return ['scrypt', PARAMS.N, PARAMS.r, PARAMS.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64url');
  const key = await derive(password, Buffer.from(salt, 'base64url'), {
    N: Number(n),
    r: Number(r),
    p: Number(p),
    maxmem: PARAMS.maxmem,
  });
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/** A hash of nothing, checked when the username is unknown so both paths cost the same time. */
let decoy: Promise<string> | undefined;
export async function burnPasswordCheck(password: string): Promise<void> {
  decoy ??= hashPassword('statewise-decoy-password');
  await verifyPassword(password, await decoy);
}

export const USERNAME_PATTERN = '^[a-z0-9_-]{3,32}$';
export const PASSWORD_MIN = 10;
export const PASSWORD_MAX = 200;

export function checkPasswordPolicy(password: string, username: string): void {
  if (password.length < PASSWORD_MIN) {
    throw new AppError('invalid_input', `The password must be at least ${PASSWORD_MIN} characters.`);
  }
  const lowered = password.toLowerCase();
  if (COMMON_PASSWORDS.has(lowered) || lowered.includes(username)) {
    throw new AppError('invalid_input', 'That password is too easy to guess; choose another.');
  }
}
