import type { HashStore } from '../state/types.ts';
import type { UserId } from '../kernel/ids.ts';

/**
 * What an ATM (an app server) shows as a balance. The ledger is always the truth and always
 * guards the money; this only decides what the answer says.
 */
export interface AtmView {
  /** The balance shown to the user; `ledger` reads the truth. */
  shown(userId: UserId, ledger: () => Promise<number>): Promise<number>;
  /** The balance shown after a movement of `delta` through this ATM left the ledger at `ledgerAfter`. */
  after(userId: UserId, delta: number, ledgerAfter: number): Promise<number>;
  /**
   * `after` for a movement whose answer is stored in the same statement (Ledger.moveOnce), so
   * decided before it: the balance shown after it (null: the ledger's), and `settle`, to call
   * afterwards with the ledger's balance if the movement was made, or null if it was not.
   */
  ahead(
    userId: UserId,
    delta: number,
  ): Promise<{ shown: number | null; settle(ledgerAfter: number | null): Promise<void> }>;
}

const nothingToSettle = async () => undefined;

/** Stateless servers: every answer is the central ledger's. Any ATM gives the same answer. */
export const ledgerView: AtmView = {
  shown: (_userId, ledger) => ledger(),
  after: async (_userId, _delta, ledgerAfter) => ledgerAfter,
  ahead: async () => ({ shown: null, settle: nothingToSettle }),
};

/**
 * The articles' stateful ATM: it remembers the balance it first saw in its own memory and applies
 * its own movements to it, so two ATMs disagree after a withdrawal through one of them, and a
 * crashed ATM forgets everything it knew. `memory` is the server's own HashStore (stateful mode).
 */
export function serverMemoryView(memory: HashStore): AtmView {
  const key = (userId: UserId) => `atm:${userId}`;
  return {
    async shown(userId, ledger) {
      const remembered = (await memory.getAll(key(userId))).balance;
      if (remembered !== undefined) return Number(remembered);
      const balance = await ledger();
      await memory.set(key(userId), 'balance', String(balance));
      return balance;
    },
    async after(userId, delta, ledgerAfter) {
      const remembered = (await memory.getAll(key(userId))).balance;
      if (remembered === undefined) {
        await memory.set(key(userId), 'balance', String(ledgerAfter));
        return ledgerAfter;
      }
      return memory.incrBy(key(userId), 'balance', delta);
    },
    async ahead(userId, delta) {
      const remembered = (await memory.getAll(key(userId))).balance;
      if (remembered === undefined) {
        const settle = async (ledgerAfter: number | null) => {
          if (ledgerAfter !== null) await memory.set(key(userId), 'balance', String(ledgerAfter));
        };
        return { shown: null, settle };
      }
      // Applied now, as `after` would have done; taken back when the movement was not made.
      const shown = await memory.incrBy(key(userId), 'balance', delta);
      const settle = async (ledgerAfter: number | null) => {
        if (ledgerAfter === null) await memory.incrBy(key(userId), 'balance', -delta);
      };
      return { shown, settle };
    },
  };
}
