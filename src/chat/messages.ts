import type { FastifyBaseLogger } from 'fastify';
import type pg from 'pg';
import { AppError } from '../kernel/errors.ts';
import { roomName } from './room-names.ts';
import type { UserId } from '../kernel/ids.ts';
import type { Bus, HashStore } from '../state/types.ts';
import * as q from './queries.ts';
import { onlineFrom, presenceKey } from './presence.ts';
import { GroupCommit, type SendOutcome, type SendRequest } from './group-commit.ts';
import { PG_BUS_CHANNEL } from '../state/postgres-bus.ts';
import { encodeMessagesSignals, roomChannel, USERS_CHANNEL } from './signals.ts';
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

/** Times a batch is run again after an identical send (same clientMsgId) on another server won the race. */
const SEND_ATTEMPTS = 3;

/** SQLSTATE classes of errors that one message of a batch can cause (bad data, a constraint). */
const MESSAGE_ERROR = /^2[23]/;

type Sender = { userId: UserId; username: string };

/**
 * Chat records in PostgreSQL (rooms, messages with a gapless per-room seq, read marks), presence
 * from session state, and a bus wake-up after each new message. Sends are stored in batches (group
 * commit, group-commit.ts): one statement for whatever this server was asked meanwhile.
 */
export class Chat {
  /**
   * One lane for every room: measured on the bench, a batch per room stays at one message (no
   * saving), while one batch across rooms stores many per statement. The price: the servers'
   * batches share rooms, so each waits for the others' commit (see bench/results/chat-delivery.md).
   */
  readonly #sends = new GroupCommit<ChatMessage>(
    (sends) => this.#store(sends),
    () => 'all rooms',
  );

  constructor(
    private readonly db: pg.Pool,
    private readonly hashes: HashStore,
    private readonly bus: Bus,
    private readonly log: FastifyBaseLogger,
    /**
     * With the postgres bus the wake-ups are NOTIFYs of the batch's own transaction (sendMessages),
     * not a publish after it: no transaction of their own, and heard in commit order (seq order).
     */
    private readonly notifyInTransaction = false,
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

  /** A new room; `invalid_input` for a name no one could tell apart, `conflict` when it is taken. */
  async createRoom(rawName: string, createdBy: UserId): Promise<Room> {
    const { name, key } = roomName(rawName);
    const { rows } = await this.db.query<RoomRow>(q.createRoom(name, key, createdBy));
    if (rows[0]) return toRoom(rows[0]);
    const taken = (await this.db.query<RoomRow>(q.roomByNameKey(key))).rows[0]?.name ?? name;
    throw new AppError('conflict', `A room named "${taken}" exists already.`);
  }

  /**
   * Stores the message once per (room, author, clientMsgId); a resend returns the stored one.
   * Resolves only once the message is committed.
   */
  send(
    roomId: string,
    author: Sender,
    clientMsgId: string,
    text: string,
  ): Promise<{ message: ChatMessage; created: boolean }> {
    return this.#sends.send({ roomId, author, clientMsgId, text });
  }

  /** One batch: stored in one statement; when a message breaks it, each is then tried alone, so it fails alone. */
  async #store(sends: SendRequest[]): Promise<SendOutcome<ChatMessage>[]> {
    try {
      return await this.#storeTogether(sends);
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (sends.length === 1 || !code || !MESSAGE_ERROR.test(code)) throw error;
      // One after the other: a room's seqs still follow the order the sends were asked in.
      const outcomes: SendOutcome<ChatMessage>[] = [];
      for (const send of sends) {
        outcomes.push(
          await this.#storeTogether([send]).then(
            ([outcome]) => outcome!,
            (err: unknown) => ({ error: err }),
          ),
        );
      }
      return outcomes;
    }
  }

  async #storeTogether(sends: SendRequest[]): Promise<SendOutcome<ChatMessage>[]> {
    const notifyChannel = this.notifyInTransaction ? PG_BUS_CHANNEL : null;
    const [one] = sends;
    // A batch of one (a room's usual batch until it gets busy) takes the simpler statement.
    const query =
      sends.length === 1
        ? q.sendMessage({ ...one!, authorId: one!.author.userId, author: one!.author.username, notifyChannel })
        : q.sendMessages({
            roomIds: sends.map((s) => s.roomId),
            authorIds: sends.map((s) => s.author.userId),
            clientMsgIds: sends.map((s) => s.clientMsgId),
            texts: sends.map((s) => s.text),
            authors: sends.map((s) => s.author.username),
            notifyChannel,
          });
    for (let attempt = 1; ; attempt++) {
      try {
        const { rows } = await this.db.query<MessageRow & { ord: string; created: boolean }>(query);
        const outcomes: (SendOutcome<ChatMessage> | undefined)[] = new Array(sends.length);
        for (const row of rows) {
          const i = Number(row.ord) - 1;
          outcomes[i] = { message: toMessage(row, sends[i]!.author.username), created: row.created };
        }
        // No row: the room does not exist.
        for (let i = 0; i < outcomes.length; i++) outcomes[i] ??= { error: noRoom() };
        const stored = outcomes as SendOutcome<ChatMessage>[];
        if (!this.notifyInTransaction) this.#wake(sends, stored);
        return stored;
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
   * Tells every server's live edge: one publish per room of the batch (more when they do not fit
   * one bus payload), its new messages riding along in seq order. The bus is a wake-up, never the
   * truth: a failed publish is logged, the messages stay stored, edges fill gaps from them.
   */
  #wake(sends: SendRequest[], outcomes: SendOutcome<ChatMessage>[]): void {
    const byRoom = new Map<string, ChatMessage[]>();
    outcomes.forEach((outcome, i) => {
      if ('error' in outcome || !outcome.created) return;
      const roomId = sends[i]!.roomId;
      let messages = byRoom.get(roomId);
      if (!messages) byRoom.set(roomId, (messages = []));
      messages.push(outcome.message);
    });
    for (const [roomId, messages] of byRoom) {
      const seq = messages[messages.length - 1]!.seq;
      for (const signal of encodeMessagesSignals(messages)) {
        this.bus
          .publish(roomChannel(roomId), signal)
          .catch((err: unknown) => this.log.warn({ err, roomId, seq }, 'chat wake-up not published'));
      }
    }
  }
}
