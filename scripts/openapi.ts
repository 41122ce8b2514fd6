/**
 * Writes the served OpenAPI document to a file: `node --import tsx scripts/openapi.ts <out.json>`
 * (`npm run lint:api` lints what it writes). It is the document an app server answers on
 * GET /docs/json, taken from a real one built in process (the composition root and every plugin,
 * driven with app.inject(): no port, no network). The app needs PostgreSQL to start, so this runs a
 * throwaway embedded one (or uses SW_DATABASE_URL when set) with the memory store for sessions.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import { loadServerConfig } from '../src/config/server-config.ts';
import { freePort } from '../src/kernel/free-port.ts';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../src/records/embedded-postgres.ts';
import { migrate } from '../src/records/migrate.ts';
import { createPool } from '../src/records/pool.ts';
import { buildApp } from '../src/server/app.ts';
import { closeServices, openServices } from '../src/server/services.ts';

export async function writeOpenApiDocument(out: string, databaseUrl = process.env.SW_DATABASE_URL): Promise<void> {
  let pg: EmbeddedPostgresHandle | undefined;
  let dataDir: string | undefined;
  try {
    if (!databaseUrl) {
      dataDir = await mkdtemp(join(tmpdir(), 'statewise-openapi-pg-'));
      pg = await startEmbeddedPostgres({ dataDir, port: await freePort() });
      databaseUrl = pg.url;
    }
    const pool = createPool(databaseUrl, { max: 1 });
    await migrate(pool).finally(() => pool.end());
    const config = loadServerConfig({
      SW_SERVER_ID: 'openapi',
      SW_STORE: 'memory',
      SW_DATABASE_URL: databaseUrl,
      SW_LOG_LEVEL: 'silent',
      // A throwaway key for the signing keys this database holds, which is thrown away after.
      SW_KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64url'),
    });
    const services = await openServices(config, pino({ level: 'silent' }));
    try {
      const app = await buildApp(services);
      try {
        const answer = await app.inject({ method: 'GET', url: '/docs/json' });
        if (answer.statusCode !== 200) throw new Error(`GET /docs/json answered ${answer.statusCode}: ${answer.body}`);
        await writeFile(out, `${JSON.stringify(answer.json(), null, 2)}\n`);
      } finally {
        await app.close();
      }
    } finally {
      await closeServices(services);
    }
  } finally {
    await pg?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const out = process.argv[2];
  if (!out) {
    process.stderr.write('usage: node --import tsx scripts/openapi.ts <out.json>\n');
    process.exit(2);
  }
  await writeOpenApiDocument(out);
  process.stdout.write(`wrote the OpenAPI document to ${out}\n`);
}
