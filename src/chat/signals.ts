/**
 * What servers tell each other about the chat over the bus. The bus is a wake-up, never the truth:
 * a signal may be lost, so every receiver can recover from the records (a room's messages are read
 * again from PostgreSQL after a gap). Typed here, parsed defensively there: the bus is shared.
 */
import type { UserId } from '../kernel/ids.ts';
import type { ChatMessage } from './types.ts';

/** The bus channel of a room: its new messages, typing and presence changes. */
export const roomChannel = (roomId: string) => `chat:${roomId}`;
/** The bus channel of per-user chat news (a read on one device changes the unread of the others). */
export const USERS_CHANNEL = 'chat:users';

export type RoomSignal =
  /**
   * A message was stored with this seq; the message rides along when it fits a bus payload, and
   * so may the ones stored just before it in the same batch (`earlier`, in seq order).
   */
  | { k: 'msg'; seq: number; message?: ChatMessage; earlier?: ChatMessage[] }
  /** A user is typing; receivers show it for TYPING_SHOWN_MS unless it is repeated. */
  | { k: 'typing'; user: string }
  /** Someone joined or left: receivers read the room's presence again. */
  | { k: 'presence' };

export type UserSignal = { k: 'unread'; userId: UserId };

/** How long a typing indicator lasts without a repeat: ephemeral, never stored or replayed. */
export const TYPING_SHOWN_MS = 5_000;

/** A message larger than this travels as its seq alone (NOTIFY payloads stop at 8000 bytes). */
const MAX_INLINE_BYTES = 6_000;

/**
 * The wake-ups of a batch's new messages in one room (in seq order): as few signals as fit a bus
 * payload each, every one naming its last message with the others riding along in `earlier`. A
 * message too large to ride alone goes as its seq (receivers read it from the records).
 */
export function encodeMessagesSignals(messages: ChatMessage[]): string[] {
  const signals: string[] = [];
  let group: ChatMessage[] = [];
  let bytes = 0;
  const flush = () => {
    const message = group[group.length - 1];
    if (!message) return;
    const earlier = group.slice(0, -1);
    signals.push(
      encodeRoomSignal(
        earlier.length > 0 ? { k: 'msg', seq: message.seq, message, earlier } : { k: 'msg', seq: message.seq, message },
      ),
    );
    group = [];
    bytes = 0;
  };
  for (const message of messages) {
    const size = Buffer.byteLength(JSON.stringify(message)) + 1; // And a comma.
    // What the group's signal adds around its messages ({"k":"msg","seq":..,"message":..,"earlier":[..]}) is under 64 bytes.
    if (group.length > 0 && bytes + size > MAX_INLINE_BYTES - 64) flush();
    group.push(message);
    bytes += size;
  }
  flush();
  return signals;
}

export function encodeRoomSignal(signal: RoomSignal): string {
  const json = JSON.stringify(signal);
  if (signal.k === 'msg' && json.length > MAX_INLINE_BYTES / 4 && Buffer.byteLength(json) > MAX_INLINE_BYTES) {
    return JSON.stringify({ k: 'msg', seq: signal.seq });
  }
  return json;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;

function isMessage(value: unknown): value is ChatMessage {
  return (
    isObject(value) &&
    Number.isSafeInteger(value.seq) &&
    typeof value.id === 'string' &&
    typeof value.clientMsgId === 'string' &&
    typeof value.author === 'string' &&
    typeof value.text === 'string' &&
    typeof value.createdAt === 'string'
  );
}

/** The signal, or null for anything that is not one (ignored: the bus is shared). */
export function parseRoomSignal(raw: string): RoomSignal | null {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return null;
  }
  if (!isObject(value)) return null;
  switch (value.k) {
    case 'msg':
      if (!Number.isSafeInteger(value.seq) || (value.seq as number) < 1) return null;
      if (isMessage(value.message) && value.message.seq === value.seq) {
        const earlier = value.earlier;
        // Earlier ones that do not check out are dropped: the gap they leave is read from the records.
        if (Array.isArray(earlier) && earlier.length > 0 && earlier.every(isMessage)) {
          return { k: 'msg', seq: value.seq as number, message: value.message, earlier };
        }
        return { k: 'msg', seq: value.seq as number, message: value.message };
      }
      return { k: 'msg', seq: value.seq as number };
    case 'typing':
      return typeof value.user === 'string' ? { k: 'typing', user: value.user } : null;
    case 'presence':
      return { k: 'presence' };
    default:
      return null;
  }
}

export function parseUserSignal(raw: string): UserSignal | null {
  try {
    const value: unknown = JSON.parse(raw);
    if (isObject(value) && value.k === 'unread' && typeof value.userId === 'string') {
      return { k: 'unread', userId: value.userId as UserId };
    }
  } catch {
    // Not ours.
  }
  return null;
}
