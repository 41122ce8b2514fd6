/**
 * An app server process: `node --import tsx src/server/main.ts`, configured by SW_* variables
 * (src/config/server-config.ts). The supervisor starts these; so can any process manager.
 */
import pino from 'pino';
import { loadServerConfig } from '../config/server-config.ts';
import { ConfigError } from '../config/read-env.ts';
import { EXIT_CONFIG, EXIT_PORT_TAKEN } from '../kernel/exit-codes.ts';
import { buildApp } from './app.ts';
import { openServices } from './services.ts';

let config;
try {
  config = loadServerConfig();
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`statewise server: ${error.message}\n`);
    process.exit(EXIT_CONFIG);
  }
  throw error;
}

const logger = pino({ level: config.logLevel, base: { server: config.serverId } });
const services = await openServices(config, logger);
const app = await buildApp(services);
const { lifecycle } = services;
// Draining closes the listener, waits for requests in flight, then runs the parts' onClose hooks
// (sagas hand back their jobs, timers stop); the stores close after that.
lifecycle.onDrain('http', () => app.close());

await app.listen({ port: config.port, host: config.host }).catch((error: NodeJS.ErrnoException) => {
  if (error.code !== 'EADDRINUSE') throw error;
  // Said by the exit code too: the supervisor then starts it again on any free port.
  process.stderr.write(`statewise server: port ${config.port} is taken\n`);
  process.exit(EXIT_PORT_TAKEN);
});
const address = app.server.address();
const port = typeof address === 'object' && address ? address.port : config.port;
logger.info({ port, ...config.topology }, 'ready');
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
