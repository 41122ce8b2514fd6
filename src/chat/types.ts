/** The chat's words, shared by its messages module and its SQL (queries.ts): no logic here. */

/** A room as the API shows it: `lastSeq` is the seq of its newest message (0 when empty). */
export interface Room {
  id: string;
  name: string;
  lastSeq: number;
}

/** One stored message. `seq` is the room's gapless sequence number, from 1. */
export interface ChatMessage {
  seq: number;
  id: string;
  clientMsgId: string;
  /** The author's username. */
  author: string;
  text: string;
  createdAt: string;
}

/** Unread messages per room id. */
export type UnreadCounts = Record<string, number>;
