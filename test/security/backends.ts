import type { AppsOptions } from '../support/app.ts';

/**
 * The three session-state backends, as `npm start` runs them, for in-process servers
 * (test/support/app.ts). "memory" is the stateful design: each server keeps its own sessions.
 */
export const BACKENDS = [
  { name: 'memory', shared: false, apps: { store: 'memory', mode: 'stateful' } },
  { name: 'postgres', shared: true, apps: { store: 'postgres', mode: 'stateless' } },
  { name: 'redis', shared: true, apps: { store: 'redis', mode: 'stateless' } },
] as const satisfies ReadonlyArray<{ name: string; shared: boolean; apps: AppsOptions }>;

export const PASSWORD = 'correct horse battery';
let counter = 0;
/** A username no other test uses. */
export const newUsername = (prefix = 'u') => `${prefix}${process.pid % 1000}_${++counter}`;
