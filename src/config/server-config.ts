import { availableParallelism } from 'node:os';
import { ConfigError, readEnv } from './read-env.ts';
import { topologyFor, type Topology } from './topology.ts';
import { parseAddressList } from './address-list.ts';
import { storeUrlProblem } from './urls.ts';
import { readKeyEncryptionKeys, type KeyEncryptionSource } from './key-encryption-keys.ts';

/**
 * Everything an app server needs, read once from the environment at start. The supervisor sets
 * these for its children; beyond one machine, set them yourself (see README "Running elsewhere").
 */
export interface ServerConfig {
  /** @default 's1' (SW_SERVER_ID) */
  serverId: string;
  /** @default 3000 (SW_PORT; 0 = any free port) */
  port: number;
  /** @default '127.0.0.1' (SW_HOST) */
  host: string;
  /** Where each kind of state lives (SW_MODE, SW_STORE), decided once by topologyFor. */
  topology: Topology;
  databaseUrl: string;
  redisUrl: string | undefined;
  /** Sliding idle timeout of a login session. @default 30 min */
  sessionIdleMs: number;
  /** Absolute lifetime of a login session, whatever its activity. @default 12 h */
  sessionAbsoluteMs: number;
  /** Revoke a session presented by another browser (User-Agent, versions aside) than the one that signed in. @default true */
  sessionBindUserAgent: boolean;
  /** Largest request body accepted, in bytes. @default 65536 */
  bodyLimit: number;
  /** How long a draining server waits for in-flight requests before it exits. @default 10000 */
  shutdownGraceMs: number;
  /** How long /readyz reports false before the listener closes, so balancers notice. @default 0 */
  drainDelayMs: number;
  /** Access token lifetime in seconds (at most 900). @default 900 */
  accessTokenTtlSeconds: number;
  /** Refresh token lifetime in seconds. @default 30 days */
  refreshTokenTtlSeconds: number;
  /** JWT issuer and audience. */
  jwtIssuer: string;
  jwtAudience: string;
  /** Login/token attempts allowed per username in one window. @default 10 */
  loginLimit: number;
  /** Login/token/refresh attempts allowed per client address in one window. @default 100 */
  loginIpLimit: number;
  /** @default 60000 */
  loginWindowMs: number;
  /**
   * The key-encryption key(s) the JWT signing keys are sealed with in PostgreSQL
   * (SW_KEY_ENCRYPTION_KEY, or SW_KEY_ENCRYPTION_KEY_FILE: 32 bytes base64url or hex, newest
   * first). Required: `npm start` makes one in its data folder for the embedded database.
   */
  keyEncryption: KeyEncryptionSource;
  /** Password hashes computed at once, 19 MiB each (SW_PASSWORD_HASH_CONCURRENCY). @default the cores */
  passwordHashConcurrency: number;
  /** Sign-ins waiting for a hash before more get 503 (SW_PASSWORD_HASH_QUEUE). @default 64 */
  passwordHashQueue: number;
  /** Requests with a session id that is not live, allowed per client address in one window (id guessing). @default 100 */
  unknownSessionIpLimit: number;
  logLevel: string;
  /** How often a server deletes idempotency keys past their 24 h retention. @default 600000 */
  idempotencySweepMs: number;
  /** Fault tests only: a pause inside each checkout step's transaction, so a kill lands mid-step. @default 0 */
  sagaStepDelayMs: number;
  /**
   * The balancers whose X-Forwarded-For is believed: addresses, CIDRs or loopback / linklocal /
   * uniquelocal (SW_TRUSTED_PROXIES, comma-separated). Per-address limits count the client's
   * address from that trusted chain. @default ['loopback']
   */
  trustedProxies: string[];
  /** Who may scrape GET /metrics directly (not through a balancer), same format (SW_METRICS_FROM). @default ['loopback'] */
  metricsFrom: string[];
  /** The live edge (/ws): frames a socket may send per second before `rate_limited` (bursts of twice that). @default 20 */
  wsFramesPerSecond: number;
  /** Bytes waiting to be sent to one socket before it counts as a slow consumer and is closed (4008). @default 1 MiB */
  wsMaxBufferedBytes: number;
  /** How often every socket's session or token is checked again (revocations arrive at once by the bus). @default 30000 */
  wsRecheckMs: number;
  /**
   * How often every socket is pinged; one that has not answered the previous ping is cut, so a
   * client gone without a goodbye (power, network, a NAT that forgot it) goes offline. @default 15000
   */
  wsPingMs: number;
  /** How long a presence mark lives without a heartbeat: the bound on "online" after a server dies. @default 10000 */
  presenceTtlMs: number;
  /**
   * Entries in each server's near cache of shared session state (sessions, revocation markers),
   * kept true by the store's invalidations; 0 turns it off (SW_NEAR_CACHE_ENTRIES). @default 100000
   */
  nearCacheEntries: number;
  /**
   * Replicas that must have a logout or a revocation before it is acknowledged (Redis WAIT), so a
   * failover cannot undo it (SW_REDIS_WAIT_REPLICAS). @default 1 with a redis+sentinel:// URL, else 0
   */
  redisWaitReplicas: number;
  /** How long that wait may take; past it the write stands on the primary alone, logged. @default 500 (SW_REDIS_WAIT_TIMEOUT_MS) */
  redisWaitTimeoutMs: number;
}

