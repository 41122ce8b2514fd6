import { hash } from 'node:crypto';
import type pg from 'pg';
import * as q from './queries.ts';

export interface MenuItem {
  id: string;
  name: string;
  kind: 'pizza' | 'drink';
  priceCents: number;
  stock: number;
}

export interface MenuSnapshot {
  items: MenuItem[];
  byId: ReadonlyMap<string, MenuItem>;
  /** The exact bytes of `GET /api/menu`. */
  body: string;
  /** Strong validator: a hash of `body`, so equal bytes give equal tags on every server. */
  etag: string;
}

/** How long one server reuses what it read: far below the menu's public max-age of 5 s. */
const DEFAULT_MAX_AGE_MS = 1_000;

/**
 * The menu, read from PostgreSQL (records). Each server keeps what it read for a second: the menu
 * route and every cart answer need it, and it changes rarely. Stock shown here is informative;
 * checkout takes stock in the database, never from this copy.
 */
export class Menu {
  #cached: (MenuSnapshot & { at: number }) | undefined;
  #reading: Promise<MenuSnapshot> | undefined;

  constructor(
    private readonly db: pg.Pool,
    private readonly maxAgeMs = DEFAULT_MAX_AGE_MS,
  ) {}

  read(): Promise<MenuSnapshot> {
    if (this.#cached && Date.now() - this.#cached.at < this.maxAgeMs) return Promise.resolve(this.#cached);
    // Concurrent requests after expiry share one query.
    this.#reading ??= this.#load().finally(() => (this.#reading = undefined));
    return this.#reading;
  }

  async #load(): Promise<MenuSnapshot> {
    const at = Date.now();
    const { rows } = await this.db.query<{
      id: string;
      name: string;
      kind: 'pizza' | 'drink';
      price_cents: number;
      stock: number;
    }>(q.menu());
    const items = rows.map((r) => ({
      id: r.id,
      name: r.name,
      kind: r.kind,
      priceCents: r.price_cents,
      stock: r.stock,
    }));
    const body = JSON.stringify({ items });
    const snapshot = {
      items,
      byId: new Map(items.map((i) => [i.id, i])),
      body,
      etag: `"${hash('sha256', body, 'base64url').slice(0, 27)}"`,
      at,
    };
    this.#cached = snapshot;
    return snapshot;
  }
}
