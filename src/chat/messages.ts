import type { FastifyBaseLogger } from 'fastify';
import type pg from 'pg';
import { AppError } from '../kernel/errors.ts';
import type { UserId } from '../kernel/ids.ts';
import type { Bus, HashStore } from '../state/types.ts';
import * as q from './queries.ts';
import { onlineFrom, presenceKey } from './presence.ts';
import { encodeRoomSignal, roomChannel, USERS_CHANNEL } from './signals.ts';
import type { ChatMessage, Room, UnreadCounts } from './types.ts';

interface RoomRow {
  id: string;
  name: string;
  last_seq: string;
}

interface MessageRow {
  seq: string;
  id: string;
  client_msg_id: string;
  text: string;
  created_at: Date;
}

const toRoom = (row: RoomRow): Room => ({ id: row.id, name: row.name, lastSeq: Number(row.last_seq) });
const toMessage = (row: MessageRow, author: string): ChatMessage => ({
  seq: Number(row.seq),
  id: row.id,
  clientMsgId: row.client_msg_id,
  author,
  text: row.text,
  createdAt: row.created_at.toISOString(),
});

const noRoom = () => new AppError('not_found', 'There is no chat room with that id.');

/** Times a send is run again after an identical send (same clientMsgId) won the race. */
const SEND_ATTEMPTS = 3;

/**
 * Chat records in PostgreSQL (rooms, messages with a gapless per-room seq, read marks), presence
 * from session state, and a bus wake-up after each new message.
 */
export class Chat {
  /** room -> the tail of this server's sends to it, when sends are serialised here (see `island`). */
  readonly #roomTails = new Map<string, Promise<unknown>>();

  constructor(
    private readonly db: pg.Pool,
    private readonly hashes: HashStore,
    private readonly bus: Bus,
    private readonly log: FastifyBaseLogger,
    /**
     * The stateful design: a room's live state is this server's memory, so this server sends to a
     * room one message at a time and its wake-ups go out in seq order (its in-process bus keeps
     * that order; nothing else can restore it, since other servers' seqs are gaps here forever).
     */
    private readonly island = false,
  ) {}

  async rooms(): Promise<Room[]> {
    const { rows } = await this.db.query<RoomRow>(q.listRooms());
    return rows.map(toRoom);
  }

  /** One room, or null when there is none with that id. */
  async room(roomId: string): Promise<Room | null> {
    const { rows } = await this.db.query<RoomRow>(q.getRoom(roomId));
    return rows[0] ? toRoom(rows[0]) : null;
  }

  /** The last seq of each of these rooms (those that exist). */
  async lastSeqs(roomIds: string[]): Promise<Map<string, number>> {
    const { rows } = await this.db.query<RoomRow>(q.getRooms(roomIds));
    return new Map(rows.map((row) => [row.id, Number(row.last_seq)]));
  }

  async createRoom(name: string, createdBy: UserId): Promise<Room> {
    const { rows } = await this.db.query<RoomRow>(q.createRoom(name, createdBy));
    if (!rows[0]) throw new AppError('conflict', `A room named "${name}" exists already.`);
    return toRoom(rows[0]);
  }

  /** Stores the message once per (room, author, clientMsgId); a resend returns the stored one. */
  async send(
    roomId: string,
    author: { userId: UserId; username: string },
    clientMsgId: string,
    text: string,
  ): Promise<{ message: ChatMessage; created: boolean }> {
    if (!this.island) return this.#send(roomId, author, clientMsgId, text);
    const run = (this.#roomTails.get(roomId) ?? Promise.resolve()).then(() =>
      this.#send(roomId, author, clientMsgId, text),
    );
    const tail = run.catch(() => undefined);
    this.#roomTails.set(roomId, tail);
    void tail.then(() => {
      if (this.#roomTails.get(roomId) === tail) this.#roomTails.delete(roomId);
    });
    return run;
  }

  async #send(
    roomId: string,
    author: { userId: UserId; username: string },
    clientMsgId: string,
    text: string,
  ): Promise<{ message: ChatMessage; created: boolean }> {
    const query = q.sendMessage({ roomId, authorId: author.userId, clientMsgId, text });
    for (let attempt = 1; ; attempt++) {
      try {
        const { rows } = await this.db.query<MessageRow & { created: boolean }>(query);
        const row = rows[0];
        if (!row) throw noRoom();
        const message = toMessage(row, author.username);
        if (row.created) this.#wake(roomId, message);
        return { message, created: row.created };
      } catch (error) {
        const e = error as { code?: string; constraint?: string };
        const lostRace = e.code === '23505' && e.constraint === q.CLIENT_MSG_CONSTRAINT;
        if (!lostRace || attempt >= SEND_ATTEMPTS) throw error;
      }
    }
  }

  /** Messages with seq > after, in seq order, at most `limit`. */
  async history(roomId: string, after: number, limit: number): Promise<ChatMessage[]> {
    const { rows } = await this.db.query<{ [K in keyof MessageRow]: MessageRow[K] | null } & { author: string | null }>(
      q.history(roomId, after, limit),
    );
    if (rows.length === 0) throw noRoom();
    return rows.filter((r) => r.seq !== null).map((r) => toMessage(r as MessageRow, r.author!));
  }

  async markRead(userId: UserId, roomId: string, seq: number): Promise<void> {
    const { rowCount } = await this.db.query(q.markRead(userId, roomId, seq));
    if (rowCount === 0) throw noRoom();
    // The user's other devices, on any server, show the new unread counts (a wake-up: best effort).
    this.bus
      .publish(USERS_CHANNEL, JSON.stringify({ k: 'unread', userId }))
      .catch((err: unknown) => this.log.warn({ err, userId }, 'chat read not published'));
  }

  async unread(userId: UserId): Promise<UnreadCounts> {
    const { rows } = await this.db.query<{ id: string; unread: string }>(q.unread(userId));
    return Object.fromEntries(rows.map((r) => [r.id, Number(r.unread)]));
  }

  /** Usernames whose presence has not expired. Empty until the WebSocket edge writes presence. */
  async online(roomId: string, now = Date.now()): Promise<string[]> {
    const [{ rowCount }, fields] = await Promise.all([
      this.db.query(q.roomExists(roomId)),
      this.hashes.getAll(presenceKey(roomId)),
    ]);
    if (rowCount === 0) throw noRoom();
    return onlineFrom(fields, now);
  }

  /**
   * Tells every server's live edge (the message rides along when it fits). The bus is a wake-up,
   * never the truth: a failed publish is logged, the message stays stored, edges fill gaps from it.
   */
  #wake(roomId: string, message: ChatMessage): void {
    this.bus
      .publish(roomChannel(roomId), encodeRoomSignal({ k: 'msg', seq: message.seq, message }))
      .catch((err: unknown) => this.log.warn({ err, roomId, seq: message.seq }, 'chat wake-up not published'));
  }
}
