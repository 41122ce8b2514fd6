import type { LabSystem } from './lab-cluster.ts';

/**
 * The systems a fault experiment (atm, deploys, chat, memory) runs: all of them, or with --quick
 * one of each mode (the stateful one and the first stateless one), so that the smoke test of each
 * experiment stays near 20 s on a small machine. `mode` narrows further (e.g. money: stateless only).
 */
export function systemsToRun<S extends Pick<LabSystem, 'mode'>>(
  ctx: { systems: readonly S[]; quick: boolean },
  mode?: LabSystem['mode'],
): S[] {
  const wanted = ctx.systems.filter((s) => mode === undefined || s.mode === mode);
  if (!ctx.quick) return wanted;
  return wanted.filter((s, i) => wanted.findIndex((t) => t.mode === s.mode) === i);
}
