/**
 * Every SQL statement of the chat, in one place (as the bank's queries.ts). Each function returns
 * the whole `pg.QueryConfig`, values included; a `name` makes it a prepared statement.
 */
import type pg from 'pg';
import type { UserId } from '../kernel/ids.ts';

/** The constraint that makes a resent clientMsgId (same room, same author) the same message. */
export const CLIENT_MSG_CONSTRAINT = 'chat_messages_client_msg';

const ROOM = 'id, name, last_seq';

/** A new room; no row when a room with this name key exists (the unique index chat_rooms_name_key). */
export const createRoom = (name: string, nameKey: string, createdBy: UserId): pg.QueryConfig => ({
  name: 'chat_create_room',
  text: `INSERT INTO chat_rooms (name, name_key, created_by) VALUES ($1, $2, $3)
         ON CONFLICT (name_key) DO NOTHING RETURNING ${ROOM}`,
  values: [name, nameKey, createdBy],
});

/** The room that holds this name key. */
export const roomByNameKey = (nameKey: string): pg.QueryConfig => ({
  name: 'chat_room_by_name_key',
  text: `SELECT ${ROOM} FROM chat_rooms WHERE name_key = $1`,
  values: [nameKey],
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

/** The postgres bus's NOTIFY payload ({c, m}: postgres-bus.ts) of a new message on roomChannel(room_id) (signals.ts); rows with room_id, seq, id, client_msg_id, author, text, created_at. */
const NOTIFY_PAYLOAD = `json_build_object('c', 'chat:' || room_id, 'm', json_build_object('k', 'msg', 'seq', seq,
    'message', json_build_object('seq', seq, 'id', id, 'clientMsgId', client_msg_id, 'author', author, 'text', text,
      'createdAt', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')))::text)::text`;
/** The same when that is too large for a NOTIFY (8000 bytes): the seq alone, receivers read the records. */
const NOTIFY_BARE = `json_build_object('c', 'chat:' || room_id, 'm', json_build_object('k', 'msg', 'seq', seq)::text)::text`;
const notify = (channel: string, rows: string) =>
  `SELECT count(pg_notify(${channel}, CASE WHEN octet_length(payload) <= 7900 THEN payload ELSE bare END))
   FROM (SELECT ${NOTIFY_PAYLOAD} AS payload, ${NOTIFY_BARE} AS bare FROM ${rows}) notifications`;

/**
 * Sends ONE message in one statement (the usual batch: cheaper to plan and run than sendMessages):
 *   - `existing`: the message this author already sent with this clientMsgId, if any;
 *   - `bumped`: only when there is none, the room's seq goes up by one. The UPDATE takes the room's
 *     row lock, so concurrent senders on any server serialise here until this statement commits;
 *   - `inserted`: the message with that seq; `notified`: its wake-up, as in sendMessages.
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
  author: string;
  notifyChannel: string | null;
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
           INSERT INTO chat_messages (room_id, seq, author_id, client_msg_id, text, created_at)
           SELECT $1, last_seq, $2, $3, $4, date_trunc('milliseconds', clock_timestamp()) FROM bumped
           RETURNING room_id, seq, id, client_msg_id, text, created_at, $5::text AS author
         ), notified AS (
           ${notify('$6', 'inserted WHERE $6::text IS NOT NULL')}
         )
         SELECT 1 AS ord, seq, id, client_msg_id, text, created_at, true AS created FROM inserted, notified
         UNION ALL
         SELECT 1 AS ord, seq, id, client_msg_id, text, created_at, false AS created FROM existing`,
  values: [p.roomId, p.authorId, p.clientMsgId, p.text, p.author, p.notifyChannel],
});

/**
 * Sends a batch of messages (group commit: the sends one server collected meanwhile; the chat
 * batches per room, the statement takes any rooms) in ONE statement, so one round trip, one
 * transaction and one WAL flush for all of them:
 *   - `existing`: the messages these authors already sent with these clientMsgIds (a resend);
 *   - `locked`: the rooms of the new ones, locked in id order, so batches of several servers that
 *     share rooms wait for each other instead of deadlocking;
 *   - `bumped`: each room's seq goes up by its count of new messages; `inserted`: the messages
 *     with seqs base+1..base+n in batch order. A failed insert rolls every increment back: no gap;
 *   - `notified` (postgres bus only, `$6` not null): the wake-up of each new message, in seq order,
 *     as a NOTIFY of this very transaction: it is sent when (and only if) the batch commits, and
 *     PostgreSQL delivers notifications in commit order, so listeners hear a room in seq order.
 * The batch must not hold one (room, author, clientMsgId) twice (the caller merges those). An
 * identical send committed by another server after this statement's snapshot makes the insert
 * violate chat_messages_client_msg and the whole batch roll back: the caller runs it again and
 * finds that row. A send to a room that does not exist gets no row.
 * created_at is cut to milliseconds, the precision of the API's createdAt, so that a wake-up built
 * here says exactly what the records say.
 */
export const sendMessages = (p: {
  roomIds: string[];
  authorIds: UserId[];
  clientMsgIds: string[];
  texts: string[];
  /** The authors' usernames (for the NOTIFY payload). */
  authors: string[];
  /** The NOTIFY channel of the postgres bus, or null when the wake-up goes another way. */
  notifyChannel: string | null;
}): pg.QueryConfig => ({
  name: 'chat_send_messages',
  text: `WITH input AS (
           SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY
             AS i (room_id, author_id, client_msg_id, text, author, ord)
         ), existing AS (
           SELECT i.ord, m.seq, m.id, m.client_msg_id, m.text, m.created_at
           FROM input i JOIN chat_messages m
             ON m.room_id = i.room_id AND m.author_id = i.author_id AND m.client_msg_id = i.client_msg_id
         ), fresh AS (
           SELECT i.*, row_number() OVER (PARTITION BY i.room_id ORDER BY i.ord) AS k
           FROM input i WHERE i.ord NOT IN (SELECT ord FROM existing)
         ), locked AS (
           SELECT id FROM chat_rooms WHERE id IN (SELECT room_id FROM fresh) ORDER BY id FOR UPDATE
         ), bumped AS (
           UPDATE chat_rooms r SET last_seq = r.last_seq + c.n
           FROM (SELECT room_id, count(*) AS n FROM fresh GROUP BY room_id) c JOIN locked l ON l.id = c.room_id
           WHERE r.id = c.room_id
           RETURNING r.id, r.last_seq - c.n AS base
         ), inserted AS (
           INSERT INTO chat_messages (room_id, seq, author_id, client_msg_id, text, created_at)
           SELECT f.room_id, b.base + f.k, f.author_id, f.client_msg_id, f.text, date_trunc('milliseconds', clock_timestamp())
           FROM fresh f JOIN bumped b ON b.id = f.room_id
           RETURNING room_id, author_id, seq, id, client_msg_id, text, created_at
         ), created AS (
           SELECT f.ord, f.room_id, f.author, n.seq, n.id, n.client_msg_id, n.text, n.created_at
           FROM inserted n JOIN fresh f
             ON f.room_id = n.room_id AND f.author_id = n.author_id AND f.client_msg_id = n.client_msg_id
         ), notified AS (
           ${notify('$6', '(SELECT * FROM created WHERE $6::text IS NOT NULL ORDER BY room_id, seq OFFSET 0) ordered')}
         )
         SELECT ord, seq, id, client_msg_id, text, created_at, true AS created FROM created, notified
         UNION ALL
         SELECT ord, seq, id, client_msg_id, text, created_at, false AS created FROM existing`,
  values: [p.roomIds, p.authorIds, p.clientMsgIds, p.texts, p.authors, p.notifyChannel],
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