export function loadServerConfig(env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const read = readEnv(env);
  const topology = topologyFor(
    read.oneOf('SW_MODE', ['stateless', 'stateful'] as const, 'stateless'),
    read.oneOf('SW_STORE', ['memory', 'postgres', 'redis'] as const, 'postgres'),
  );
  const redisUrl = read.optionalString('SW_REDIS_URL');
  if (topology.store === 'redis' && !redisUrl) {
    throw new ConfigError('SW_REDIS_URL', 'is required with SW_STORE=redis; set it to e.g. redis://127.0.0.1:6379');
  }
  const databaseUrl = read.requiredString(
    'SW_DATABASE_URL',
    'set it to a PostgreSQL URL such as postgres://user:pass@127.0.0.1:5432/statewise (npm start sets it for you)',
  );
  for (const [name, kind, url] of [
    ['SW_DATABASE_URL', 'database', databaseUrl],
    ['SW_REDIS_URL', 'redis', redisUrl],
  ] as const) {
    const problem = url === undefined ? undefined : storeUrlProblem(kind, url);
    if (problem) throw new ConfigError(name, problem);
  }
  const keyEncryption = keyEncryptionFrom(
    read.optionalString('SW_KEY_ENCRYPTION_KEY'),
    read.optionalString('SW_KEY_ENCRYPTION_KEY_FILE'),
  );
  const accessTokenTtlSeconds = read.int('SW_ACCESS_TOKEN_TTL_SECONDS', 900, { min: 1, max: 900 });
  return {
    serverId: read.string('SW_SERVER_ID', 's1'),
    port: read.int('SW_PORT', 3000, { min: 0, max: 65535 }),
    host: read.string('SW_HOST', '127.0.0.1'),
    topology,
    databaseUrl,
    redisUrl,
    keyEncryption,
    sessionIdleMs: read.int('SW_SESSION_IDLE_MS', 30 * 60_000, { min: 1 }),
    sessionAbsoluteMs: read.int('SW_SESSION_ABSOLUTE_MS', 12 * 3_600_000, { min: 1 }),
    sessionBindUserAgent: read.bool('SW_SESSION_BIND_USER_AGENT', true),
    bodyLimit: read.int('SW_BODY_LIMIT', 65_536, { min: 1024 }),
    shutdownGraceMs: read.int('SW_SHUTDOWN_GRACE_MS', 10_000, { min: 0 }),
    drainDelayMs: read.int('SW_DRAIN_DELAY_MS', 0, { min: 0 }),
    accessTokenTtlSeconds,
    refreshTokenTtlSeconds: read.int('SW_REFRESH_TOKEN_TTL_SECONDS', 30 * 86_400, { min: 1 }),
    jwtIssuer: read.string('SW_JWT_ISSUER', 'statewise'),
    jwtAudience: read.string('SW_JWT_AUDIENCE', 'statewise-api'),
    loginLimit: read.int('SW_LOGIN_LIMIT', 10, { min: 1 }),
    loginIpLimit: read.int('SW_LOGIN_IP_LIMIT', 100, { min: 1 }),
    loginWindowMs: read.int('SW_LOGIN_WINDOW_MS', 60_000, { min: 1 }),
    passwordHashConcurrency: read.int('SW_PASSWORD_HASH_CONCURRENCY', availableParallelism(), { min: 1, max: 64 }),
    passwordHashQueue: read.int('SW_PASSWORD_HASH_QUEUE', 64, { min: 0, max: 10_000 }),
    unknownSessionIpLimit: read.int('SW_UNKNOWN_SESSION_IP_LIMIT', 100, { min: 1 }),
    idempotencySweepMs: read.int('SW_IDEMPOTENCY_SWEEP_MS', 10 * 60_000, { min: 100 }),
    sagaStepDelayMs: read.int('SW_SAGA_STEP_DELAY_MS', 0, { min: 0, max: 10_000 }),
    trustedProxies: parseAddressList('SW_TRUSTED_PROXIES', read.optionalString('SW_TRUSTED_PROXIES')),
    metricsFrom: parseAddressList('SW_METRICS_FROM', read.optionalString('SW_METRICS_FROM')),
    // The contract promises every client at least 20 frames a second (API.md).
    wsFramesPerSecond: read.int('SW_WS_FRAMES_PER_SECOND', 20, { min: 20 }),
    wsMaxBufferedBytes: read.int('SW_WS_MAX_BUFFERED_BYTES', 1_048_576, { min: 16_384 }),
    wsRecheckMs: read.int('SW_WS_RECHECK_MS', 30_000, { min: 100 }),
    wsPingMs: read.int('SW_WS_PING_MS', 15_000, { min: 100 }),
    presenceTtlMs: read.int('SW_PRESENCE_TTL_MS', 10_000, { min: 1_000, max: 60_000 }),
    nearCacheEntries: read.int('SW_NEAR_CACHE_ENTRIES', 100_000, { min: 0, max: 10_000_000 }),
    redisWaitReplicas: read.int('SW_REDIS_WAIT_REPLICAS', redisUrl?.startsWith('redis+sentinel://') ? 1 : 0, {
      min: 0,
      max: 16,
    }),
    redisWaitTimeoutMs: read.int('SW_REDIS_WAIT_TIMEOUT_MS', 500, { min: 1, max: 60_000 }),
    logLevel: read.oneOf(
      'SW_LOG_LEVEL',
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const,
      'warn',
    ),
  };
}

/** Exactly one of the two settings, and a key that parses (the file is read now, and again on rewrap). */
function keyEncryptionFrom(value: string | undefined, file: string | undefined): KeyEncryptionSource {
  if (value && file) {
    throw new ConfigError('SW_KEY_ENCRYPTION_KEY', 'and SW_KEY_ENCRYPTION_KEY_FILE are both set; set one');
  }
  if (!value && !file) {
    throw new ConfigError(
      'SW_KEY_ENCRYPTION_KEY',
      'is required: the JWT signing keys are stored sealed with it. Make one with `npm run keys -- new-kek` and keep it out of the database and its backups (or set SW_KEY_ENCRYPTION_KEY_FILE to a file holding it)',
    );
  }
  const source = value ? { value } : { file: file! };
  try {
    readKeyEncryptionKeys(source);
  } catch (error) {
    throw new ConfigError(
      value ? 'SW_KEY_ENCRYPTION_KEY' : 'SW_KEY_ENCRYPTION_KEY_FILE',
      `is not usable: ${(error as Error).message}`,
    );
  }
  return source;
}
