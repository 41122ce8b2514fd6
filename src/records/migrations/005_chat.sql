-- Chat: rooms, their messages (records, with a gapless per-room sequence), and read marks.

CREATE TABLE chat_rooms (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 64),
  -- The seq of the room's newest message. Only `last_seq = last_seq + 1` in the statement that
  -- inserts the message changes it: senders serialise on this row, and a rolled-back insert
  -- rolls the increment back with it, so the sequence has no gap.
  last_seq bigint NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
  created_by uuid REFERENCES users (id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE UNIQUE INDEX chat_rooms_name ON chat_rooms (name);

CREATE TABLE chat_messages (
  room_id uuid NOT NULL REFERENCES chat_rooms (id) ON DELETE CASCADE,
  seq bigint NOT NULL CHECK (seq >= 1),
  id uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
  author_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  client_msg_id text NOT NULL CHECK (client_msg_id ~ '^[\x21-\x7e]{1,64}$'),
  text text NOT NULL CHECK (char_length(text) BETWEEN 1 AND 4000),
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (room_id, seq)
);
-- A resend of the same clientMsgId by the same author in the same room is the same message.
CREATE UNIQUE INDEX chat_messages_client_msg ON chat_messages (room_id, author_id, client_msg_id);

-- The last seq each user has read in each room; only ever moves forward (GREATEST).
CREATE TABLE chat_reads (
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  room_id uuid NOT NULL REFERENCES chat_rooms (id) ON DELETE CASCADE,
  last_read_seq bigint NOT NULL CHECK (last_read_seq >= 0),
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (user_id, room_id)
);
