import type { FastifyBaseLogger } from 'fastify';
import type { ChatMessage } from '../chat/types.ts';
import { TYPING_SHOWN_MS } from '../chat/signals.ts';
import type { Connection } from './connection.ts';
import type { ServerFrame } from './frames.ts';

/** Reads a room's messages after a seq, in order, at most `limit` (the records: PostgreSQL). */
export type ReadMessages = (roomId: string, after: number, limit: number) => Promise<ChatMessage[]>;

interface Subscriber {
  /** The highest seq this socket has been sent (or had when it subscribed). */
  cursor: number;
  /** False while it catches up; true once it was told `subscribed`. */
  live: boolean;
}

/** Messages read from the records per round of catching up. */
const PAGE = 500;
/** After a failed read, the hub tries again this much later. */
const RETRY_MS = 1_000;
/**
 * How long a message that arrived ahead of a gap waits for the missing ones to come by the bus
 * before the records are read. Concurrent senders on several servers publish in any order, so a
 * gap is usually a message still in flight, not a lost one: waiting a moment saves a read.
 */
const REORDER_WAIT_MS = 10;
/** Messages kept ahead of a gap at most; past that the records are read at once. */
const MAX_EARLY = 1_000;

/**
 * A room as this server sees it: the sockets subscribed here, who is typing, who is online. Every
 * socket gets every message once and in seq order, from one loop (the pump) that reads the records
 * after the lowest cursor; a message that arrives by the bus in order is passed on without a read.
 * The bus only says "something new": a lost or late signal costs a read, never a message.
 */
export class RoomHub {
  readonly #subscribers = new Map<Connection, Subscriber>();
  #pumping = false;
  #closed = false;
  #again = false;
  #retry: NodeJS.Timeout | undefined;
  readonly #typing = new Map<string, number>();
  #typingTimer: NodeJS.Timeout | undefined;
  #online: string[] = [];
  /** Messages that came by the bus ahead of a gap, by seq: delivered once the gap closes. */
  readonly #early = new Map<number, ChatMessage>();
  #gapTimer: NodeJS.Timeout | undefined;
  /** Stops the hub's bus subscription (set by whoever subscribed it). */
  unsubscribe: () => Promise<void> = async () => {};

  constructor(
    readonly roomId: string,
    private readonly read: ReadMessages,
    private readonly log: FastifyBaseLogger,
    /**
     * The stateful design: live messages come only from this server's memory (its own sends, its
     * in-process bus), never from the shared records; those serve a subscriber's catch-up only.
     */
    private readonly island = false,
  ) {}

  get size(): number {
    return this.#subscribers.size;
  }

  get online(): readonly string[] {
    return this.#online;
  }

