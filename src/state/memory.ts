import { EventEmitter } from 'node:events';
import type {
  Bus,
  BusHandler,
  HashStore,
  KeyStore,
  SessionId,
  SessionRecord,
  SessionStore,
  StateStore,
  UserId,
} from './types.ts';

interface Expiring<T> {
  value: T;
  /** Epoch ms; Infinity for no TTL. */
  expiresAt: number;
}

/** A Map whose entries expire: checked on every read, swept now and then so memory is returned. */
class ExpiringMap<T> {
  readonly #entries = new Map<string, Expiring<T>>();

  get(key: string, now = Date.now()): T | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= now) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key: string, value: T, ttlMs?: number): void {
    this.#entries.set(key, { value, expiresAt: ttlMs === undefined ? Infinity : Date.now() + ttlMs });
  }

  expire(key: string, ttlMs: number): boolean {
    const entry = this.#entries.get(key);
    if (!entry || entry.expiresAt <= Date.now()) return false;
    entry.expiresAt = Date.now() + ttlMs;
    return true;
  }

  remainingMs(key: string): number {
    const entry = this.#entries.get(key);
    return entry ? entry.expiresAt - Date.now() : 0;
  }

  delete(key: string): boolean {
    return this.#entries.delete(key);
  }

  /** Entries not yet expired. */
  countLive(now = Date.now()): number {
    let live = 0;
    for (const entry of this.#entries.values()) if (entry.expiresAt > now) live++;
    return live;
  }

  sweep(now = Date.now()): void {
    for (const [key, entry] of this.#entries) if (entry.expiresAt <= now) this.#entries.delete(key);
  }
}

class MemorySessions implements SessionStore {
  readonly sessions = new ExpiringMap<SessionRecord>();
  readonly #byUser = new Map<string, Set<SessionId>>();

  async create(session: SessionRecord, idleTtlMs: number): Promise<void> {
    this.sessions.set(session.id, { ...session }, idleTtlMs);
    if (session.userId) {
      let ids = this.#byUser.get(session.userId);
      if (!ids) this.#byUser.set(session.userId, (ids = new Set()));
      ids.add(session.id);
    }
  }

  async get(id: SessionId): Promise<SessionRecord | null> {
    const session = this.sessions.get(id);
    return session ? { ...session } : null;
  }

  async touch(id: SessionId, lastSeenAt: number, idleTtlMs: number): Promise<boolean> {
    const session = this.sessions.get(id);
    if (!session) return false;
    session.lastSeenAt = lastSeenAt;
    return this.sessions.expire(id, idleTtlMs);
  }

  async destroy(id: SessionId): Promise<boolean> {
    const session = this.sessions.get(id);
    if (session?.userId) this.#byUser.get(session.userId)?.delete(id);
    return this.sessions.delete(id) && session !== undefined;
  }

  async listByUser(userId: UserId): Promise<SessionRecord[]> {
    const ids = this.#byUser.get(userId);
    if (!ids) return [];
    const live: SessionRecord[] = [];
    for (const id of ids) {
      const session = this.sessions.get(id);
      if (session) live.push({ ...session });
      else ids.delete(id);
    }
    return live.sort((a, b) => a.createdAt - b.createdAt);
  }

  async destroyByUser(userId: UserId): Promise<number> {
    const ids = this.#byUser.get(userId);
    let removed = 0;
    for (const id of ids ?? []) if (this.sessions.get(id) && this.sessions.delete(id)) removed++;
    this.#byUser.delete(userId);
    return removed;
  }

  sweep(): void {
    this.sessions.sweep();
    for (const [userId, ids] of this.#byUser) {
      for (const id of ids) if (!this.sessions.get(id)) ids.delete(id);
      if (ids.size === 0) this.#byUser.delete(userId);
    }
  }
}

class MemoryHashes implements HashStore {
  readonly hashes = new ExpiringMap<Map<string, string>>();

  #hash(key: string, ttlMs?: number): Map<string, string> {
    let hash = this.hashes.get(key);
    if (!hash) this.hashes.set(key, (hash = new Map()), ttlMs);
    else if (ttlMs !== undefined) this.hashes.expire(key, ttlMs);
    return hash;
  }

  async getAll(key: string): Promise<Record<string, string>> {
    return Object.fromEntries(this.hashes.get(key) ?? []);
  }

  #incr(key: string, field: string, by: number, ttlMs?: number): { value: number; hash: Map<string, string> } {
    const hash = this.#hash(key, ttlMs);
    const value = Number(hash.get(field) ?? 0) + by;
    hash.set(field, String(value));
    return { value, hash };
  }

  async incrBy(key: string, field: string, by: number, ttlMs?: number): Promise<number> {
    return this.#incr(key, field, by, ttlMs).value;
  }

  async incrByAndGetAll(key: string, field: string, by: number, ttlMs?: number) {
    // Synchronous from increment to copy: an await in between would let other requests run.
    const { value, hash } = this.#incr(key, field, by, ttlMs);
    return { value, fields: Object.fromEntries(hash) };
  }

  async set(key: string, field: string, value: string, ttlMs?: number): Promise<void> {
    this.#hash(key, ttlMs).set(field, value);
  }

  async deleteField(key: string, field: string): Promise<boolean> {
    const hash = this.hashes.get(key);
    if (!hash) return false;
    const existed = hash.delete(field);
    if (hash.size === 0) this.hashes.delete(key);
    return existed;
  }

  async delete(key: string): Promise<void> {
    this.hashes.delete(key);
  }
}

