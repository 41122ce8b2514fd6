import { newKeyEncryptionKey } from '../accounts/tokens/key-encryption.ts';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { topologyFor, type Mode, type Topology } from '../config/topology.ts';
import { Supervisor } from '../supervisor/supervisor.ts';

/** One per lab process: every system of a run shares the records, the signing keys included. */
const LAB_KEY_ENCRYPTION_KEY = newKeyEncryptionKey();

/** What a lab experiment runs against: a whole `npm start` system in this process. */
export interface LabCluster {
  url: string;
  supervisor: Supervisor;
  stop(): Promise<void>;
}

export interface LabSystem {
  /** How the report names it, e.g. "stateless, redis". */
  name: string;
  mode: Mode;
  store: 'postgres' | 'redis';
  /** Overrides the mode's balancer policy (e.g. stateless behind a sticky balancer, to compare policies alone). */
  balancer?: Topology['balancer'];
}

/**
 * Starts the supervisor (3 app servers and the balancer) against the lab's PostgreSQL and, for the
 * redis store, the lab's redis-server: each system gets its own processes, the records are shared.
 */
export async function startLabCluster(
  system: LabSystem,
  infra: { databaseUrl: string; redisUrl?: string },
  servers = 3,
): Promise<LabCluster> {
  const dataDir = await mkdtemp(join(tmpdir(), 'statewise-lab-'));
  const supervisor = new Supervisor({
    servers,
    topology: { ...topologyFor(system.mode, system.store), ...(system.balancer && { balancer: system.balancer }) },
    port: 0,
    host: '127.0.0.1',
    databaseUrl: infra.databaseUrl,
    redisUrl: system.store === 'redis' ? infra.redisUrl : undefined,
    dataDir,
    adminToken: randomBytes(18).toString('base64url'),
    keyEncryptionKey: LAB_KEY_ENCRYPTION_KEY,
    // Every lab user signs in from this one address: the per-address sign-in limit (100 a minute,
    // meant for a password-guessing client) would refuse the lab's 300 users.
    serverSettings: { SW_LOGIN_IP_LIMIT: '100000' },
    log: () => {},
  });
  try {
    await supervisor.start();
  } catch (error) {
    await supervisor.stop().catch(() => {});
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
  return {
    url: supervisor.url,
    supervisor,
    async stop() {
      await supervisor.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