  /** The lowest seq every socket here has: what the records are read after. */
  get cursor(): number {
    let lowest = Infinity;
    for (const subscriber of this.#subscribers.values()) lowest = Math.min(lowest, subscriber.cursor);
    return lowest === Infinity ? 0 : lowest;
  }

  /** Starts sending the room to `connection`: every message after `after`, then `subscribed`, then live ones. */
  add(connection: Connection, after: number): void {
    const existing = this.#subscribers.get(connection);
    if (existing) existing.live = false; // Subscribing again: answer `subscribed` again.
    this.#subscribers.set(connection, { cursor: existing ? Math.min(existing.cursor, after) : after, live: false });
    this.pump();
  }

  remove(connection: Connection): void {
    this.#subscribers.delete(connection);
    if (this.#subscribers.size === 0) this.close();
  }

  /** A message was stored (here, or elsewhere by the bus): pass it on, or read what is missing. */
  offer(seq: number, message?: ChatMessage): void {
    if (this.#subscribers.size === 0) return;
    if (this.island) {
      if (message) this.#deliverLive(message);
      return;
    }
    if (seq <= this.cursor) return;
    if (!message || this.#early.size >= MAX_EARLY) {
      this.pump(); // A bare wake-up (too large to ride along), or too much out of order: read.
      return;
    }
    this.#early.set(seq, message);
    if (this.#pumping) return; // The pump hands it on after its read.
    this.#deliverEarly();
    if (this.#early.size > 0) this.#awaitGap();
  }

  /** Reads the records after the lowest cursor until every socket has the room's last message. */
  pump(): void {
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    void this.#pumpLoop();
  }

  typing(user: string): void {
    this.#typing.set(user, Date.now() + TYPING_SHOWN_MS);
    this.#sendTyping();
    this.#scheduleTypingExpiry();
  }

  /** Sets who is online; tells every live socket when it changed. */
  setOnline(online: string[]): void {
    if (online.length === this.#online.length && online.every((user, i) => user === this.#online[i])) return;
    this.#online = online;
    this.#broadcast({ type: 'presence', room: this.roomId, online });
  }

  /** True once the last socket left: a closed hub takes no one, the edge opens a new one. */
  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#retry);
    clearTimeout(this.#gapTimer);
    this.#early.clear();
    clearTimeout(this.#typingTimer);
    this.#subscribers.clear();
  }

  async #pumpLoop(): Promise<void> {
    try {
      do {
        this.#again = false;
        if (this.#subscribers.size === 0) break;
        const after = this.cursor;
        const batch = await this.read(this.roomId, after, PAGE);
        for (const message of batch) this.#deliver(message);
        if (batch.length === PAGE) this.#again = true;
        else this.#goLive();
      } while (this.#again);
      this.#deliverEarly();
      if (this.#early.size > 0) this.#awaitGap();
    } catch (err) {
      this.log.warn({ err, roomId: this.roomId }, 'chat room read failed; trying again');
      clearTimeout(this.#retry);
      this.#retry = setTimeout(() => this.pump(), RETRY_MS).unref();
    } finally {
      this.#pumping = false;
    }
  }

  /** Hands on the early messages that are now next for every socket; forgets those already sent. */
  #deliverEarly(): void {
    let cursor = this.cursor;
    for (
      let next = this.#early.get(cursor + 1);
      next && this.#everyoneLiveAt(cursor);
      next = this.#early.get(cursor + 1)
    ) {
      this.#early.delete(cursor + 1);
      this.#deliver(next);
      cursor = next.seq;
    }
    for (const seq of this.#early.keys()) if (seq <= cursor) this.#early.delete(seq);
  }

  /** Gives a gap a moment to close by the bus; then reads the records. */
  #awaitGap(): void {
    this.#gapTimer ??= setTimeout(() => {
      this.#gapTimer = undefined;
      this.#deliverEarly();
      if (this.#early.size > 0) this.pump();
    }, REORDER_WAIT_MS).unref();
  }

  #everyoneLiveAt(seq: number): boolean {
    for (const subscriber of this.#subscribers.values()) {
      if (!subscriber.live || subscriber.cursor !== seq) return false;
    }
    return true;
  }

  /** Sends the message to each socket whose next seq it is: never twice, never out of order. */
  #deliver(message: ChatMessage): void {
    let frame: Buffer | undefined;
    for (const [connection, subscriber] of this.#subscribers) {
      if (message.seq !== subscriber.cursor + 1 || (this.island && subscriber.live)) continue;
      frame ??= this.#frame({ type: 'message', room: this.roomId, message });
      subscriber.cursor = message.seq;
      connection.sendRaw(frame);
    }
    if (this.#typing.delete(message.author)) this.#sendTyping();
  }

  /** An island's live delivery: whatever this server heard of, to its live sockets, in the order heard. */
  #deliverLive(message: ChatMessage): void {
    const frame = this.#frame({ type: 'message', room: this.roomId, message });
    for (const [connection, subscriber] of this.#subscribers) {
      if (!subscriber.live || message.seq <= subscriber.cursor) continue;
      subscriber.cursor = message.seq;
      connection.sendRaw(frame);
    }
    if (this.#typing.delete(message.author)) this.#sendTyping();
  }

  /** Every socket now has the room's last message: those catching up hear `subscribed`, then presence and typing. */
  #goLive(): void {
    for (const [connection, subscriber] of this.#subscribers) {
      if (subscriber.live) continue;
      subscriber.live = true;
      connection.send({ type: 'subscribed', room: this.roomId, lastSeq: subscriber.cursor });
      connection.send({ type: 'presence', room: this.roomId, online: this.#online });
      if (this.#typing.size > 0) connection.send({ type: 'typing', room: this.roomId, users: this.#typingUsers() });
    }
  }

  #typingUsers(): string[] {
    return [...this.#typing.keys()].sort();
  }

  #sendTyping(): void {
    this.#broadcast({ type: 'typing', room: this.roomId, users: this.#typingUsers() });
  }

  #scheduleTypingExpiry(): void {
    clearTimeout(this.#typingTimer);
    if (this.#typing.size === 0) return;
    const next = Math.min(...this.#typing.values());
    this.#typingTimer = setTimeout(
      () => {
        const now = Date.now();
        let changed = false;
        for (const [user, until] of this.#typing) {
          if (until <= now) changed = this.#typing.delete(user) || changed;
        }
        if (changed) this.#sendTyping();
        this.#scheduleTypingExpiry();
      },
      Math.max(0, next - Date.now()),
    ).unref();
  }

  #broadcast(frame: ServerFrame): void {
    let encoded: Buffer | undefined;
    for (const [connection, subscriber] of this.#subscribers) {
      if (subscriber.live) connection.sendRaw((encoded ??= this.#frame(frame)));
    }
  }

  /** A frame encoded once for every socket here (JSON, then UTF-8): nothing is done per socket but the write. */
  #frame(frame: ServerFrame): Buffer {
    return Buffer.from(JSON.stringify(frame));
  }
}
