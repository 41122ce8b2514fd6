import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshDatabase } from './postgres.ts';
import { startRedisServer, type RedisServerHandle } from './redis.ts';
import { createApiClient, dataOf, type ApiClient, type components } from '../../src/client/api-client.ts';
import { waitFor } from './wait.ts';
import { TEST_KEY_ENCRYPTION_KEY } from './key-encryption.ts';

export interface ClusterOptions {
  servers?: number;
  mode?: 'stateless' | 'stateful';
  store?: 'postgres' | 'redis';
  /** Use the embedded PostgreSQL of `npm start` (slower) instead of a fresh test database. */
  embeddedPostgres?: boolean;
  /** Extra SW_* settings for the app servers (e.g. short session timeouts). */
  env?: Record<string, string>;
  /** @default 'embedded' */
  balancer?: 'embedded' | 'haproxy' | 'nginx';
}

/** GET /_cluster, as the served document types it. */
export type ClusterView = components['schemas']['ClusterView'];

export interface Cluster {
  url: string;
  adminToken: string;
  process: ChildProcess;
  dataDir: string;
  /** Everything the system printed so far (with --verbose: the app servers' logs too). */
  output(): string;
  /** The PostgreSQL database of this system (records, signing keys). */
  databaseUrl: string;
  view(): Promise<ClusterView>;
  /** The typed client of the control API (/_cluster), sending the admin token. */
  controlApi: ApiClient;
  /** SIGKILL one app server through /_cluster and wait until the supervisor sees it down. */
  kill(id: string): Promise<void>;
  start(id: string): Promise<void>;
  waitUntilUp(id: string): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts the whole system as `npm start` does (the real CLI, as a child process) on free ports,
 * against a fresh database of the test PostgreSQL and, for the redis store, its own redis-server.
 */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const dataDir = await mkdtemp(join(tmpdir(), 'statewise-cluster-'));
  const args = ['--import', 'tsx', 'src/cli/start.ts', '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir];
  if (process.env.STATEWISE_TEST_VERBOSE) args.push('--verbose');
  args.push('--servers', String(options.servers ?? 3), '--mode', options.mode ?? 'stateless');
  if (options.balancer) args.push('--balancer', options.balancer);
  let redis: RedisServerHandle | undefined;
  if (options.store === 'redis') {
    redis = await startRedisServer();
    args.push('--store', 'redis', '--redis-url', redis.url);
  }
  const externalDatabase = options.embeddedPostgres ? undefined : await freshDatabase();
  if (externalDatabase) args.push('--database-url', externalDatabase);

  const child = spawn(process.execPath, args, {
    // An external database needs a key-encryption key; the embedded one gets npm start's own file.
    env: {
      ...process.env,
      ...(externalDatabase ? { SW_KEY_ENCRYPTION_KEY: TEST_KEY_ENCRYPTION_KEY } : {}),
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const exited = once(child, 'exit');

  const match = await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`statewise exited early:\n${output}`);
      const url = /statewise is up at (\S+)/.exec(output)?.[1];
      const token = /admin token: (\S+)/.exec(output)?.[1];
      return url && token ? { url, token } : null;
    },
    { timeoutMs: 60_000, what: 'npm start to print its URL' },
  ).catch((error: unknown) => {
    child.kill('SIGKILL');
    throw new Error(`${(error as Error).message}\n${output}`, { cause: error });
  });

  const admin = { authorization: `Bearer ${match.token}` };
  const controlApi = createApiClient({ baseUrl: match.url, headers: admin });
  // Raw on purpose: its callers read the Response itself (the typed client would consume its body).
  const view = () => dataOf(controlApi.GET('/_cluster'));
  const statusOf = async (id: string) => (await view()).servers.find((s) => s.id === id)?.status;
  const waitUntilUp = async (id: string) => {
    await waitFor(async () => (await statusOf(id)) === 'up', { timeoutMs: 30_000, what: `${id} to be up` });
  };

  const runtime = JSON.parse(await readFile(join(dataDir, 'runtime.json'), 'utf8')) as { databaseUrl: string };
  return {
    url: match.url,
    adminToken: match.token,
    process: child,
    dataDir,
    databaseUrl: externalDatabase ?? runtime.databaseUrl,
    output: () => output,
    view,
    controlApi,
    waitUntilUp,
    async kill(id) {
      const { error, response } = await controlApi.POST('/_cluster/servers/{id}/kill', { params: { path: { id } } });
      if (response.status !== 202) throw new Error(`kill ${id}: ${response.status} ${JSON.stringify(error)}`);
      await waitFor(async () => (await statusOf(id)) === 'down', { what: `${id} to be down` });
    },
    async start(id) {
      const { response } = await controlApi.POST('/_cluster/servers/{id}/start', { params: { path: { id } } });
      if (response.status !== 202) throw new Error(`start ${id}: ${response.status}`);
      await waitUntilUp(id);
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      await redis?.stop();
    },
  };
}
