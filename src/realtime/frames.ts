/**
 * The frames of `/ws` (../shared/API.md "Live traffic"): JSON objects with a `type`, each a TypeBox
 * schema here (the served OpenAPI document shows them as components: src/server/openapi/frames.ts).
 * Client frames are validated here, once, by type; anything else becomes an `invalid_input` or
 * `invalid_json` error frame and changes nothing. Server frames are typed by their schemas.
 */
import { Type, type Static } from 'typebox';
import { Compile } from 'typebox/compile';
import { MessageSchema, RoomId, SendBody, UnreadReply } from '../chat/schemas.ts';
import { AppError } from '../kernel/errors.ts';
import { explainRule } from '../kernel/http-errors.ts';
import { ErrorSchema } from '../kernel/responses.ts';

/** Close codes of /ws, besides the standard ones (1001 going away, 1009 frame too big). */
export const CLOSE = {
  /** The session or token that opened the socket ended or was revoked. */
  revoked: 4001,
  /** The socket did not read what it was sent: its buffer passed the limit. Resume by seq. */
  slowConsumer: 4008,
  /** The socket kept sending far over its rate after being told to slow down. */
  flooding: 4029,
} as const;

/**
 * The largest frame a client may send, in bytes. The largest valid `send` is 4000 characters, and
 * JSON may write each as a \\u escape: an emoji takes two, 12 bytes. So 48 KB plus the other fields
 * must fit (the HTTP body limit, 64 KiB by default, already takes that text).
 */
export const MAX_FRAME_BYTES = 64 * 1024;

const Seq = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });

/** What a client may send, by `type`. */
export const clientFrames = {
  subscribe: Type.Object(
    { type: Type.Literal('subscribe'), room: RoomId, after: Type.Optional(Seq) },
    { additionalProperties: false },
  ),
  unsubscribe: Type.Object({ type: Type.Literal('unsubscribe'), room: RoomId }, { additionalProperties: false }),
  send: Type.Object(
    {
      type: Type.Literal('send'),
      room: RoomId,
      text: SendBody.properties.text,
      clientMsgId: SendBody.properties.clientMsgId,
    },
    { additionalProperties: false },
  ),
  typing: Type.Object({ type: Type.Literal('typing'), room: RoomId }, { additionalProperties: false }),
  read: Type.Object({ type: Type.Literal('read'), room: RoomId, seq: Seq }, { additionalProperties: false }),
  /**
   * Answered `pong`: how a client learns its path to the server still works. Browsers cannot send
   * a WebSocket ping, nor see the server's, so a silent path (a NAT that forgot it, a hung hop)
   * would otherwise look like a quiet room for as long as TCP holds on.
   */
  ping: Type.Object({ type: Type.Literal('ping') }, { additionalProperties: false }),
};

/** Any client frame. */
export const ClientFrameSchema = Type.Union(Object.values(clientFrames));

type ClientFrameType = keyof typeof clientFrames;
export type ClientFrame = { [K in ClientFrameType]: Static<(typeof clientFrames)[K]> }[ClientFrameType];

const validators = Object.fromEntries(
  Object.entries(clientFrames).map(([type, schema]) => [type, Compile(schema)]),
) as { [K in ClientFrameType]: ReturnType<typeof Compile<(typeof clientFrames)[K]>> };

const isFrameType = (type: unknown): type is ClientFrameType =>
  typeof type === 'string' && Object.hasOwn(clientFrames, type);

/** The frame, or an AppError that says what is wrong with it. */
export function parseClientFrame(data: string): ClientFrame | AppError {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return new AppError('invalid_json', 'A frame must be one JSON object.');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return new AppError('invalid_input', 'A frame must be a JSON object with a "type".');
  }
  const type = (value as { type?: unknown }).type;
  if (!isFrameType(type)) {
    return new AppError('invalid_input', `"type" must be one of ${Object.keys(clientFrames).join(', ')}.`);
  }
  const validator = validators[type];
  if (validator.Check(value)) return value as ClientFrame;
  const first = validator.Errors(value)[0];
  const field = first?.instancePath.slice(1).replaceAll('/', '.');
  // Frames are flat: a field's schema is a property of the frame's.
  const schema = field ? (clientFrames[type].properties as Record<string, unknown>)[field] : undefined;
  const rule = first ? explainRule(first.keyword, schema, first.message) : 'is not valid';
  return new AppError('invalid_input', `${type}: ${field || 'the frame'} ${rule}.`);
}

/** What the server sends, by `type`. */
export const serverFrames = {
  /** The first frame: which server holds this socket. */
  hello: Type.Object({ type: Type.Literal('hello'), server: Type.String({ description: 'the server id, e.g. s1' }) }),
  /** A message of a subscribed room (the sender's own too), once each, in seq order. */
  message: Type.Object({ type: Type.Literal('message'), room: RoomId, message: MessageSchema }),
  /** After a subscribe: every message after `after` has been sent; live ones follow. */
  subscribed: Type.Object({
    type: Type.Literal('subscribed'),
    room: RoomId,
    lastSeq: Type.Integer({ minimum: 0, description: "the room's newest seq when subscribed" }),
  }),
  unsubscribed: Type.Object({ type: Type.Literal('unsubscribed'), room: RoomId }),
  /** To the sender of a `send`: the stored message, with its seq. */
  ack: Type.Object({ type: Type.Literal('ack'), clientMsgId: SendBody.properties.clientMsgId, message: MessageSchema }),
  presence: Type.Object({
    type: Type.Literal('presence'),
    room: RoomId,
    online: Type.Array(Type.String(), { description: 'usernames online in the room, sorted' }),
  }),
  typing: Type.Object({
    type: Type.Literal('typing'),
    room: RoomId,
    users: Type.Array(Type.String(), { description: 'usernames typing now, the typer included' }),
  }),
  /** At connect, and whenever the user reads on any device. */
  unread: Type.Object({ type: Type.Literal('unread'), rooms: UnreadReply.properties.rooms }),
  /** The answer to a client's `ping`. */
  pong: Type.Object({ type: Type.Literal('pong') }),
  /** A frame refused; `room` and `clientMsgId` say which one when it was about a room or a send. */
  error: Type.Object({
    type: Type.Literal('error'),
    code: ErrorSchema.properties.error.properties.code,
    message: Type.String({ description: 'for people' }),
    room: Type.Optional(RoomId),
    clientMsgId: Type.Optional(SendBody.properties.clientMsgId),
  }),
};

/** Any server frame. */
export const ServerFrameSchema = Type.Union(Object.values(serverFrames));

type ServerFrameType = keyof typeof serverFrames;
export type ServerFrame = { [K in ServerFrameType]: Static<(typeof serverFrames)[K]> }[ServerFrameType];
