/**
 * The frames of `/ws` (../shared/API.md "Live traffic"): JSON objects with a `type`. Client frames
 * are validated here, once, by type; anything else becomes an `invalid_input` or `invalid_json`
 * error frame and changes nothing.
 */
import { Type, type Static } from 'typebox';
import { Compile } from 'typebox/compile';
import type { ChatMessage, UnreadCounts } from '../chat/types.ts';
import { SendBody } from '../chat/schemas.ts';
import { AppError, type ErrorCode } from '../kernel/errors.ts';

/** Close codes of /ws, besides the standard ones (1001 going away, 1009 frame too big). */
export const CLOSE = {
  /** The session or token that opened the socket ended or was revoked. */
  revoked: 4001,
  /** The socket did not read what it was sent: its buffer passed the limit. Resume by seq. */
  slowConsumer: 4008,
  /** The socket kept sending far over its rate after being told to slow down. */
  flooding: 4029,
} as const;

/** The largest frame a client may send, in bytes: a 4000-character message with room to spare. */
export const MAX_FRAME_BYTES = 32 * 1024;

const RoomId = Type.String({
  pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
  description: 'a room id (uuid)',
});
const Seq = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });

const clientFrames = {
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
};

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
  const where = first?.instancePath ? first.instancePath.slice(1).replaceAll('/', '.') : 'the frame';
  return new AppError('invalid_input', `${type}: ${where} ${first?.message ?? 'is not valid'}.`);
}

export type ServerFrame =
  /** The first frame: which server holds this socket. */
  | { type: 'hello'; server: string }
  | { type: 'message'; room: string; message: ChatMessage }
  | { type: 'subscribed'; room: string; lastSeq: number }
  | { type: 'unsubscribed'; room: string }
  | { type: 'ack'; clientMsgId: string; message: ChatMessage }
  | { type: 'presence'; room: string; online: string[] }
  | { type: 'typing'; room: string; users: string[] }
  | { type: 'unread'; rooms: UnreadCounts }
  | { type: 'error'; code: ErrorCode; message: string; room?: string; clientMsgId?: string };
