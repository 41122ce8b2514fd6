import type pg from 'pg';
import type { JWK } from 'jose';
import { everyInterval, reportFailure, type WarnLog } from '../../kernel/periodic.ts';
import type { PgListener } from '../../records/pg-listener.ts';
import type { KeyEncryption } from './key-encryption.ts';
import { KEYS_CHANNEL, SigningKeyTable, type SigningKey } from './signing-keys.ts';

/**
 * This server's copy of the signing keys. Keys are records in PostgreSQL; the copy is reloaded
 * when a rotation NOTIFYs (on the process's shared listener, which reconnects by itself; a
 * reconnect reloads too, since a NOTIFY may have been missed meanwhile), every `refreshMs` as a
 * fallback, and (at most once a second) when a token names a kid we do not know yet.
 */
export class KeyRing {
  #keys: SigningKey[] = [];
  #byKid = new Map<string, SigningKey>();
  #lastUnknownReload = 0;
  #stopPolling: (() => void) | undefined;
  #unlisten: (() => Promise<void>) | undefined;

  private constructor(private readonly table: SigningKeyTable) {}

  static async open(
    db: pg.Pool,
    encryption: KeyEncryption,
    listener: PgListener,
    log: WarnLog,
    refreshMs = 30_000,
  ): Promise<KeyRing> {
    const ring = new KeyRing(new SigningKeyTable(db, encryption));
    await ring.table.ensureOne();
    const reloadNow = () =>
      void ring.reload().catch((error: unknown) => reportFailure('signing key reload', error, log));
    ring.#unlisten = await listener.listen(KEYS_CHANNEL, reloadNow, reloadNow);
    await ring.reload();
    ring.#stopPolling = everyInterval('signing key poll', refreshMs, () => ring.reload(), log);
    return ring;
  }

  async reload(): Promise<void> {
    const keys = await this.table.all();
    this.#keys = keys;
    this.#byKid = new Map(keys.map((k) => [k.kid, k]));
  }

  /** The key new tokens are signed with: the newest one not retired. */
  signer(): SigningKey {
    const key = this.#keys.find((k) => k.retiredAt === null) ?? this.#keys[0];
    if (!key) throw new Error('no signing key');
    return key;
  }

  /** The key for a kid, if it is known and not expired; looks again in the table for a new kid. */
  async verifier(kid: string): Promise<SigningKey | undefined> {
    const key = this.#byKid.get(kid);
    if (key) return key.expiresAt && key.expiresAt.getTime() <= Date.now() ? undefined : key;
    if (Date.now() - this.#lastUnknownReload < 1000) return undefined;
    this.#lastUnknownReload = Date.now();
    await this.reload();
    return this.#byKid.get(kid);
  }

  /** Whether a kid is known and not expired, without looking in the table (the hot path). */
  isLive(kid: string): boolean {
    const key = this.#byKid.get(kid);
    return key !== undefined && (!key.expiresAt || key.expiresAt.getTime() > Date.now());
  }

  jwks(): { keys: JWK[] } {
    const now = Date.now();
    return { keys: this.#keys.filter((k) => !k.expiresAt || k.expiresAt.getTime() > now).map((k) => k.publicJwk) };
  }

  async close(): Promise<void> {
    this.#stopPolling?.();
    await this.#unlisten?.();
  }
}
