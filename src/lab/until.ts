import { setTimeout as delay } from 'node:timers/promises';

/**
 * Waits for a condition, polling, and fails after `timeoutMs`: the fault experiments synchronise
 * on what happened (a count reached, a server up), never on a fixed sleep.
 */
export async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(20);
  }
}

/** Until the supervisor lists `id` up (listening and passing the balancer's health check). */
export const serverUp = (view: () => { servers: Array<{ id: string; status: string }> }, id: string) =>
  until(() => view().servers.find((s) => s.id === id)?.status === 'up', `${id} up`, 60_000);
