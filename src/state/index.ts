import type pg from 'pg';
import type { WarnLog } from '../kernel/periodic.ts';
import type { PgListener } from '../records/pg-listener.ts';
import { createMemoryState } from './memory.ts';
import { createPostgresState } from './postgres.ts';
import { createRedisState } from './redis.ts';
import type { NearCacheOptions } from './near-cache/cached-store.ts';
import type { RedisStateOptions } from './redis.ts';
import type { StoreObserver } from './timed-store.ts';
import type { StateStore, StoreKind } from './types.ts';

export type { StateStore, StoreKind } from './types.ts';

/** The one place the session-state backend is chosen; everything else sees only StateStore. */
export async function createStateStore(config: {
  store: StoreKind;
  databaseUrl?: string;
  redisUrl?: string;
  pool?: pg.Pool;
  listener?: PgListener;
  log?: WarnLog;
  /** Shared stores only; the memory store is already in the process. */
  nearCache?: NearCacheOptions;
  /** Told the time of every operation that goes to a shared store (the memory store has none). */
  observe?: StoreObserver;
  /** Redis only: writes that must survive a failover wait for replicas. */
  durable?: RedisStateOptions['durable'];
}): Promise<StateStore> {
  switch (config.store) {
    case 'memory':
      return createMemoryState();
    case 'postgres':
      if (!config.databaseUrl) throw new Error('the postgres store needs a database URL (SW_DATABASE_URL)');
      return createPostgresState({
        connectionString: config.databaseUrl,
        pool: config.pool,
        listener: config.listener,
        log: config.log,
        nearCache: config.nearCache,
        observe: config.observe,
      });
    case 'redis':
      if (!config.redisUrl) throw new Error('the redis store needs a Redis URL (SW_REDIS_URL or --redis-url)');
      return createRedisState({
        url: config.redisUrl,
        nearCache: config.nearCache,
        durable: config.durable,
        observe: config.observe,
      });
  }
}
