import { startRedisProcess, type RedisProcess } from '../../src/supervisor/redis-process.ts';

export type RedisServerHandle = RedisProcess;

/** Starts a throwaway redis-server on a free port (no persistence); `stop()` it in `after`. */
export const startRedisServer = (options: { dir?: string; port?: number } = {}): Promise<RedisServerHandle> =>
  startRedisProcess(options.dir, { port: options.port });
