import type { ChildProcess } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { createBalancer, type Balancer } from '../balancer/balancer.ts';
import {
  findBinary,
  startExternalBalancer,
  type ExternalKind,
  type RunningBalancer,
} from '../balancer/external/run.ts';
import { topologyFor, type Mode, type SharedStore, type Topology } from '../config/topology.ts';
import { migrate } from '../records/migrate.ts';
import { createPool, withClient } from '../records/pool.ts';
import { ensurePostgresStateSchema } from '../state/postgres.ts';
import type { StoreKind } from '../state/types.ts';
import { entry, forkTs, waitForExit, waitForMessage } from './child-process.ts';
import { CONTROL_PREFIXES, controlApi, type ClusterView } from './control-api.ts';
import type { SwitchModeAnswer } from './control-api-schemas.ts';

export type { ClusterView } from './control-api.ts';
import { AppError } from '../kernel/errors.ts';
import { ClusterEvents } from './cluster-events.ts';
import { freePort } from '../kernel/free-port.ts';
import { residentBytes } from './process-memory.ts';
import { bundleServer } from './server-bundle.ts';
import { ManagedServer, type ServerStatus } from './managed-server.ts';
import { ensureKeyEncryptionKeyFile, KEY_ENCRYPTION_KEY_FILE } from '../accounts/tokens/key-encryption.ts';
import { startRedisProcess, type RedisProcess } from './redis-process.ts';

export interface SupervisorOptions {
  servers: number;
  /** Where state lives at start (topologyFor): the servers' store, the balancer's policy. */
  topology: Topology;
  /**
   * The shared store of stateless mode (the CLI's --store), known also while the cluster runs
   * stateful, for a switch to stateless. @default the topology's store, or postgres when that is memory
   */
  sharedStore?: SharedStore;
  port: number;
  host: string;
  /** External PostgreSQL; when absent the embedded one is started with `dataDir`. */
  databaseUrl?: string;
  /** External Redis; when absent and the store is redis, a local redis-server is started. */
  redisUrl?: string;
  dataDir: string;
  adminToken: string;
  /**
   * The key-encryption key(s) of the signing keys, given to every server. @default
   * SW_KEY_ENCRYPTION_KEY(_FILE) from the environment; else, for the embedded database only, a key
   * file made once in `dataDir`. An external database without one is refused.
   */
  keyEncryptionKey?: string;
  /** Who balances: the embedded one, or HAProxy / nginx run as a child. @default 'embedded' */
  balancer?: BalancerKind;
  /** More settings for every server (SW_*), over the environment's: e.g. the lab's rate limits. */
  serverSettings?: NodeJS.ProcessEnv;
  log: (line: string) => void;
}

export type BalancerKind = 'embedded' | ExternalKind;

/**
 * Owns every process of `npm start`: the embedded PostgreSQL (through a runner child), an optional
 * local redis-server, the app servers; and runs the load balancer with the /_cluster control API.
 * Shutdown order: app servers drain, then the balancer closes, then Redis and PostgreSQL stop.
 */
export class Supervisor {
  /** What happened, in words (the dashboard's log). */
  readonly events = new ClusterEvents();
  readonly #servers = new Map<string, ManagedServer>();
  #balancer: Balancer | undefined;
  /** HAProxy or nginx in front, when chosen: the public port is theirs, the embedded one serves /_cluster. */
  #external: RunningBalancer | undefined;
  /** The server list the external balancer's config holds now (JSON). */
  #externalConfig = '[]';
  #postgres: ChildProcess | undefined;
  #redis: RedisProcess | undefined;
  #databaseUrl = '';
  #redisUrl: string | undefined;
  #stopping: Promise<void> | undefined;
  #wroteRuntime = false;
  #rolling: Promise<void> | undefined;
  #switching: Promise<void> | undefined;
  /** Where state lives now: the options' topology until a mode switch. */
  #topology: Topology;
  readonly #sharedStore: SharedStore;
  #serverEntry = entry('server/main.ts');
  #keyEncryption: NodeJS.ProcessEnv = {};

  constructor(private readonly options: SupervisorOptions) {
    this.#topology = options.topology;
    this.#sharedStore =
      options.sharedStore ?? (options.topology.store === 'memory' ? 'postgres' : options.topology.store);
  }

