import type { ClusterOptions } from '../support/cluster.ts';

/** The three session-state backends, as `npm start` runs them. */
export const BACKENDS = [
  { name: 'memory', shared: false, cluster: { mode: 'stateful' } },
  { name: 'postgres', shared: true, cluster: { mode: 'stateless', store: 'postgres' } },
  { name: 'redis', shared: true, cluster: { mode: 'stateless', store: 'redis' } },
] as const satisfies ReadonlyArray<{ name: string; shared: boolean; cluster: ClusterOptions }>;

export const PASSWORD = 'correct horse battery';
let counter = 0;
/** A username no other test uses. */
export const newUsername = (prefix = 'u') => `${prefix}${process.pid % 1000}_${++counter}`;
