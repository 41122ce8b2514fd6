import type { FastifyBaseLogger } from 'fastify';
import { presenceField, presenceKey } from '../chat/presence.ts';
import type { HashStore } from '../state/types.ts';

/** How long an idle presence hash lives at all: a room nobody visits forgets it. */
const KEY_TTL_MS = 3_600_000;

/**
 * The presence this server writes: one field per (room, user) with a socket here, renewed by a
 * heartbeat well inside its TTL. Joining and leaving write at once and say so on the bus; a crash
 * writes nothing, and the TTL ends it.
 */
export class PresenceBoard {
  /** room -> username -> sockets of that user in that room on this server */
  readonly #here = new Map<string, Map<string, number>>();

  constructor(
    private readonly hashes: HashStore,
    private readonly serverId: string,
    private readonly ttlMs: number,
    private readonly changed: (roomId: string) => void,
    private readonly log: FastifyBaseLogger,
  ) {}

  /** How often `heartbeat` must run for no field to lapse while its user is here. */
  get heartbeatMs(): number {
    return Math.floor(this.ttlMs / 3);
  }

  async join(roomId: string, username: string): Promise<void> {
    let users = this.#here.get(roomId);
    if (!users) this.#here.set(roomId, (users = new Map()));
    const count = users.get(username) ?? 0;
    users.set(username, count + 1);
    if (count === 0) {
      await this.#mark(roomId, username);
      this.changed(roomId);
    }
  }

  async leave(roomId: string, username: string): Promise<void> {
    const users = this.#here.get(roomId);
    const count = users?.get(username);
    if (!users || count === undefined) return;
    if (count > 1) {
      users.set(username, count - 1);
      return;
    }
    users.delete(username);
    if (users.size === 0) this.#here.delete(roomId);
    await this.hashes.deleteField(presenceKey(roomId), presenceField(username, this.serverId));
    this.changed(roomId);
  }

  /** Renews every field this server holds. */
  async heartbeat(): Promise<void> {
    const writes: Promise<void>[] = [];
    for (const [roomId, users] of this.#here) {
      for (const username of users.keys()) writes.push(this.#mark(roomId, username));
    }
    const failed = (await Promise.allSettled(writes)).filter((r) => r.status === 'rejected').length;
    if (failed > 0) this.log.warn({ failed }, 'presence heartbeat: some marks not renewed');
  }

  /** Takes this server's marks off at a graceful stop, so its users do not linger for a TTL. */
  async clear(): Promise<void> {
    const removals: Promise<unknown>[] = [];
    for (const [roomId, users] of this.#here) {
      for (const username of users.keys()) {
        removals.push(this.hashes.deleteField(presenceKey(roomId), presenceField(username, this.serverId)));
      }
    }
    this.#here.clear();
    await Promise.allSettled(removals);
  }

  #mark(roomId: string, username: string): Promise<void> {
    const expiresAt = Date.now() + this.ttlMs;
    return this.hashes.set(presenceKey(roomId), presenceField(username, this.serverId), String(expiresAt), KEY_TTL_MS);
  }
}
