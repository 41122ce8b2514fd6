/**
 * The session-state layer: one interface, three backends (memory, postgres, redis).
 *
 * Session state is what the articles call "state": login sessions, carts, presence,
 * rate limits, the bus between servers. Records (users, ledger, orders, messages) never live
 * here; they are in PostgreSQL (src/records).
 *
 * Every mutation is a single atomic operation of the backend (HINCRBY, UPDATE ... SET x = x + $1,
 * a Map write in one tick), never a read-modify-write of a whole object, so concurrent requests
 * on different servers never lose each other's updates.
 */

import type { SessionId, UserId } from '../kernel/ids.ts';
import type { NearCacheStats } from './near-cache/near-cache.ts';

// The state layer's own files name the ids through this module.
export type { SessionId, UserId } from '../kernel/ids.ts';

export type StoreKind = 'memory' | 'postgres' | 'redis';

export interface SessionRecord {
  id: SessionId;
  /** null for a visitor (a cart before sign-in). */
  userId: UserId | null;
  username: string | null;
  /** Epoch milliseconds. */
  createdAt: number;
  lastSeenAt: number;
  /** The absolute end of the session, whatever its activity. */
  absoluteExpiresAt: number;
  userAgent: string;
}

export interface SessionStore {
  /** Stores a new session that expires after `idleTtlMs` without a touch. */
  create(session: SessionRecord, idleTtlMs: number): Promise<void>;
  /** The session, or null when unknown or expired. */
  get(id: SessionId): Promise<SessionRecord | null>;
  /** Records activity: sets lastSeenAt and extends the idle expiry. False when the session is gone. */
  touch(id: SessionId, lastSeenAt: number, idleTtlMs: number): Promise<boolean>;
  /** True when a session was removed. */
  destroy(id: SessionId): Promise<boolean>;
  /** The live sessions of a user, oldest first. */
  listByUser(userId: UserId): Promise<SessionRecord[]>;
  /** Removes every session of the user; returns how many were removed. */
  destroyByUser(userId: UserId): Promise<number>;
}

/**
 * Hashes of integer or string fields under one key, changed one field at a time.
 * A TTL, when given, applies to the whole key and is renewed by every write.
 */
export interface HashStore {
  getAll(key: string): Promise<Record<string, string>>;
  /** Atomically adds `by` to an integer field (missing = 0) and returns the new value. */
  incrBy(key: string, field: string, by: number, ttlMs?: number): Promise<number>;
  /**
   * incrBy, and the whole hash as it is right after, in one atomic step and one round trip: for a
   * caller that answers with the hash it changed (a cart).
   */
  incrByAndGetAll(
    key: string,
    field: string,
    by: number,
    ttlMs?: number,
  ): Promise<{ value: number; fields: Record<string, string> }>;
  set(key: string, field: string, value: string, ttlMs?: number): Promise<void>;
  /** Removes one field; true when it existed. */
  deleteField(key: string, field: string): Promise<boolean>;
  /** Removes the whole key. */
  delete(key: string): Promise<void>;
}

/** Single values with a time to live: counters, locks, markers. */
export interface KeyStore {
  get(key: string): Promise<string | null>;
  set(key: string, value: string, ttlMs: number): Promise<void>;
  /** Sets only when the key is absent (or expired); true when it was set. */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;
  delete(key: string): Promise<boolean>;
  /**
   * Fixed-window counter: adds 1, starting a window of `windowMs` when the key is new or expired.
   * Returns the count in the current window and the milliseconds until the window ends.
   */
  hit(key: string, windowMs: number): Promise<{ count: number; resetInMs: number }>;
}

/** A message between servers. The bus is a wake-up, never the truth: delivery is at most once. */
export type BusHandler = (message: string) => void;

export interface Bus {
  publish(channel: string, message: string): Promise<void>;
  /** Starts delivering messages of `channel` to `handler`; resolves once subscribed. */
  subscribe(channel: string, handler: BusHandler): Promise<() => Promise<void>>;
  /**
   * Calls `handler` each time the bus's connection came back after a drop: whatever was published
   * meanwhile is lost, so a listener reads the truth again. Returns a function that stops the calls.
   */
  onReconnect(handler: () => void): () => void;
}

export interface StateStore {
  readonly kind: StoreKind;
  readonly sessions: SessionStore;
  readonly hashes: HashStore;
  readonly keys: KeyStore;
  readonly bus: Bus;
  /**
   * Live sessions held in this process's memory: what its SIGKILL loses (the memory store). Null
   * when sessions live in a shared store, where a server's death loses none.
   */
  sessionsInMemory(): number | null;
  /** Hits and misses of this server's near cache of shared state; null when it has none. */
  nearCacheStats(): NearCacheStats | null;
  /** Throws when the backend cannot be reached (used by /readyz). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
