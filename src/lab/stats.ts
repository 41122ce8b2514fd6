/** The middle value (the upper of the two middles for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** "median (min to max)" over repeated runs, or the one value. */
export function spread(values: readonly number[], digits = 0): string {
  const sorted = [...values].sort((a, b) => a - b);
  const show = (x: number) => (digits === 0 ? String(Math.round(x)) : x.toFixed(digits));
  const mid = sorted[Math.floor(sorted.length / 2)]!;
  return sorted.length === 1 || sorted[0] === sorted.at(-1)
    ? show(mid)
    : `${show(mid)} (${show(sorted[0]!)} to ${show(sorted.at(-1)!)})`;
}

/** The p-th quantile (0..1) of `values`, nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * p) - 1))]!;
}
