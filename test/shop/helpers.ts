/** Shared pieces of the shop tests: shoppers, bounded concurrency, reading the records. */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Cluster } from '../support/cluster.ts';
import { Browser } from '../support/http.ts';

export { servedBy } from '../support/http.ts';
import { waitFor } from '../support/wait.ts';

export const PASSWORD = 'correct horse battery';

/** Sent as X-Statewise-Server: the balancer routes the request to that server (none: any). */
export const pin = (server?: string): Record<string, string> => (server ? { 'x-statewise-server': server } : {});

/** A registered, signed-in browser (session cookie). */
export async function shopper(cluster: Cluster, username: string): Promise<Browser> {
  const browser = new Browser(cluster.url, `shop-test-${username}`);
  const registered = await browser.api.POST('/api/auth/register', { body: { username, password: PASSWORD } });
  assert.equal(registered.response.status, 201, JSON.stringify(registered.error));
  return browser;
}

/** Adds `qty` of `itemId` to the cart, on `server` when given. */
export const addToCart = (b: Browser, itemId: string, qty: number, server?: string) =>
  b.api.POST('/api/cart/items', { body: { itemId, qty }, headers: pin(server) });

/** The cart, as `server` (when given) reads it. */
export const cartOf = async (b: Browser, server?: string) =>
  (await b.api.GET('/api/cart', { headers: pin(server) })).data;

/** Raw PUT and DELETE: for the bad-input tests, whose bodies and paths the schema refuses on purpose. */
export const put = (b: Browser, path: string, json: unknown, headers?: Record<string, string>) =>
  b.request('PUT', path, { json, headers });
export const del = (b: Browser, path: string, headers?: Record<string, string>) =>
  b.request('DELETE', path, { headers });

export function checkout(b: Browser, key: string = randomUUID(), headers: Record<string, string> = {}) {
  return b.api.POST('/api/orders', { body: {}, params: { header: { 'Idempotency-Key': key } }, headers });
}

/** Runs `tasks` with at most `limit` in flight (the machine is small and shared). */
export async function bounded<T>(count: number, limit: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, count) }, async () => {
    while (next < count) {
      const i = next++;
      results[i] = await task(i);
    }
  });
  await Promise.all(lanes);
  return results;
}

/** One small pool on the cluster's database: tests read the records to check what really happened. */
export function records(cluster: Cluster) {
  const pool = new pg.Pool({ connectionString: cluster.databaseUrl, max: 2 });
  pool.on('error', () => {});
  return {
    query: async <T extends pg.QueryResultRow = any>(text: string, values: unknown[] = []) =>
      (await pool.query<T>(text, values)).rows,
    stock: async (itemId: string) =>
      Number((await pool.query('SELECT stock FROM menu_items WHERE id = $1', [itemId])).rows[0].stock),
    setStock: async (itemId: string, stock: number) =>
      void (await pool.query('UPDATE menu_items SET stock = $2 WHERE id = $1', [itemId, stock])),
    close: () => pool.end(),
  };
}
export type Records = ReturnType<typeof records>;

/** Waits until none of `orderIds` is pending; returns their rows. */
export async function settled(db: Records, orderIds: string[], timeoutMs: number) {
  return waitFor(
    async () => {
      const rows = await db.query<{
        id: string;
        status: string;
        reason: string | null;
        total_cents: string;
        user_id: string;
      }>('SELECT id, status, reason, total_cents, user_id FROM orders WHERE id = ANY($1::uuid[])', [orderIds]);
      return rows.length === orderIds.length && rows.every((r) => r.status !== 'pending') ? rows : null;
    },
    { timeoutMs, intervalMs: 200, what: `${orderIds.length} orders to be confirmed or cancelled` },
  );
}
