import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedPostgres } from '../records/embedded-postgres.ts';
import { freePort } from '../kernel/free-port.ts';
import { startRedisProcess } from '../supervisor/redis-process.ts';

/** The stores every system of a lab run uses: PostgreSQL always, Redis when it can be run. */
export interface LabInfrastructure {
  databaseUrl: string;
  /** Undefined when redis-server is not installed: the redis systems are skipped, and the report says so. */
  redisUrl?: string;
  stop(): Promise<void>;
}

/** An embedded PostgreSQL and a redis-server of the run's own, in a temporary folder. */
export async function startLabInfrastructure(log: (line: string) => void): Promise<LabInfrastructure> {
  const dir = await mkdtemp(join(tmpdir(), 'statewise-lab-stores-'));
  const pg = await startEmbeddedPostgres({ dataDir: join(dir, 'pg'), port: await freePort() });
  const redis = await startRedisProcess().catch((error: unknown) => {
    log(`redis-server could not be started (${String(error)}): the redis systems are skipped`);
    return undefined;
  });
  return {
    databaseUrl: pg.url,
    redisUrl: redis?.url,
    async stop() {
      await redis?.stop();
      await pg.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
