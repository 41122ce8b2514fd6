import { setTimeout as sleep } from 'node:timers/promises';
import type { Answer } from '../client/api-client.ts';

/**
 * Makes a call again while the server answers 503 with Retry-After, as a well-behaved client
 * does: a burst of sign-ups past the password-hash queue is told to come back in a second
 * (SW_PASSWORD_HASH_QUEUE), and nothing was created. The wait is jittered (0.5 to 1.5 times
 * Retry-After) so that the burst does not come back all at once. For set-up calls only: the
 * experiments count the 503s of the calls they measure.
 */
export async function patiently<T>(call: () => Promise<Answer<T>>, attempts = 30): Promise<Answer<T>> {
  for (let attempt = 1; ; attempt++) {
    const answer = await call();
    const retryAfterSeconds = Number(answer.response.headers.get('retry-after'));
    if (answer.response.status !== 503 || !(retryAfterSeconds > 0) || attempt >= attempts) return answer;
    await sleep(retryAfterSeconds * 1_000 * (0.5 + Math.random()));
  }
}
