import { randomUUID, sign, verify } from 'node:crypto';
import { AppError } from '../../kernel/errors.ts';
import type { HashStore } from '../../state/types.ts';
import type { UserId } from '../../kernel/ids.ts';
import type { AccessTokenVerifier, VerifiedToken } from '../authenticate.ts';
import type { KeyRing } from './key-ring.ts';
import { ALGORITHM } from './signing-keys.ts';

export interface AccessTokenPolicy {
  issuer: string;
  audience: string;
  ttlSeconds: number;
}

interface Claims {
  iss: string;
  aud: string | string[];
  sub: string;
  name: string;
  iat: number;
  exp: number;
  nbf?: number;
  jti: string;
  /** The user's token generation when it was issued (absent: 0). See revokeAllForUser. */
  gen?: number;
  /** The sign-in it belongs to: the family of its refresh tokens. See revokeSignIn. */
  sid?: string;
}

const CLOCK_SKEW_SECONDS = 60;
const CACHE_LIMIT = 10_000;
const b64url = (value: string | Buffer) => Buffer.from(value).toString('base64url');
const signInField = (signIn: string) => `signin:${signIn}`;
const invalid = (why: string) => new AppError('invalid_token', `The access token is not valid: ${why}.`);

/**
 * Where a user's token revocations live, one hash per user read once per verification: field `gen`
 * counts their "log out everywhere"s (revokeAllForUser), and `signin:<id>` marks a sign-in that
 * logged out (revokeSignIn).
 */
export const TOKEN_GENERATION_PREFIX = 'token-generation:';
export const tokenGenerationKey = (userId: string) => `${TOKEN_GENERATION_PREFIX}${userId}`;

/**
 * RS256 access tokens, signed and verified with node:crypto. Verification is strict: one allowed
 * algorithm (never `none`, never an HMAC keyed with a public key), a known kid, `jku`/`x5u`/`jwk`
 * headers ignored, 60 s of clock skew at most. A token whose signature was checked once is kept in
 * a bounded cache (keyed by the whole token, signature included), so repeat requests skip the RSA
 * work; claims are still checked on every request, and so is revocation: one store read.
 */
export class AccessTokens implements AccessTokenVerifier {
  /** Tokens whose signature was checked, with the kid that signed them. */
  readonly #verified = new Map<string, { claims: Claims; kid: string }>();

  constructor(
    private readonly keys: KeyRing,
    private readonly revocations: HashStore,
    private readonly policy: AccessTokenPolicy,
  ) {}

