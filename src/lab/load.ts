/**
 * Load for the lab's throughput experiments (cost, scale): autocannon with a fixed number of
 * connections, and a raw node:http hello as the machine's ceiling. The load itself stays raw HTTP
 * (LabRequest): autocannon sends prepared requests, and the client's work would be measured too.
 * Setting up (signing users up) goes through the typed client.
 */
import { spawn } from 'node:child_process';
import autocannon from 'autocannon';
import { createApiClient, dataOf } from '../client/api-client.ts';
import { cookieFetch, cookieHeader } from '../client/cookie-fetch.ts';
import { waitForExit, waitForMessage } from '../supervisor/child-process.ts';
import type { LabCluster } from './lab-cluster.ts';
import { patiently } from './patiently.ts';

/** Connections kept open by the load generator: enough to saturate one server on a small machine. */
export const CONNECTIONS = 64;

/** Every client of the lab says the same User-Agent: sessions are bound to it. */
export const LAB_USER_AGENT = 'statewise-lab/1.0';

export interface LoadResult {
  requestsPerSecond: number;
  /** Latency in ms. */
  p50: number;
  p99: number;
  /** Answers that were not 2xx, connection errors and timeouts: a figure with failures is suspect. */
  failed: number;
}

export interface LabRequest {
  method: 'GET' | 'POST' | 'PUT';
  path: string;
  body?: string;
  headers?: Record<string, string>;
}

export interface LoadTarget {
  url: string;
  headers?: Record<string, string>;
  /** The n-th request sent (over all connections), e.g. to spread it over users; else GET `url`. */
  request?: (n: number) => LabRequest;
  /**
   * autocannon in a worker thread: needed when the target is the balancer, which runs in this
   * process (one event loop for both would measure their contention). A `request` function
   * cannot cross to a worker, so the two exclude each other.
   */
  inWorker?: boolean;
}

export interface LoadDurations {
  /** Unmeasured load first (JIT, connection pools, caches); 0 for none. */
  warmupSeconds: number;
  seconds: number;
}

/** Loads the target with CONNECTIONS connections for `seconds` and returns what autocannon saw. */
export async function measureLoad(target: LoadTarget, durations: LoadDurations): Promise<LoadResult> {
  if (target.request && target.inWorker) throw new Error('a request function cannot run in a worker thread');
  const options: autocannon.Options = {
    url: target.url,
    headers: { 'user-agent': LAB_USER_AGENT, ...target.headers },
    connections: CONNECTIONS,
    pipelining: 1,
    ...(target.inWorker ? { workers: 1 } : {}),
  };
  const request = target.request;
  if (request) {
    let n = 0;
    options.requests = [
      {
        setupRequest: (base) => {
          const next = request(n++);
          return { ...base, ...next, headers: { ...base.headers, ...next.headers } };
        },
      },
    ];
  }
  if (durations.warmupSeconds > 0) await autocannon({ ...options, duration: durations.warmupSeconds });
  const result = await autocannon({ ...options, duration: durations.seconds });
  return {
    requestsPerSecond: Math.round(result.requests.average),
    p50: result.latency.p50,
    p99: result.latency.p99,
    failed: result.non2xx + result.errors + result.timeouts,
  };
}

/** The same few lines as bench/peers/raw-hello.ts, run with `node -e`: no framework, no state. */
const RAW_HELLO = `
const http = require('node:http');
const body = JSON.stringify({ hello: 'world' });
const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
server.listen(0, '127.0.0.1', () => process.send({ type: 'listening', port: server.address().port }));
`;

/** A raw node:http hello in its own process, as an app server is: what Node can answer at most. */
export async function startRawHello(): Promise<{ url: string; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ['-e', RAW_HELLO], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  try {
    const { port } = await waitForMessage<{ type: 'listening'; port: number }>(child, 'listening', 10_000);
    return {
      url: `http://127.0.0.1:${port}`,
      async stop() {
        child.kill('SIGKILL');
        await waitForExit(child);
      },
    };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}

/** Registers a user at `baseUrl` and returns the Cookie header its answer set (the session, and the sticky server). */
export async function signUp(baseUrl: string, username: string): Promise<string> {
  const cookies = new Map<string, string>();
  const api = createApiClient({ baseUrl, fetch: cookieFetch({ cookies, userAgent: LAB_USER_AGENT }) });
  await dataOf(
    patiently(() => api.POST('/api/auth/register', { body: { username, password: 'a long lab password' } })),
  );
  return cookieHeader(cookies);
}

/** GET /api/me, the n-th request as the n-th user in turn (their session cookies). */
export function authenticatedGets(cookies: readonly string[]): (n: number) => LabRequest {
  return (n) => ({ method: 'GET', path: '/api/me', headers: { cookie: cookies[n % cookies.length]! } });
}

/**
 * Cart updates that can run for any time, spread over the users in turn: "add 1 to a line" (one
 * atomic increment), then "set it to 1" (one atomic set), so each line stays far under its bound
 * (99, and the stock the menu shows) however many requests are in flight.
 */
export function cartUpdates(cookies: readonly string[], itemId: string): (n: number) => LabRequest {
  return (n) => {
    const headers = { cookie: cookies[n % cookies.length]!, 'content-type': 'application/json' };
    return Math.floor(n / cookies.length) % 2 === 0
      ? { method: 'POST', path: '/api/cart/items', body: JSON.stringify({ itemId, qty: 1 }), headers }
      : {
          method: 'PUT',
          path: `/api/cart/items/${encodeURIComponent(itemId)}`,
          body: JSON.stringify({ qty: 1 }),
          headers,
        };
  };
}

/**
 * Stops a lab system without its graceful drain: after a load through the balancer an app server's
 * drain waits ~10 s (the balancer's idle keep-alive connections to it), and nothing is left to
 * measure. SIGKILL each server, then stop the rest (balancer, folder).
 */
export async function stopAtOnce(cluster: LabCluster): Promise<void> {
  await Promise.all(cluster.supervisor.view().servers.map((s) => cluster.supervisor.server(s.id)?.kill()));
  await cluster.stop();
}
