/**
 * `npm start [-- options]`: the whole system on one machine. See `--help`.
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { topologyFor } from '../config/topology.ts';
import { storeUrlProblem } from '../config/urls.ts';
import { Supervisor, type SupervisorOptions } from '../supervisor/supervisor.ts';

const HELP = `statewise: N stateless app servers behind a load balancer (or the stateful design beside it).

Usage: npm start -- [options]
  --servers N            app servers to run (default 3)
  --mode MODE            stateless (shared state, round robin) | stateful (server memory, sticky)
  --store STORE          stateless session-state backend: postgres (default) | redis
  --redis-url URL        use this Redis instead of starting a local redis-server
  --database-url URL     use this PostgreSQL instead of the embedded one
  --balancer B           embedded (default) | haproxy | nginx: the real binary, run as a child
                         with a generated config, reloaded as servers come and go
  --port P               load balancer port (default 8080; 0 = any free port)
  --host H               load balancer address (default localhost)
  --data-dir DIR         where the embedded PostgreSQL keeps its data (default .statewise)
  --verbose              print the app servers' logs
`;

function fail(message: string): never {
  process.stderr.write(`statewise: ${message}\nRun npm start -- --help for the options.\n`);
  process.exit(2);
}

function parseOptions(argv: string[]): SupervisorOptions & { verbose: boolean } {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        servers: { type: 'string', default: '3' },
        mode: { type: 'string', default: 'stateless' },
        store: { type: 'string', default: 'postgres' },
        'redis-url': { type: 'string' },
        'database-url': { type: 'string' },
        port: { type: 'string', default: '8080' },
        balancer: { type: 'string', default: 'embedded' },
        host: { type: 'string', default: 'localhost' },
        'data-dir': { type: 'string', default: fileURLToPath(new URL('../../.statewise', import.meta.url)) },
        verbose: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    });
  } catch (error) {
    fail((error as Error).message);
  }
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const servers = Number(v.servers);
  if (!Number.isInteger(servers) || servers < 1 || servers > 32) fail('--servers must be a whole number from 1 to 32');
  if (v.mode !== 'stateless' && v.mode !== 'stateful') fail('--mode must be stateless or stateful');
  if (v.store !== 'postgres' && v.store !== 'redis') fail('--store must be postgres or redis');
  if (v.balancer !== 'embedded' && v.balancer !== 'haproxy' && v.balancer !== 'nginx')
    fail('--balancer must be embedded, haproxy or nginx');
  const port = Number(v.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail('--port must be a port number (0 for any free one)');
  for (const [flag, kind, url] of [
    ['--database-url', 'database', v['database-url']],
    ['--redis-url', 'redis', v['redis-url']],
  ] as const) {
    const problem = url === undefined ? undefined : storeUrlProblem(kind, url);
    if (problem) fail(`${flag} ${problem}`);
  }
  return {
    servers,
    topology: topologyFor(v.mode, v.store),
    sharedStore: v.store,
    port,
    host: v.host,
    databaseUrl: v['database-url'],
    redisUrl: v['redis-url'],
    dataDir: v['data-dir'],
    adminToken: process.env.SW_ADMIN_TOKEN ?? randomBytes(18).toString('base64url'),
    balancer: v.balancer,
    verbose: v.verbose,
    log: () => {},
  };
}

const options = parseOptions(process.argv.slice(2));
const log = (line: string) => process.stderr.write(`${line}\n`);
options.log = options.verbose ? log : (line) => (/error|fail|fatal/i.test(line) ? log(line) : undefined);

const supervisor = new Supervisor(options);
let stopping = false;
const stop = async (why: string) => {
  if (stopping) return;
  stopping = true;
  log(`statewise: ${why}; stopping servers, balancer and databases...`);
  await supervisor.stop();
  log('statewise: stopped.');
  process.exit(0);
};
process.on('SIGINT', () => void stop('interrupted'));
process.on('SIGTERM', () => void stop('terminated'));

const started = Date.now();
try {
  await supervisor.start();
} catch (error) {
  log(`statewise: failed to start: ${(error as Error).message}`);
  await supervisor.stop().catch(() => {});
  process.exit(1);
}
const { servers } = supervisor.view();
process.stdout.write(
  [
    `statewise is up at ${supervisor.url}  (${options.topology.mode}, session state in ${options.topology.store}, ${servers.length} servers, ${Date.now() - started} ms)`,
    `admin token: ${options.adminToken}`,
    `cluster:     ${supervisor.url}/_cluster   API docs: ${supervisor.url}/docs`,
    '',
  ].join('\n'),
);
