import pg from 'pg';
import type { JWK } from 'jose';
import { KEYS_CHANNEL, SigningKeyTable, type SigningKey } from './signing-keys.ts';

/**
 * This server's copy of the signing keys. Keys are records in PostgreSQL; the copy is reloaded
 * when a rotation NOTIFYs, every `refreshMs` as a fallback, and (at most once a second) when a
 * token names a kid we do not know yet.
 */
export class KeyRing {
  #keys: SigningKey[] = [];
  #byKid = new Map<string, SigningKey>();
  #lastUnknownReload = 0;
  #timer: NodeJS.Timeout | undefined;
  #listener: pg.Client | undefined;
  #closed = false;

  private constructor(
    private readonly table: SigningKeyTable,
    private readonly databaseUrl: string,
  ) {}

  static async open(db: pg.Pool, databaseUrl: string, refreshMs = 30_000): Promise<KeyRing> {
    const ring = new KeyRing(new SigningKeyTable(db), databaseUrl);
    await ring.table.ensureOne();
    await ring.reload();
    ring.#timer = setInterval(() => void ring.reload().catch(() => {}), refreshMs);
    ring.#timer.unref();
    await ring.#listen();
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
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#listener?.end().catch(() => {});
  }

  async #listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.databaseUrl });
    client.on('notification', () => void this.reload().catch(() => {}));
    client.on('error', () => {
      // Lost the listener: reconnect; the timer keeps the keys fresh meanwhile.
      if (!this.#closed) setTimeout(() => void this.#listen().catch(() => {}), 1000).unref();
    });
    await client.connect();
    await client.query(`LISTEN ${KEYS_CHANNEL}`);
    this.#listener = client;
  }
}
