import type { FastifyBaseLogger } from 'fastify';
import type pg from 'pg';
import { AppError } from '../kernel/errors.ts';
import type { UserId } from '../kernel/ids.ts';
import type { Bus, HashStore } from '../state/types.ts';
import * as q from './queries.ts';
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

/** The bus channel the WebSocket edge listens on for a room: a wake-up carrying the new seq. */
export const roomChannel = (roomId: string) => `chat:${roomId}`;
/** The session-state hash of a room's presence: username to expiry (epoch ms). */
export const presenceKey = (roomId: string) => `presence:${roomId}`;

/** Times a send is run again after an identical send (same clientMsgId) won the race. */
const SEND_ATTEMPTS = 3;

/**
 * Chat records in PostgreSQL (rooms, messages with a gapless per-room seq, read marks), presence
 * from session state, and a bus wake-up after each new message.
 */
export class Chat {
  constructor(
    private readonly db: pg.Pool,
    private readonly hashes: HashStore,
    private readonly bus: Bus,
    private readonly log: FastifyBaseLogger,
  ) {}

  async rooms(): Promise<Room[]> {
    const { rows } = await this.db.query<RoomRow>(q.listRooms());
    return rows.map(toRoom);
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
    const query = q.sendMessage({ roomId, authorId: author.userId, clientMsgId, text });
    for (let attempt = 1; ; attempt++) {
      try {
        const { rows } = await this.db.query<MessageRow & { created: boolean }>(query);
        const row = rows[0];
        if (!row) throw noRoom();
        const message = toMessage(row, author.username);
        if (row.created) this.#wake(roomId, message.seq);
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
    return Object.entries(fields)
      .filter(([, expiresAt]) => Number(expiresAt) > now)
      .map(([username]) => username)
      .sort();
  }

  /** The bus is a wake-up, never the truth: a failed publish is logged, the message stays stored. */
  #wake(roomId: string, seq: number): void {
    this.bus
      .publish(roomChannel(roomId), String(seq))
      .catch((err: unknown) => this.log.warn({ err, roomId, seq }, 'chat wake-up not published'));
  }
}
