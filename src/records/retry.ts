/** SQLSTATEs that mean "nothing happened; run the whole transaction again". */
export const SERIALIZATION_FAILURES: ReadonlySet<string> = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
]);

const sqlState = (error: unknown): string | undefined => (error as { code?: unknown } | null)?.code as string;

/**
 * Runs `work` (a whole transaction) again when PostgreSQL rolled it back for one of `states`, at
 * most `attempts` times in all; any other error, or the last one, is thrown.
 */
export async function retryOnSqlState<T>(
  work: (attempt: number) => Promise<T>,
  options: { states?: ReadonlySet<string>; attempts?: number } = {},
): Promise<T> {
  const { states = SERIALIZATION_FAILURES, attempts = 5 } = options;
  for (let attempt = 1; ; attempt++) {
    try {
      return await work(attempt);
    } catch (error) {
      const state = sqlState(error);
      if (attempt >= attempts || state === undefined || !states.has(state)) throw error;
    }
  }
}
