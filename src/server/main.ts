/**
 * An app server process: `node --import tsx src/server/main.ts`, configured by SW_* variables
 * (src/config/server-config.ts). The supervisor starts these; so can any process manager.
 */
import pino from 'pino';
import { loadServerConfig } from '../config/server-config.ts';
import { ConfigError } from '../config/read-env.ts';
import { createPool } from '../records/pool.ts';
import { createStateStore } from '../state/index.ts';
import { buildApp } from './app.ts';
import { Lifecycle } from './lifecycle.ts';

let config;
try {
  config = loadServerConfig();
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`statewise server: ${error.message}\n`);
    process.exit(2);
  }
  throw error;
}

const logger = pino({ level: config.logLevel, base: { server: config.serverId } });
const db = createPool(config.databaseUrl, { onError: (e) => logger.warn({ err: e }, 'idle database client failed') });
const state = await createStateStore({
  store: config.store,
  databaseUrl: config.databaseUrl,
  redisUrl: config.redisUrl,
  pool: db,
});
const lifecycle = new Lifecycle();
const { app } = await buildApp({ config, db, state, lifecycle, logger });

lifecycle.onDrain('http', () => app.close());
lifecycle.onClose('state', () => state.close());
lifecycle.onClose('database', () => db.end());

await app.listen({ port: config.port, host: config.host });
const address = app.server.address();
const port = typeof address === 'object' && address ? address.port : config.port;
logger.info({ port, mode: config.mode, store: config.store }, 'ready');
process.send?.({ type: 'listening', port });

const stop = (why: string) =>
  lifecycle
    .shutdown({
      drainDelayMs: config.drainDelayMs,
      graceMs: config.shutdownGraceMs,
      log: (msg) => logger.info({ why }, msg),
    })
    .then(() => process.exit(0));

// A stray rejection in a library callback must not take every in-flight request down with it.
process.on('unhandledRejection', (error) => logger.error({ err: error }, 'unhandled rejection'));
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));
// The supervisor asks by message; if it dies, we go too rather than linger as an orphan.
process.on('message', (message: unknown) => {
  if ((message as { type?: string } | null)?.type === 'drain') void stop('supervisor');
});
process.on('disconnect', () => void stop('supervisor gone'));