  /** A token of `signIn` (the family of the refresh token issued beside it). */
  async issue(user: { id: UserId; username: string }, signIn: string): Promise<{ token: string; expiresIn: number }> {
    const gen = await this.#generation(user.id);
    const key = this.keys.signer();
    const now = Math.floor(Date.now() / 1000);
    const claims: Claims = {
      iss: this.policy.issuer,
      aud: this.policy.audience,
      sub: user.id,
      name: user.username,
      iat: now,
      exp: now + this.policy.ttlSeconds,
      jti: randomUUID(),
      gen,
      sid: signIn,
    };
    const input = `${b64url(JSON.stringify({ alg: ALGORITHM, typ: 'JWT', kid: key.kid }))}.${b64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(input), key.privateKey);
    return { token: `${input}.${b64url(signature)}`, expiresIn: this.policy.ttlSeconds };
  }

  async verify(token: string): Promise<VerifiedToken> {
    let entry = this.#verified.get(token);
    // A cached signature counts only while its key does: a removed key ends its tokens at once.
    if (entry && !this.keys.isLive(entry.kid)) {
      this.#verified.delete(token);
      entry = undefined;
    }
    if (!entry) {
      entry = await this.#verifySignature(token);
      if (this.#verified.size >= CACHE_LIMIT) this.#verified.delete(this.#verified.keys().next().value!);
      this.#verified.set(token, entry);
    }
    const { claims } = entry;
    this.#checkClaims(claims);
    const signIn = claims.sid ?? claims.jti;
    const revoked = await this.revocations.getAll(tokenGenerationKey(claims.sub));
    if ((claims.gen ?? 0) < Number(revoked.gen ?? 0)) throw invalid('it was revoked (log out everywhere)');
    if (revoked[signInField(signIn)] !== undefined) throw invalid('its sign-in was logged out');
    return { userId: claims.sub as UserId, username: claims.name, tokenId: claims.jti, signIn };
  }

  /**
   * "Log out everywhere" for access tokens: the user's generation goes up by one, and a token
   * carrying an older one is refused. A counter, not a time: a token issued in the same second as
   * the logout, or by a server whose clock is behind, is judged by what it carries, exactly.
   * The counter lives as long as the longest token it must refuse; once it expires (0 again),
   * every token it refused has expired too, and newer ones carry a generation >= 0.
   */
  async revokeAllForUser(userId: UserId): Promise<void> {
    await this.revocations.incrBy(tokenGenerationKey(userId), 'gen', 1, this.#revocationTtlMs());
  }

  /**
   * "Log out" for a token client: every access token of this sign-in is refused from now on, the
   * ones issued by its refreshes too. The mark lives as long as the longest of them could.
   */
  async revokeSignIn(userId: UserId, signIn: string): Promise<void> {
    await this.revocations.set(tokenGenerationKey(userId), signInField(signIn), '1', this.#revocationTtlMs());
  }

  #revocationTtlMs(): number {
    return (this.policy.ttlSeconds + CLOCK_SKEW_SECONDS * 2) * 1000;
  }

  async #generation(userId: string): Promise<number> {
    const fields = await this.revocations.getAll(tokenGenerationKey(userId));
    return Number(fields.gen ?? 0);
  }

  async #verifySignature(token: string): Promise<{ claims: Claims; kid: string }> {
    if (token.length > 4096) throw invalid('too long');
    const parts = token.split('.');
    if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p))) throw invalid('malformed');
    const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
    const header = parseJson(headerPart) as { alg?: unknown; kid?: unknown; crit?: unknown };
    if (header.alg !== ALGORITHM) throw invalid(`algorithm ${String(header.alg)} is not accepted`);
    if (header.crit !== undefined) throw invalid('unsupported critical header');
    if (typeof header.kid !== 'string') throw invalid('no key id');
    const key = await this.keys.verifier(header.kid);
    if (!key) throw invalid('unknown key id');
    const ok = verify(
      'sha256',
      Buffer.from(`${headerPart}.${payloadPart}`),
      key.publicKey,
      Buffer.from(signaturePart, 'base64url'),
    );
    if (!ok) throw invalid('bad signature');
    const claims = parseJson(payloadPart) as Partial<Claims>;
    for (const field of ['iss', 'sub', 'name', 'jti'] as const) {
      if (typeof claims[field] !== 'string') throw invalid(`claim ${field} missing`);
    }
    for (const field of ['iat', 'exp'] as const) {
      if (typeof claims[field] !== 'number') throw invalid(`claim ${field} missing`);
    }
    if (claims.nbf !== undefined && typeof claims.nbf !== 'number') throw invalid('claim nbf malformed');
    if (claims.gen !== undefined && !Number.isSafeInteger(claims.gen)) throw invalid('claim gen malformed');
    if (claims.iss !== this.policy.issuer) throw invalid('wrong issuer');
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!audiences.includes(this.policy.audience)) throw invalid('wrong audience');
    return { claims: claims as Claims, kid: header.kid };
  }

  #checkClaims(claims: Claims): void {
    const now = Date.now() / 1000;
    if (now >= claims.exp + CLOCK_SKEW_SECONDS) throw invalid('expired');
    if (claims.nbf !== undefined && now < claims.nbf - CLOCK_SKEW_SECONDS) throw invalid('not valid yet');
    if (claims.iat > now + CLOCK_SKEW_SECONDS) throw invalid('issued in the future');
    if (claims.exp - claims.iat > this.policy.ttlSeconds + CLOCK_SKEW_SECONDS) throw invalid('lifetime too long');
  }
}

function parseJson(part: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // Fall through to the same answer as any other malformed token.
  }
  throw invalid('malformed');
}
