import type { FastifyBaseLogger } from 'fastify';
import type pg from 'pg';
import { TOKEN_GENERATION_PREFIX } from '../accounts/tokens/access-tokens.ts';
import { ledgerView, serverMemoryView, type AtmView } from '../bank/atm-view.ts';
import type { ServerConfig } from '../config/server-config.ts';
import { Idempotency } from '../idempotency/idempotency.ts';
import { Lifecycle } from '../kernel/lifecycle.ts';
import { PgListener } from '../records/pg-listener.ts';
import { createPool } from '../records/pool.ts';
import { createStateStore } from '../state/index.ts';
import type { StateStore } from '../state/types.ts';
import { storeMetrics, type StoreMetrics } from './store-metrics.ts';

/**
 * Everything an app server is built from, made once from the config (the composition root). The
 * parts (accounts, bank, shop, web) are Fastify plugins that take what they use from here; no part
 * asks for the mode: the topology was turned into backends here.
 */
export interface Services {
  readonly config: ServerConfig;
  readonly log: FastifyBaseLogger;
  /** Records: users, ledger, orders, keys. */
  readonly db: pg.Pool;
  /** Session state, in the backend the topology chose (what goes to a shared store timed). */
  readonly state: StateStore;
  /** The timings of the state's operations, for /metrics. */
  readonly storeMetrics: StoreMetrics;
  /** The process's one LISTEN connection (the postgres bus, the signing-key ring). */
  readonly listener: PgListener;
  readonly lifecycle: Lifecycle;
  readonly idempotency: Idempotency;
  /** What an ATM shows, as the topology says. */
  readonly atm: AtmView;
}

/**
 * Hash keys read on nearly every request and rarely written, so served from each server's near
 * cache: an access token's revocation marker (read by every bearer request).
 */
const NEAR_CACHED_HASH_PREFIXES = [TOKEN_GENERATION_PREFIX];

/**
 * Opens the stores and builds the services. Their close steps are registered on the lifecycle in
 * the order they must run after the HTTP server drained: session state, the listener, the pool.
 */
export async function openServices(config: ServerConfig, log: FastifyBaseLogger): Promise<Services> {
  const lifecycle = new Lifecycle();
  const db = createPool(config.databaseUrl, {
    applicationName: `statewise-${config.serverId}`,
    onError: (error) => log.warn({ err: error }, 'idle database client failed'),
  });
  try {
    const listener = await PgListener.connect(config.databaseUrl, log);
    const timings = storeMetrics(config.topology.store);
    const state = await createStateStore({
      store: config.topology.store,
      databaseUrl: config.databaseUrl,
      redisUrl: config.redisUrl,
      pool: db,
      listener,
      log,
      nearCache: { maxEntries: config.nearCacheEntries, hashPrefixes: NEAR_CACHED_HASH_PREFIXES },
      observe: timings.observe,
      durable: {
        replicas: config.redisWaitReplicas,
        timeoutMs: config.redisWaitTimeoutMs,
        hashPrefixes: [TOKEN_GENERATION_PREFIX],
        onShort: (acked) =>
          log.warn(
            { acked, wanted: config.redisWaitReplicas },
            acked < 0
              ? 'a logout or revocation was not waited for: a replica was missing moments ago'
              : 'a logout or revocation reached fewer replicas than asked',
          ),
      },
    }).catch(async (error: unknown) => {
      await listener.close();
      throw error;
    });
    lifecycle.onClose('session state', () => state.close());
    lifecycle.onClose('listener', () => listener.close());
    lifecycle.onClose('database', () => db.end());
    return {
      config,
      log,
      db,
      state,
      storeMetrics: timings,
      listener,
      lifecycle,
      idempotency: new Idempotency(db),
      atm: config.topology.atm === 'server-memory' ? serverMemoryView(state.hashes) : ledgerView,
    };
  } catch (error) {
    await db.end().catch(() => undefined);
    throw error;
  }
}

/** Closes what openServices opened (after the app has closed). */
export function closeServices(services: Services): Promise<void> {
  return services.lifecycle.shutdown({ drainDelayMs: 0, graceMs: 10_000, log: () => undefined });
}
