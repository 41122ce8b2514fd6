import type { StoreKind } from '../state/types.ts';

export type Mode = 'stateless' | 'stateful';
export type SharedStore = Exclude<StoreKind, 'memory'>;

/**
 * Where each kind of state lives, decided once from the mode and the chosen shared store, and
 * carried to every process: the CLI and the supervisor (which balancer policy), the app servers
 * (which session-state backend, which ATM view). Nothing below the composition root asks for
 * the mode again.
 */
export interface Topology {
  mode: Mode;
  /** Session state: each server's own memory (stateful) or one shared store (stateless). */
  store: StoreKind;
  /** What an ATM shows: always the central ledger, or a balance the server remembers. */
  atm: 'ledger' | 'server-memory';
  /** Stateful servers need a visitor to come back to the server that holds their state. */
  balancer: 'round-robin' | 'sticky';
}

export function topologyFor(mode: Mode, sharedStore: StoreKind): Topology {
  return mode === 'stateful'
    ? { mode, store: 'memory', atm: 'server-memory', balancer: 'sticky' }
    : { mode, store: sharedStore, atm: 'ledger', balancer: 'round-robin' };
}
