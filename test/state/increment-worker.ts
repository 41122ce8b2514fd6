/** A separate process for the contract suite: fires COUNT increments of one field at once. */
import { createPostgresState } from '../../src/state/postgres.ts';
import { createRedisState } from '../../src/state/redis.ts';

const [kind, url, key, count] = process.argv.slice(2) as [string, string, string, string];
const store = kind === 'redis' ? await createRedisState({ url }) : await createPostgresState({ connectionString: url });
await Promise.all(Array.from({ length: Number(count) }, () => store.hashes.incrBy(key, 'n', 1, 60_000)));
await store.close();
process.stdout.write(`incremented ${count}\n`);
