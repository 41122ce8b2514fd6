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
export function redisFromUrl(url: string): Redis | Cluster {
  const match = /^(redis\+sentinel|redis\+cluster):\/\/(?:([^@]*)@)?([^/]+)(?:\/(.*))?$/.exec(url);
  if (!match) {
    if (!/^rediss?:\/\//.test(url)) {
      throw new Error(`Redis URL "${url}" must start with redis://, rediss://, redis+sentinel:// or redis+cluster://`);
    }
    return new Redis(url, COMMON);
  }
  const [, scheme, auth, hostList, path] = match;
  const password = auth ? decodeURIComponent(auth.replace(/^[^:]*:/, '')) || undefined : undefined;
  if (scheme === 'redis+cluster') {
    return new Cluster(hosts(hostList!), { enableAutoPipelining: true, redisOptions: { ...COMMON, password } });
  }
  if (!path) throw new Error(`Redis URL "${url}": name the Sentinel master after the hosts, e.g. /mymaster`);
  return new Redis({ ...COMMON, sentinels: hosts(hostList!), name: path, password, sentinelPassword: password });
}
