import { scrypt, timingSafeEqual } from 'node:crypto';
import { hash as argon2Hash, verify as argon2Verify } from '@node-rs/argon2';
import { BoundedGate } from '../kernel/bounded-gate.ts';
import { AppError } from '../kernel/errors.ts';
import { COMMON_PASSWORDS } from './common-passwords.ts';
import { PASSWORD_MIN } from './account-rules.ts';

/**
 * Argon2id with OWASP's parameters (Password Storage Cheat Sheet, first choice): 19 MiB, 2
 * passes, 1 lane. About 13 ms of one core here, against 40 to 80 ms for the scrypt N=2^14 it
 * replaces (and 0.8 s for scrypt at OWASP's N=2^17), so the stronger hash is also the cheaper one.
 */
export const ARGON2ID = {
  /** Algorithm.Argon2id: a const enum of the binding's types, which this build cannot import. */
  algorithm: 2,
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
} as const;

export interface PasswordHashing {
  /** Hashes computed at once (SW_PASSWORD_HASH_CONCURRENCY): each holds 19 MiB while it runs. */
  concurrency: number;
  /** Hashes queued behind those before a new sign-in gets 503 (a burst must not pile up). */
  maxWaiting: number;
}

/** `$argon2id$v=19$m=…,t=…,p=…$salt$hash` (PHC string format): the parameters it was made with. */
function argon2Params(stored: string): { m: number; t: number; p: number } | undefined {
  const match = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/.exec(stored);
  return match ? { m: Number(match[1]), t: Number(match[2]), p: Number(match[3]) } : undefined;
}

/** Hashes of the earlier scheme, `scrypt$N$r$p$salt$hash`: still checked, replaced at sign-in. */
function verifyScrypt(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  const [N, R, P] = [Number(n), Number(r), Number(p)];
  if (scheme !== 'scrypt' || !salt || !hash || ![N, R, P].every(Number.isSafeInteger)) return Promise.resolve(false);
  const expected = Buffer.from(hash, 'base64url');
  // scrypt needs 128 * N * r bytes; node refuses more than maxmem (32 MiB by default).
  const options = { N, r: R, p: P, maxmem: 128 * N * R + 1024 * 1024 };
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFKC'), Buffer.from(salt, 'base64url'), expected.length, options, (error, key) =>
      error ? reject(error) : resolve(key.length === expected.length && timingSafeEqual(key, expected)),
    ),
  );
}

/**
 * Password hashes: new ones Argon2id (@node-rs/argon2, off the event loop), older ones checked
 * with what made them, and `needsRehash` says when a sign-in should store a stronger one. Every
 * hash goes through one gate per process, so a burst of sign-ins queues (boundedly) instead of
 * taking 19 MiB per request at once.
 */
export class PasswordHasher {
  readonly #gate: BoundedGate;
  #decoy: Promise<string> | undefined;

  constructor(options: PasswordHashing) {
    this.#gate = new BoundedGate(
      options.concurrency,
      options.maxWaiting,
      () => new AppError('unavailable', 'Too many sign-ins at once; try again in a second.', { retryAfterSeconds: 1 }),
    );
  }

  hash(password: string): Promise<string> {
    return this.#gate.run(() => argon2Hash(password.normalize('NFKC'), ARGON2ID));
  }

  verify(password: string, stored: string): Promise<boolean> {
    return this.#gate.run(async () => {
      if (stored.startsWith('scrypt$')) return verifyScrypt(password, stored);
      return argon2Verify(stored, password.normalize('NFKC')).catch(() => false);
    });
  }

  /** Made with another scheme or weaker parameters than new hashes get. */
  needsRehash(stored: string): boolean {
    const params = argon2Params(stored);
    return !params || params.m < ARGON2ID.memoryCost || params.t < ARGON2ID.timeCost || params.p < ARGON2ID.parallelism;
  }

  /** A check against a hash of nothing, when the username is unknown: both paths cost the same. */
  async burn(password: string): Promise<void> {
    this.#decoy ??= this.hash('statewise-decoy-password');
    await this.verify(password, await this.#decoy);
  }
}

export function checkPasswordPolicy(password: string, username: string): void {
  if (password.length < PASSWORD_MIN) {
    throw new AppError('invalid_input', `The password must be at least ${PASSWORD_MIN} characters.`);
  }
  const lowered = password.toLowerCase();
  if (COMMON_PASSWORDS.has(lowered)) {
    throw new AppError(
      'invalid_input',
      'That password is one of the most common ones, tried first by attackers; choose another.',
    );
  }
  if (lowered.includes(username)) {
    throw new AppError(
      'invalid_input',
      'The password contains the username, which attackers try first; choose another.',
    );
  }
}
