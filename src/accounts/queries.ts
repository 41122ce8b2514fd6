/**
 * Every SQL statement of accounts (users, refresh tokens, signing keys), in one place (the way
 * pg-boss keeps its statements in plans.ts). Each function returns the whole `pg.QueryConfig`,
 * values included, so a placeholder and the value bound to it read side by side. A `name` makes the
 * statement a prepared one on each connection: names are stable, and every name has exactly one
 * text. Sessions are not here: they live in the session-state store (src/state).
 */
import type pg from 'pg';
import type { JWK } from 'jose';
import { ADVISORY_LOCKS } from '../records/advisory-locks.ts';
import type { UserId } from '../kernel/ids.ts';

/** The NOTIFY channel that tells every server to reload keys after a rotation. */
export const KEYS_CHANNEL = 'statewise_keys';

// --- Users --------------------------------------------------------------------------------------
// Usernames are unique by constraint, so concurrent sign-ups cannot both win.

/** The columns of one user, named as `UserRow` in users.ts. */
const USER = 'id, username, password_hash AS "passwordHash"';

/** The new user; no row when the username is taken. */
export const insertUser = (username: string, passwordHash: string): pg.QueryConfig => ({
  text: `INSERT INTO users (username, password_hash) VALUES ($1, $2)
       ON CONFLICT (username) DO NOTHING RETURNING ${USER}`,
  values: [username, passwordHash],
});

/**
 * A stronger hash of the same password, stored at sign-in; only over the hash that was checked,
 * so a password changed meanwhile is not overwritten.
 */
export const replacePasswordHash = (id: UserId, checked: string, stronger: string): pg.QueryConfig => ({
  text: 'UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2',
  values: [id, checked, stronger],
});

/** Every login and every transfer (by the recipient's name) reads this. */
export const userByUsername = (username: string): pg.QueryConfig => ({
  name: 'users_by_username',
  text: `SELECT ${USER} FROM users WHERE username = $1`,
  values: [username],
});

export const userById = (id: UserId): pg.QueryConfig => ({
  name: 'users_by_id',
  text: `SELECT ${USER} FROM users WHERE id = $1`,
  values: [id],
});

// --- Refresh tokens: only their sha256 is stored ------------------------------------------------

/** A new token in the family, valid for `ttlSeconds`. */
export const insertRefreshToken = (
  tokenHash: string,
  familyId: string,
  userId: UserId,
  ttlSeconds: number,
): pg.QueryConfig => ({
  text: `INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at)
       VALUES ($1, $2, $3, now() + $4 * interval '1 second')`,
  values: [tokenHash, familyId, userId, ttlSeconds],
});

/** The guarded UPDATE is the single-use check: of two concurrent uses, exactly one matches. */
export const useRefreshToken = (tokenHash: string): pg.QueryConfig => ({
  text: `UPDATE refresh_tokens SET used_at = now()
         WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()
         RETURNING family_id, user_id`,
  values: [tokenHash],
});

/** A token the guarded UPDATE refused: unknown, or used already (a replay), or revoked or expired. */
export const refreshTokenByHash = (tokenHash: string): pg.QueryConfig => ({
  text: 'SELECT family_id, user_id, used_at FROM refresh_tokens WHERE token_hash = $1',
  values: [tokenHash],
});

/** A used token presented again: the whole family goes, the newest token included. */
export const revokeFamily = (familyId: string): pg.QueryConfig => ({
  text: 'UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL',
  values: [familyId],
});

export const revokeUserRefreshTokens = (userId: UserId): pg.QueryConfig => ({
  text: 'UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL',
  values: [userId],
});

// --- Signing keys: every change runs under the keys lock, and NOTIFYs at COMMIT ------------------

/** The keys that still verify (expired ones are left out), newest first. */
export const liveSigningKeys = (): pg.QueryConfig => ({
  text: `SELECT kid, private_pem, public_jwk, created_at, retired_at, expires_at FROM signing_keys
       WHERE expires_at IS NULL OR expires_at > now() ORDER BY created_at DESC`,
});

/** A row when some key still signs. */
export const signingKeyExists = (): pg.QueryConfig => ({
  text: 'SELECT 1 FROM signing_keys WHERE retired_at IS NULL',
});

/** Retires the signing key(s): they verify for `verifyForMs` more, then leave the JWKS. */
export const retireSigningKeys = (verifyForMs: number): pg.QueryConfig => ({
  text: `UPDATE signing_keys SET retired_at = now(), expires_at = now() + $1 * interval '1 millisecond'
         WHERE retired_at IS NULL`,
  values: [verifyForMs],
});

/** Expires a key at once: tokens signed with it are refused from now on. */
export const removeSigningKey = (kid: string): pg.QueryConfig => ({
  text: `UPDATE signing_keys SET retired_at = coalesce(retired_at, now()), expires_at = now() WHERE kid = $1`,
  values: [kid],
});

export const insertSigningKey = (
  kid: string,
  alg: string,
  privatePem: string | Buffer,
  publicJwk: JWK,
): pg.QueryConfig => ({
  text: 'INSERT INTO signing_keys (kid, alg, private_pem, public_jwk) VALUES ($1, $2, $3, $4)',
  values: [kid, alg, privatePem, publicJwk],
});

/** Every key's stored private half (sealed or, from before sealing, plain), to seal or reseal. */
export const signingKeySecrets = (): pg.QueryConfig => ({
  text: 'SELECT kid, private_pem FROM signing_keys',
});

export const replaceSigningKeySecret = (kid: string, sealed: string): pg.QueryConfig => ({
  text: 'UPDATE signing_keys SET private_pem = $2 WHERE kid = $1',
  values: [kid, sealed],
});

/** Serialises key changes across every process (app servers and `npm run keys`). */
export const lockSigningKeys = (): pg.QueryConfig => ({
  text: 'SELECT pg_advisory_xact_lock($1)',
  values: [ADVISORY_LOCKS.signingKeys],
});

/** Sent at COMMIT: every server reloads its keys. */
export const notifyKeysChanged = (): pg.QueryConfig => ({ text: `NOTIFY ${KEYS_CHANNEL}` });
