import type { UserId } from '../kernel/ids.ts';

/** One send as the caller asked it. */
export interface SendRequest {
  roomId: string;
  author: { userId: UserId; username: string };
  clientMsgId: string;
  text: string;
}

/** What a batch answers for one distinct send: its stored message, or why not. */
export type SendOutcome<M> = { message: M; created: boolean } | { error: unknown };

/** Stores distinct sends (no two with the same room, author and clientMsgId) in one go, answers in their order. */
export type StoreBatch<M> = (sends: SendRequest[]) => Promise<SendOutcome<M>[]>;

interface Waiter<M> {
  resolve(value: { message: M; created: boolean }): void;
  reject(error: unknown): void;
}

interface Entry<M> {
  send: SendRequest;
  /** The first asked for the message; the others are resends of it (created: false). */
  waiters: Waiter<M>[];
}

/** Sends stored per statement at most: the statement stays small, the arrays bounded. */
const MAX_BATCH = 200;

/** The sends of one lane: a queue, and at most one batch of them being stored. */
interface Lane<M> {
  queue: Map<string, Entry<M>>;
  flushing: boolean;
  scheduled: boolean;
}

/**
 * Group commit, per lane: the sends that arrive while a lane's batch is being stored wait for its
 * next one, which takes all of them at once (one statement, one transaction, one WAL flush). When
 * nothing is in flight a send goes out at the end of the current turn of the event loop (with
 * whatever arrived in that turn): no timer, so a lone send is not delayed, and under load batches
 * grow by themselves. One batch at a time per lane, and a room always in the same lane, so this
 * server's sends to a room get their seqs in the order they were asked, and their wake-ups go out
 * in that order. Lanes run side by side. The trade-off: a batch holds its rooms' row locks until
 * it commits, so wide lanes (many rooms) store more per statement but make the servers' batches
 * wait for each other's WAL flush; narrow ones (a room each) wait less but batch little.
 */
export class GroupCommit<M> {
  readonly #lanes = new Map<string, Lane<M>>();

  constructor(
    private readonly store: StoreBatch<M>,
    private readonly laneOf: (send: SendRequest) => string,
  ) {}

  /** Resolves once the message is committed (or was stored before: created false). */
  send(send: SendRequest): Promise<{ message: M; created: boolean }> {
    const name = this.laneOf(send);
    let lane = this.#lanes.get(name);
    if (!lane) this.#lanes.set(name, (lane = { queue: new Map(), flushing: false, scheduled: false }));
    const key = `${send.roomId}\n${send.author.userId}\n${send.clientMsgId}`;
    const entry = lane.queue.get(key);
    return new Promise((resolve, reject) => {
      // The same send twice before it is stored: one message; the second hears it as a resend.
      if (entry) entry.waiters.push({ resolve, reject });
      else lane.queue.set(key, { send, waiters: [{ resolve, reject }] });
      this.#schedule(name, lane);
    });
  }

  #schedule(name: string, lane: Lane<M>): void {
    if (lane.flushing || lane.scheduled) return;
    lane.scheduled = true;
    setImmediate(() => {
      lane.scheduled = false;
      void this.#flush(name, lane);
    });
  }

  async #flush(name: string, lane: Lane<M>): Promise<void> {
    lane.flushing = true;
    try {
      while (lane.queue.size > 0) {
        const entries = take(lane.queue);
        let outcomes: SendOutcome<M>[];
        try {
          outcomes = await this.store(entries.map((e) => e.send));
        } catch (error) {
          outcomes = entries.map(() => ({ error }));
        }
        entries.forEach((entry, i) => settle(entry, outcomes[i]!));
      }
    } finally {
      lane.flushing = false;
      if (lane.queue.size === 0 && this.#lanes.get(name) === lane) this.#lanes.delete(name);
    }
  }
}

/** The oldest MAX_BATCH entries, taken off the queue (a Map keeps insertion order). */
function take<M>(queue: Map<string, Entry<M>>): Entry<M>[] {
  const entries: Entry<M>[] = [];
  for (const [key, entry] of queue) {
    if (entries.length === MAX_BATCH) break;
    entries.push(entry);
    queue.delete(key);
  }
  return entries;
}

function settle<M>(entry: Entry<M>, outcome: SendOutcome<M>): void {
  entry.waiters.forEach((waiter, i) => {
    if ('error' in outcome) waiter.reject(outcome.error);
    else waiter.resolve({ message: outcome.message, created: outcome.created && i === 0 });
  });
}
