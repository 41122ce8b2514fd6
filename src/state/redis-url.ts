import { Cluster, Redis, type RedisOptions } from 'ioredis';

/** Settings every Redis connection gets: auto-pipelining batches the commands of concurrent requests. */
const COMMON: RedisOptions = {
  enableAutoPipelining: true,
  maxRetriesPerRequest: 2,
  connectTimeout: 5_000,
};

const hosts = (list: string) =>
  list.split(',').map((hostPort) => {
    const [host, port] = hostPort.split(':');
    if (!host) throw new Error(`Redis URL: "${hostPort}" is not host:port`);
    return { host, port: Number(port ?? 6379) };
  });

/**
 * A Redis client for a URL:
 *   redis://[:password@]host:port[/db]   rediss:// for TLS
 *   redis+sentinel://[:password@]host:port[,host:port...]/masterName
 *   redis+cluster://[:password@]host:port[,host:port...]
 */
export function redisFromUrl(
  url: string,
  role: 'commands' | 'subscriber' | 'invalidations' = 'commands',
): Redis | Cluster {
  // A subscriber's SUBSCRIBE must not wait in an auto-pipeline batch: seen here, one never completed.
  const pipelining = role === 'commands';
  const common: RedisOptions = { ...COMMON, enableAutoPipelining: pipelining };
  if (role === 'invalidations') {
    // Client-side caching's invalidations come as RESP2 pub/sub messages (ioredis drops RESP3's
    // `invalidate` push), and the subscription is redone by hand after a reconnect, with the new
    // connection's id (see near-cache/redis-tracking.ts).
    Object.assign(common, { protocol: 2, autoResubscribe: false });
  }
  const match = /^(redis\+sentinel|redis\+cluster):\/\/(?:([^@]*)@)?([^/]+)(?:\/(.*))?$/.exec(url);
  if (!match) {
    if (!/^rediss?:\/\//.test(url)) {
      throw new Error(`Redis URL "${url}" must start with redis://, rediss://, redis+sentinel:// or redis+cluster://`);
    }
    return new Redis(url, common);
  }
  const [, scheme, auth, hostList, path] = match;
  const password = auth ? decodeURIComponent(auth.replace(/^[^:]*:/, '')) || undefined : undefined;
  if (scheme === 'redis+cluster') {
    return new Cluster(hosts(hostList!), { enableAutoPipelining: pipelining, redisOptions: { ...common, password } });
  }
  if (!path) throw new Error(`Redis URL "${url}": name the Sentinel master after the hosts, e.g. /mymaster`);
  // failoverDetector: follow the sentinels' +switch-master at once. Without it a client keeps talking
  // to a primary that hung and came back, whose acknowledged writes the failover then throws away.
  return reconnectWhenFailoverEndsIt(
    new Redis({
      ...common,
      sentinels: hosts(hostList!),
      name: path,
      password,
      sentinelPassword: password,
      failoverDetector: true,
    }),
  );
}

/** What ioredis says when a connection was closed under it (utils CONNECTION_CLOSED_ERROR_MSG). */
const CONNECTION_CLOSED = 'Connection is closed.';
/** How soon a client ended by the race below connects again. */
const RECONNECT_AFTER_RACE_MS = 100;

/**
 * ioredis 6 race (redis/ioredis#1683): the failover detector of the connection that died hears
 * +switch-master while the client is asking a sentinel for the new primary; it closes the
 * connector under that attempt, the attempt fails with "Connection is closed." and the client
 * goes to status `end` for good: every later command fails at once, no reconnect ever. Seen here
 * in about one Sentinel failover test of six (always one server of two). Such an end is told
 * apart from a quit or disconnect of ours by the error emitted while still `connecting`; the
 * client then simply connects again.
 */
function reconnectWhenFailoverEndsIt(client: Redis): Redis {
  let endedByRace = false;
  client.on('error', (error: Error) => {
    if (client.status === 'connecting' && error.message === CONNECTION_CLOSED) endedByRace = true;
  });
  client.on('end', () => {
    if (!endedByRace) return;
    endedByRace = false;
    setTimeout(() => {
      if (client.status === 'end') client.connect().catch(() => undefined);
    }, RECONNECT_AFTER_RACE_MS).unref();
  });
  return client;
}

/** A Redis URL fit for an error message or a log: the password replaced by ***. */
export function redactRedisUrl(url: string): string {
  return url.replace(/^([a-z+]+:\/\/)([^@/]*)@/i, (_, scheme: string, auth: string) => {
    const colon = auth.indexOf(':');
    return `${scheme}${colon === -1 ? '***' : `${auth.slice(0, colon)}:***`}@`;
  });
}

/** `redis_version` from the reply of INFO server, or null when it is not there. */
export function redisVersionFromInfo(info: string): string | null {
  return /^redis_version:([^\r\n]+)/m.exec(info)?.[1]?.trim() ?? null;
}

/** True for Redis 7.0 and newer: the session store needs PEXPIRE ... GT / NX (new in 7.0). */
export function isRedis7OrNewer(version: string): boolean {
  const match = /^(\d+)\.\d+/.exec(version);
  return match !== null && Number(match[1]) >= 7;
}