class MemoryKeys implements KeyStore {
  readonly keys = new ExpiringMap<string>();

  async get(key: string): Promise<string | null> {
    return this.keys.get(key) ?? null;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.keys.set(key, value, ttlMs);
  }

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    if (this.keys.get(key) !== undefined) return false;
    this.keys.set(key, value, ttlMs);
    return true;
  }

  async delete(key: string): Promise<boolean> {
    return this.keys.get(key) !== undefined && this.keys.delete(key);
  }

  async hit(key: string, windowMs: number): Promise<{ count: number; resetInMs: number }> {
    const current = this.keys.get(key);
    if (current === undefined) {
      this.keys.set(key, '1', windowMs);
      return { count: 1, resetInMs: windowMs };
    }
    const count = Number(current) + 1;
    const resetInMs = this.keys.remainingMs(key);
    this.keys.set(key, String(count), resetInMs);
    return { count, resetInMs };
  }
}

/** In-process delivery: a server's bus reaches only itself, as in the stateful design. */
class MemoryBus implements Bus {
  readonly #emitter = new EventEmitter().setMaxListeners(0);

  async publish(channel: string, message: string): Promise<void> {
    setImmediate(() => this.#emitter.emit(channel, message));
  }

  async subscribe(channel: string, handler: BusHandler): Promise<() => Promise<void>> {
    this.#emitter.on(channel, handler);
    return async () => void this.#emitter.off(channel, handler);
  }

  /** An in-process bus has no connection to lose. */
  onReconnect(): () => void {
    return () => {};
  }
}

/**
 * Session state in this process's memory: the stateful design. Fast, and gone with the process;
 * other servers never see it. Every operation completes in one tick, so each is atomic.
 */
export function createMemoryState(options: { sweepEveryMs?: number } = {}): StateStore {
  const sessions = new MemorySessions();
  const hashes = new MemoryHashes();
  const keys = new MemoryKeys();
  const sweeper = setInterval(() => {
    sessions.sweep();
    hashes.hashes.sweep();
    keys.keys.sweep();
  }, options.sweepEveryMs ?? 30_000);
  sweeper.unref();
  return {
    kind: 'memory',
    sessions,
    hashes,
    keys,
    bus: new MemoryBus(),
    sessionsInMemory: () => sessions.sessions.countLive(),
    // Already in this process's memory: there is nothing nearer to cache it in.
    nearCacheStats: () => null,
    async ping() {},
    async close() {
      clearInterval(sweeper);
    },
  };
}
