/**
 * What a typed call came to, as the fault experiments count it: the status (0 when no answer came:
 * connection cut, refused, timed out), never a throw, since the experiments count those too.
 */
import { failureOf, type Answer, type Failure } from '../client/api-client.ts';

export interface Outcome<T> {
  /** 0: no answer (connection cut, refused, timed out). */
  status: number;
  /** The body of a 2xx answer. */
  data?: T;
  /** Any other answer's error in the contract's shape; with no answer, `http_0` and what fetch threw. */
  failure?: Failure;
  /** X-Served-By. */
  server: string | null;
  /** Idempotent-Replayed: true. */
  replayed: boolean;
}

export async function outcome<T>(pending: Promise<Answer<T>>): Promise<Outcome<T>> {
  let answer: Answer<T>;
  try {
    answer = await pending;
  } catch (error) {
    return { status: 0, failure: { error: { code: 'http_0', message: String(error) } }, server: null, replayed: false };
  }
  const { data, error, response } = answer;
  const status = response.status;
  const server = response.headers.get('x-served-by');
  const replayed = response.headers.get('idempotent-replayed') === 'true';
  return response.ok
    ? { status, data, server, replayed }
    : { status, failure: failureOf(error, response), server, replayed };
}