  get url(): string {
    if (!this.#balancer) throw new Error('not started');
    return this.#external?.url ?? this.#balancer.url;
  }

  get storeKind(): StoreKind {
    return this.#topology.store;
  }

  async start(): Promise<void> {
    await mkdir(this.options.dataDir, { recursive: true });
    const [databaseUrl, bundle] = await Promise.all([
      this.options.databaseUrl ?? this.#startPostgres(),
      bundleServer().catch((error: unknown) => {
        this.options.log(`could not bundle the server (${String(error)}); running it through tsx`);
        return undefined;
      }),
    ]);
    this.#databaseUrl = databaseUrl;
    this.#keyEncryption = await this.#keyEncryptionSetting();
    if (bundle) this.#serverEntry = bundle;
    await this.#migrate();
    if (this.storeKind === 'redis') await this.#ensureRedis();
    const external = this.options.balancer === 'embedded' ? undefined : this.options.balancer;
    const binary = external && findBinary(external);
    if (external && !binary)
      throw new Error(`--balancer ${external}: ${external} is not installed (apt-get install ${external})`);
    const publicPort = external ? this.options.port || (await freePort()) : this.options.port;
    this.#balancer = await createBalancer({
      // Behind HAProxy or nginx, the embedded balancer only serves /_cluster, on loopback.
      port: external ? 0 : publicPort,
      host: external ? '127.0.0.1' : this.options.host,
      policy: this.#topology.balancer,
      control: {
        plugin: controlApi(this, {
          adminToken: this.options.adminToken,
          listenHost: this.options.host,
          forwardedFrom: external ? { port: publicPort } : undefined,
          log: this.options.log,
        }),
        prefixes: CONTROL_PREFIXES,
      },
    });
    for (let i = 1; i <= this.options.servers; i++) this.#servers.set(`s${i}`, this.#newServer(`s${i}`));
    await Promise.all([...this.#servers.values()].map((s) => s.start()));
    await this.#untilUp(15_000);
    if (external && binary) {
      // Started once every server has its address: its first config is complete, and a kill or a
      // restart (same address) never needs a reload. A reload leaves open keep-alive connections
      // with the old workers, and their old server list, until their next answer.
      const servers = this.#homeAddresses();
      this.#externalConfig = JSON.stringify(servers);
      this.#external = await startExternalBalancer(external, binary, servers, {
        policy: this.#topology.balancer,
        host: this.options.host,
        port: publicPort,
        control: { address: new URL(this.#balancer.url).host, prefixes: CONTROL_PREFIXES },
        onOutput: (line) => this.options.log(`[${external}] ${line.trim()}`),
      });
    }
    // Lets `npm run keys` and the lab find this system's database and balancer.
    this.#wroteRuntime = true;
    await writeFile(
      `${this.options.dataDir}/runtime.json`,
      JSON.stringify({ url: this.url, databaseUrl: this.#databaseUrl, pid: process.pid }, null, 2),
    );
  }

  /**
   * Ready means what the contract says: GET /_cluster lists the servers (all, or the one named) up,
   * which is listening and passing the balancer's readiness check.
   */
  async #untilUp(timeoutMs: number, id?: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const up = () => {
      const servers = this.view().servers.filter((s) => id === undefined || s.id === id);
      return servers.length > 0 && servers.every((s) => s.status === 'up');
    };
    while (!up()) {
      if (Date.now() > deadline) throw new Error(`${id ?? 'servers'} did not pass the readiness check in time`);
      await delay(20);
    }
  }

  view(): ClusterView {
    const health = new Map(this.#balancer?.health().map((h) => [h.id, h]) ?? []);
    return {
      mode: this.#topology.mode,
      store: this.storeKind,
      servers: [...this.#servers.values()].map((server) => {
        const v = server.view();
        const h = health.get(server.id);
        // "up" means the balancer routes to it: listening and passing its readiness check.
        const status: ServerStatus = v.status === 'up' && !h?.healthy ? 'starting' : v.status;
        return {
          id: v.id,
          pid: v.pid,
          status,
          startedAt: v.startedAt,
          requests: h?.requests ?? 0,
          connections: h?.connections ?? 0,
          rssBytes: residentBytes(v.pid),
          sessionsInMemory: h?.sessionsInMemory ?? null,
        };
      }),
    };
  }

  server(id: string): ManagedServer | undefined {
    return this.#servers.get(id);
  }

  async add(): Promise<ManagedServer> {
    let n = this.#servers.size + 1;
    while (this.#servers.has(`s${n}`)) n++;
    const server = this.#newServer(`s${n}`);
    this.#servers.set(server.id, server);
    void server.start().catch((e: unknown) => this.options.log(`${server.id} failed to start: ${String(e)}`));
    return server;
  }

  /**
   * Drains and restarts the servers that are up, one at a time: the next stops only once the
   * restarted one passes the balancer's health check, so in stateless mode no request fails. In
   * stateful mode each restarted server's sessions die with its memory; the answer counts them
   * from the servers' last readiness checks, and the event log says it per server.
   */
  async rollingRestart(): Promise<{ servers: string[]; sessionsAtRisk: number | null; done: Promise<void> }> {
    this.#refuseWhileBusy();
    const targets = this.view().servers.filter((s) => s.status === 'up');
    const counted = this.sessionsHeld(targets.map((s) => s.id));
    const done = (async () => {
      await counted;
      for (const target of targets) {
        const server = this.#servers.get(target.id);
        if (!server || server.status !== 'up') continue;
        const lost = await this.sessionsHeld([server.id]);
        await server.stop();
        await server.start();
        await this.#untilUp(30_000, server.id);
        this.events.emit(
          `${server.id} restarted (drained first)` + (lost === null ? '' : `: ${lost} sessions lost with its memory`),
        );
      }
    })().finally(() => (this.#rolling = undefined));
    this.#rolling = done;
    this.events.emit(`rolling restart of ${targets.map((s) => s.id).join(', ')}`);
    return { servers: targets.map((s) => s.id), sessionsAtRisk: await counted, done };
  }

  /**
   * Restarts every server that is not down in `mode`, all at once: drained first, then started
   * with the new topology while the balancer switches policy. Not one at a time: a cluster half
   * stateless and half stateful would sign a visitor in on one server and not know them on the
   * next. Leaving stateful mode loses what the servers held in memory (counted in the answer).
   */
  async switchMode(mode: Mode): Promise<{ answer: SwitchModeAnswer; done: Promise<void> }> {
    if (this.#topology.mode === mode) throw new AppError('conflict', `The cluster is ${mode} already.`);
    this.#refuseWhileBusy();
    const next = topologyFor(mode, this.#sharedStore);
    const targets = [...this.#servers.values()].filter((s) => s.status !== 'down');
    const ids = targets.map((s) => s.id);
    const counted = this.sessionsHeld(ids);
    const done = (async () => {
      await counted;
      if (next.store === 'redis') await this.#ensureRedis();
      await Promise.all(targets.map((s) => s.stop()));
      this.#topology = next;
      this.#balancer?.setPolicy(next.balancer);
      await this.#external?.update(this.#homeAddresses(), next.balancer);
      await Promise.all(targets.map((s) => s.start()));
      await Promise.all(targets.map((s) => this.#untilUp(30_000, s.id)));
      this.events.emit(`now ${mode}: session state in ${next.store}, ${next.balancer} balancing`);
    })()
      .catch((error: unknown) => {
        this.events.emit(`the switch to ${mode} failed: ${String(error)}`);
        throw error;
      })
      .finally(() => (this.#switching = undefined));
    this.#switching = done;
    const sessionsLost = await counted;
    this.events.emit(
      `switching to ${mode}: ${ids.join(', ')} drain and restart` +
        (sessionsLost === null ? '' : `; ${sessionsLost} sessions lost with their memory`),
    );
    return { answer: { mode, store: next.store, servers: ids, sessionsLost }, done };
  }

  /** One restart of many servers at a time: a rolling restart and a mode switch exclude each other. */
  #refuseWhileBusy(): void {
    if (this.#rolling) throw new AppError('conflict', 'A rolling restart is running; GET /_cluster shows it.');
    if (this.#switching) throw new AppError('conflict', 'The mode is being switched; GET /_cluster shows it.');
  }

  /**
   * The sessions only these servers hold (stateful mode: lost when they go), as each says now: a
   * readiness sample is up to half a second old and misses the latest sign-ins. A server that does
   * not answer counts with its last sample. null when sessions live in a shared store.
   */
  async sessionsHeld(ids: readonly string[]): Promise<number | null> {
    if (this.#topology.store !== 'memory') return null;
    const sampled = new Map(this.view().servers.map((s) => [s.id, s.sessionsInMemory ?? 0]));
    const counts = await Promise.all(
      ids.map(async (id) => (await this.#servers.get(id)?.sessionsInMemoryNow()) ?? sampled.get(id) ?? 0),
    );
    return counts.reduce((sum, n) => sum + n, 0);
  }

  async remove(id: string): Promise<boolean> {
    const server = this.#servers.get(id);
    if (!server) return false;
    await server.stop();
    this.#servers.delete(id);
    this.#syncUpstreams();
    return true;
  }

  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      // Only our own: a start refused because another statewise runs here must not remove its file.
      if (this.#wroteRuntime) await rm(`${this.options.dataDir}/runtime.json`, { force: true });
      await Promise.all([...this.#servers.values()].map((s) => s.stop()));
      await this.#external?.stop();
      await this.#balancer?.close();
      await this.#redis?.stop();
      if (this.#postgres) {
        if (this.#postgres.connected) this.#postgres.send({ type: 'stop' });
        await waitForExit(this.#postgres);
      }
    })();
    return this.#stopping;
  }

  #newServer(id: string): ManagedServer {
    return new ManagedServer(id, this.#serverEntry, () => this.#serverEnv(), {
      onChange: (server) => {
        if (server.status !== 'up') this.#balancer?.markDown(server.id);
        this.#syncUpstreams();
        this.events.emit(`${server.id} is ${server.status}`);
      },
      onOutput: (server, line) => this.options.log(`[${server.id}] ${line}`),
    });
  }

  #serverEnv(): NodeJS.ProcessEnv {
    return {
      SW_MODE: this.#topology.mode,
      SW_STORE: this.storeKind,
      SW_DATABASE_URL: this.#databaseUrl,
      SW_REDIS_URL: this.#redisUrl ?? '',
      ...this.#keyEncryption,
      // A draining server is out of the rotation at once, but a request already on the wire to it
      // must still find its keep-alive connection open: idle ones are closed only after this pause
      // (else a POST meets a reset, and the balancer may not send it elsewhere: a 502).
      SW_DRAIN_DELAY_MS: process.env.SW_DRAIN_DELAY_MS ?? '200',
      ...this.options.serverSettings,
    };
  }

  /** The servers' key-encryption setting (see SupervisorOptions.keyEncryptionKey). */
  async #keyEncryptionSetting(): Promise<NodeJS.ProcessEnv> {
    if (this.options.keyEncryptionKey) return { SW_KEY_ENCRYPTION_KEY: this.options.keyEncryptionKey };
    if (process.env.SW_KEY_ENCRYPTION_KEY || process.env.SW_KEY_ENCRYPTION_KEY_FILE) return {};
    if (this.options.databaseUrl) {
      throw new Error(
        'an external database needs a key-encryption key for the signing keys: set SW_KEY_ENCRYPTION_KEY (make one with `npm run keys -- new-kek`) or SW_KEY_ENCRYPTION_KEY_FILE, and keep it out of the database and its backups',
      );
    }
    const file = join(this.options.dataDir, KEY_ENCRYPTION_KEY_FILE);
    await ensureKeyEncryptionKeyFile(file);
    return { SW_KEY_ENCRYPTION_KEY_FILE: file };
  }

  /** The balancer routes only to servers that are up (listening, not draining). */
  #syncUpstreams(): void {
    const upstreams = [...this.#servers.values()]
      .filter((s) => s.status === 'up' && s.url !== null)
      .map((s) => ({ id: s.id, url: s.url as string }));
    this.#balancer?.setUpstreams(upstreams);
    this.#updateExternal();
  }

  #homeAddresses(): Array<{ id: string; address: string }> {
    return [...this.#servers.values()]
      .filter((s) => s.homeAddress !== null)
      .map((s) => ({ id: s.id, address: s.homeAddress as string }));
  }

  /**
   * HAProxy and nginx know every server at its home address and find out themselves which are up
   * (health checks, failed connections), so a kill or a restart changes nothing in their config.
   * They reload only when a server is added or removed: a reload closes idle keep-alive
   * connections, and a request that meets one being closed fails.
   */
  #updateExternal(): void {
    if (!this.#external) return;
    const servers = this.#homeAddresses();
    const config = JSON.stringify(servers);
    if (config === this.#externalConfig) return;
    this.#externalConfig = config;
    this.#external
      .update(servers)
      .catch((error: unknown) => this.options.log(`the balancer's config could not be updated: ${String(error)}`));
  }

  /** The given Redis, or a local redis-server started the first time one is needed. */
  async #ensureRedis(): Promise<void> {
    if (this.#redisUrl) return;
    if (this.options.redisUrl) this.#redisUrl = this.options.redisUrl;
    else {
      this.#redis = await startRedisProcess(`${this.options.dataDir}/redis`);
      this.#redisUrl = this.#redis.url;
    }
  }

  async #startPostgres(): Promise<string> {
    const child = forkTs(
      entry('supervisor/postgres-runner.ts'),
      { SW_PG_DATA_DIR: `${this.options.dataDir}/pg`, SW_PG_PORT: String(await freePort()) },
      (line) => this.options.log(`[postgres] ${line}`),
    );
    this.#postgres = child;
    const { url } = await waitForMessage<{ type: 'ready'; url: string }>(child, 'ready', 60_000);
    return url;
  }

  async #migrate(): Promise<void> {
    const pool = createPool(this.#databaseUrl, { max: 1 });
    try {
      await migrate(pool);
      await withClient(pool, (client) => ensurePostgresStateSchema(client));
    } finally {
      await pool.end();
    }
  }
}
