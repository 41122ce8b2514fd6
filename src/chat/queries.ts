/**
 * Every SQL statement of the chat, in one place (as the bank's queries.ts). Each function returns
 * the whole `pg.QueryConfig`, values included; a `name` makes it a prepared statement.
 */
import type pg from 'pg';
import type { UserId } from '../kernel/ids.ts';

/** The constraint that makes a resent clientMsgId (same room, same author) the same message. */
export const CLIENT_MSG_CONSTRAINT = 'chat_messages_client_msg';

const ROOM = 'id, name, last_seq';

/** A new room; no row when the name is taken (the unique index chat_rooms_name). */
export const createRoom = (name: string, createdBy: UserId): pg.QueryConfig => ({
  name: 'chat_create_room',
  text: `INSERT INTO chat_rooms (name, created_by) VALUES ($1, $2)
         ON CONFLICT (name) DO NOTHING RETURNING ${ROOM}`,
  values: [name, createdBy],
});

/** Every room, oldest first. */
export const listRooms = (): pg.QueryConfig => ({
  name: 'chat_list_rooms',
  text: `SELECT ${ROOM} FROM chat_rooms ORDER BY created_at, id`,
  values: [],
});

export const getRoom = (roomId: string): pg.QueryConfig => ({
  name: 'chat_get_room',
  text: `SELECT ${ROOM} FROM chat_rooms WHERE id = $1`,
  values: [roomId],
});

export const getRooms = (roomIds: string[]): pg.QueryConfig => ({
  name: 'chat_get_rooms',
  text: `SELECT ${ROOM} FROM chat_rooms WHERE id = ANY($1::uuid[])`,
  values: [roomIds],
});

export const roomExists = (roomId: string): pg.QueryConfig => ({
  name: 'chat_room_exists',
  text: 'SELECT 1 FROM chat_rooms WHERE id = $1',
  values: [roomId],
});

/**
 * Sends a message in ONE statement (one round trip, its own transaction):
 *   - `existing`: the message this author already sent with this clientMsgId, if any;
 *   - `bumped`: only when there is none, the room's seq goes up by one. The UPDATE takes the room's
 *     row lock, so concurrent senders on any server serialise here until this statement commits;
 *   - `inserted`: the message with that seq.
 * A failed insert rolls the increment back with it: no gap. Two identical sends at once both see no
 * `existing` (one snapshot); the second waits for the room lock, then its insert violates
 * chat_messages_client_msg and the whole statement rolls back: the caller runs it again and finds
 * the first one's row. No row at all: the room does not exist.
 */
export const sendMessage = (p: {
  roomId: string;
  authorId: UserId;
  clientMsgId: string;
  text: string;
}): pg.QueryConfig => ({
  name: 'chat_send_message',
  text: `WITH existing AS (
           SELECT seq, id, client_msg_id, text, created_at FROM chat_messages
           WHERE room_id = $1 AND author_id = $2 AND client_msg_id = $3
         ), bumped AS (
           UPDATE chat_rooms SET last_seq = last_seq + 1
           WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM existing)
           RETURNING last_seq
         ), inserted AS (
           INSERT INTO chat_messages (room_id, seq, author_id, client_msg_id, text)
           SELECT $1, last_seq, $2, $3, $4 FROM bumped
           RETURNING seq, id, client_msg_id, text, created_at
         )
         SELECT seq, id, client_msg_id, text, created_at, true AS created FROM inserted
         UNION ALL
         SELECT seq, id, client_msg_id, text, created_at, false AS created FROM existing`,
  values: [p.roomId, p.authorId, p.clientMsgId, p.text],
});

/**
 * The room (always one row when it exists, none when not) joined with its messages after `after`,
 * in seq order, at most `limit`: the message columns are NULL when there is none.
 */
export const history = (roomId: string, after: number, limit: number): pg.QueryConfig => ({
  name: 'chat_history',
  text: `SELECT m.seq, m.id, m.client_msg_id, m.author, m.text, m.created_at
         FROM chat_rooms r
         LEFT JOIN LATERAL (
           SELECT cm.seq, cm.id, cm.client_msg_id, u.username AS author, cm.text, cm.created_at
           FROM chat_messages cm JOIN users u ON u.id = cm.author_id
           WHERE cm.room_id = r.id AND cm.seq > $2
           ORDER BY cm.seq LIMIT $3
         ) m ON true
         WHERE r.id = $1
         ORDER BY m.seq`,
  values: [roomId, after, limit],
});

/**
 * Records that the user has read up to `seq` (at most the room's last seq, so unread never goes
 * below zero); never moves backwards. No row when the room does not exist.
 */
export const markRead = (userId: UserId, roomId: string, seq: number): pg.QueryConfig => ({
  name: 'chat_mark_read',
  text: `INSERT INTO chat_reads (user_id, room_id, last_read_seq)
         SELECT $1, id, LEAST($3::bigint, last_seq) FROM chat_rooms WHERE id = $2
         ON CONFLICT (user_id, room_id) DO UPDATE
           SET last_read_seq = GREATEST(chat_reads.last_read_seq, EXCLUDED.last_read_seq),
               updated_at = clock_timestamp()
         RETURNING last_read_seq`,
  values: [userId, roomId, seq],
});

/** Every room with the user's unread count (all its messages when the user read none). */
export const unread = (userId: UserId): pg.QueryConfig => ({
  name: 'chat_unread',
  text: `SELECT r.id, r.last_seq - COALESCE(cr.last_read_seq, 0) AS unread
         FROM chat_rooms r
         LEFT JOIN chat_reads cr ON cr.room_id = r.id AND cr.user_id = $1`,
  values: [userId],
});
