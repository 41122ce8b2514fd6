/** Profiles one app server (memory store) under GET /api/me load: `node --import tsx bench/profile-me.ts`. */
import { entry } from '../src/supervisor/child-process.ts';
import { load, startInfrastructure } from './lib/harness.ts';
import { fork } from 'node:child_process';
import { once } from 'node:events';

const infra = await startInfrastructure();
const child = fork(entry('server/main.ts'), [], {
  execArgv: ['--import', 'tsx', '--cpu-prof', '--cpu-prof-dir=/tmp/prof'],
  env: { ...process.env, SW_MODE: 'stateful', SW_DATABASE_URL: infra.databaseUrl, SW_PORT: '0', SW_LOG_LEVEL: 'warn' },
});
const [{ port }] = (await once(child, 'message')) as [{ port: number }];
const url = `http://127.0.0.1:${port}`;
const r = await fetch(`${url}/api/auth/register`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', 'user-agent': 'b' },
  body: JSON.stringify({ username: 'prof', password: 'a long bench password' }),
});
const cookie = r.headers.getSetCookie()[0]!.split(';')[0]!;
await load('session memory', `${url}/api/me`, { cookie, 'user-agent': 'b' });
child.kill('SIGINT');
await once(child, 'exit');
await infra.stop();
