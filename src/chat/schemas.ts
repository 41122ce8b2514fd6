import { Type } from 'typebox';
import { SHOWS_SOMETHING } from './visible.ts';

export const HISTORY_DEFAULT_LIMIT = 50;
export const HISTORY_MAX_LIMIT = 200;

/** A room's id: a uuid as PostgreSQL reads it (ajv's `uuid` format alone also takes a `urn:uuid:` prefix). */
export const RoomId = Type.String({
  description: 'a room id (uuid)',
  format: 'uuid',
  pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
});

export const RoomParams = Type.Object({ id: RoomId });

export const RoomSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  lastSeq: Type.Integer({ description: 'the seq of the newest message; 0 when there is none' }),
});
export const RoomReply = Type.Object({ room: RoomSchema });
export const RoomList = Type.Object({ rooms: Type.Array(RoomSchema, { description: 'oldest first' }) });

export const CreateRoomBody = Type.Object(
  {
    name: Type.String({
      minLength: 1,
      maxLength: 64,
      pattern: '^[^\\x00-\\x1f\\x7f]+$',
      description:
        '1 to 64 characters that show something: no control or invisible characters, no mix of Latin, Cyrillic and Greek letters. Spaces at the ends are dropped. Unique, whatever the case or width ("General" and "Ｇｅｎｅｒａｌ" are one name)',
    }),
  },
  // The served document's example body (examples[0]); it must pass this schema.
  { additionalProperties: false, examples: [{ name: 'pizza-lovers' }] },
);

export const MessageSchema = Type.Object({
  seq: Type.Integer({ minimum: 1, description: "the room's sequence number: 1, 2, 3... with no gap" }),
  id: Type.String({ format: 'uuid' }),
  clientMsgId: Type.String(),
  author: Type.String({ description: 'the username of the sender' }),
  text: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
});
export const MessageReply = Type.Object({ message: MessageSchema });
export const MessageList = Type.Object({ messages: Type.Array(MessageSchema, { description: 'in seq order' }) });

export const SendBody = Type.Object(
  {
    text: Type.String({
      minLength: 1,
      maxLength: 4000,
      pattern: SHOWS_SOMETHING,
      description: '1 to 4000 characters, at least one of them visible (not only spaces)',
    }),
    clientMsgId: Type.String({
      minLength: 1,
      maxLength: 64,
      pattern: '^[\\x21-\\x7e]+$',
      description:
        'chosen by the client, 1 to 64 visible ASCII characters: a resend with the same one is the same message',
    }),
  },
  {
    additionalProperties: false,
    examples: [{ text: 'Pizza at noon?', clientMsgId: '3f2a9c1e-6b4d-4e8f-a1c2-7d5e9b0f4a36' }],
  },
);

export const HistoryQuery = Type.Object({
  after: Type.Optional(
    Type.String({ pattern: '^[0-9]{1,15}$', description: 'answer messages with a greater seq; default 0' }),
  ),
  limit: Type.Optional(
    Type.String({
      pattern: '^(?:[1-9]|[1-9][0-9]|1[0-9][0-9]|200)$',
      description: `at most this many messages, 1 to ${HISTORY_MAX_LIMIT}; default ${HISTORY_DEFAULT_LIMIT}`,
    }),
  ),
});

export const ReadBody = Type.Object(
  {
    seq: Type.Integer({
      minimum: 0,
      maximum: Number.MAX_SAFE_INTEGER,
      description: "the last seq read; beyond the room's last seq counts as its last seq",
    }),
  },
  { additionalProperties: false, examples: [{ seq: 42 }] },
);

export const UnreadReply = Type.Object({
  rooms: Type.Record(Type.String(), Type.Integer({ minimum: 0 }), {
    description: 'every room id with its unread count (0 included)',
  }),
});

export const PresenceReply = Type.Object({
  online: Type.Array(Type.String(), { description: 'usernames, sorted' }),
});
