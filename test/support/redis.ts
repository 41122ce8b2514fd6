import { startRedisProcess, type RedisProcess } from '../../src/supervisor/redis-process.ts';

export type RedisServerHandle = RedisProcess;

/** Starts a throwaway redis-server on a free port (no persistence); `stop()` it in `after`. */
export const startRedisServer = (): Promise<RedisServerHandle> => startRedisProcess();
