/**
 * The fast layer: app servers built in this process (the real composition root and plugins, real
 * PostgreSQL and Redis) and driven through `app.inject()`: no processes, no sockets for HTTP.
 * `startApps({ store, servers: 2 })` builds servers that share the database and, for postgres and
 * redis, the session state, as N processes of `npm start` would; on memory each has its own.
 */
import pino from 'pino';
import type { LightMyRequestResponse } from 'fastify';
import assert from 'node:assert/strict';
import { loadServerConfig } from '../../src/config/server-config.ts';
import { TEST_KEY_ENCRYPTION_KEY } from './key-encryption.ts';
import { ERROR_STATUS, type ErrorCode } from '../../src/kernel/errors.ts';
import { buildApp } from '../../src/server/app.ts';
import { createApiClient, type ApiClient } from '../../src/client/api-client.ts';
import { cookieHeader } from '../../src/client/cookie-fetch.ts';
import { openServices, type Services } from '../../src/server/services.ts';
import type { App } from '../../src/kernel/app-type.ts';
import { migrate } from '../../src/records/migrate.ts';
import { createPool } from '../../src/records/pool.ts';
import { freshDatabase } from './postgres.ts';
import { startRedisServer, type RedisServerHandle } from './redis.ts';

export const STORES = ['memory', 'postgres', 'redis'] as const;
export type Store = (typeof STORES)[number];

export interface TestServer {
  id: string;
  app: App;
  services: Services;
  /** A new browser-like client of this server (its own cookies and User-Agent). */
  client(userAgent?: string): InjectClient;
}

export interface TestApps {
  servers: TestServer[];
  databaseUrl: string;
  close(): Promise<void>;
}

/** Builds `servers` app servers on one fresh database (and one redis-server for the redis store). */
export interface AppsOptions {
  store: Store;
  servers?: number;
  mode?: 'stateless' | 'stateful';
  /** Extra SW_* settings, e.g. short session timeouts. */
  env?: Record<string, string>;
  /** A redis-server the test runs itself (to stop and restart it); by default each call starts its own. */
  redisUrl?: string;
  /** An empty database of the test's own (on a PostgreSQL it stops and starts); by default a fresh one on the run's. */
  database?: string;
  /** The URL the servers use for the (migrated) database: e.g. through a TCP proxy that can cut it. */
  databaseVia?: (databaseUrl: string) => Promise<string>;
  /** Where the servers' log lines go (at info and above), to assert on them; silent by default. */
  logTo?: pino.DestinationStream;
}

export async function startApps(options: AppsOptions): Promise<TestApps> {
  const databaseUrl = options.database ?? (await freshDatabase());
  const pool = createPool(databaseUrl, { max: 1 });
  await migrate(pool).finally(() => pool.end());
  let redis: RedisServerHandle | undefined;
  if (options.store === 'redis' && !options.redisUrl) redis = await startRedisServer();
  const serversDatabaseUrl = options.databaseVia ? await options.databaseVia(databaseUrl) : databaseUrl;
  const servers: TestServer[] = [];
  try {
    for (let i = 1; i <= (options.servers ?? 1); i++) {
      const config = loadServerConfig({
        SW_SERVER_ID: `s${i}`,
        SW_MODE: options.mode ?? 'stateless',
        SW_STORE: options.store,
        SW_DATABASE_URL: serversDatabaseUrl,
        SW_KEY_ENCRYPTION_KEY: TEST_KEY_ENCRYPTION_KEY,
        SW_REDIS_URL: options.redisUrl ?? redis?.url ?? '',
        SW_LOG_LEVEL: 'silent',
        ...options.env,
      });
      const log = options.logTo
        ? pino({ level: 'info' }, options.logTo)
        : pino({ level: process.env.STATEWISE_TEST_LOG ?? 'silent' });
      const services = await openServices(config, log);
      const app = await buildApp(services);
      await app.ready();
      services.lifecycle.onDrain('http', () => app.close());
      servers.push({ id: config.serverId, app, services, client: (ua) => new InjectClient(app, ua) });
    }
  } catch (error) {
    await closeAll(servers, redis);
    throw error;
  }
  return { servers, databaseUrl, close: () => closeAll(servers, redis) };
}

/** One server; the common case. */
export async function startApp(options: Omit<AppsOptions, 'servers'>) {
  const apps = await startApps({ ...options, servers: 1 });
  return { ...apps, server: apps.servers[0]! };
}

async function closeAll(servers: TestServer[], redis: RedisServerHandle | undefined): Promise<void> {
  for (const server of servers) {
    await server.services.lifecycle.shutdown({ drainDelayMs: 0, graceMs: 15_000, log: () => undefined });
  }
  await redis?.stop();
}

/** The status of a typed call's answer. */
export const statusOf = async (pending: Promise<{ response: Response }>) => (await pending).response.status;

export interface InjectResult<T = any> {
  status: number;
  headers: LightMyRequestResponse['headers'];
  body: T;
  servedBy: string | undefined;
}

/**
 * Like test/support/http.ts's Browser, through app.inject(): keeps cookies, sends one User-Agent.
 * `api` is the typed client (src/client), the way to call the API; `request` (with `get`, `post`
 * and `delete`) is raw, for what the typed client cannot say on purpose: malformed JSON, wrong
 * types, unknown fields, oversized bodies, forged headers, paths outside the API.
 */
export class InjectClient {
  readonly cookies = new Map<string, string>();
  /** The typed API client, with this client's cookies and User-Agent, through app.inject(). */
  readonly api: ApiClient;

  constructor(
    private readonly app: App,
    readonly userAgent = 'statewise-inject/1.0',
  ) {
    this.api = this.apiWith({});
  }

  /** The typed client sending `headers` too on every request (a bearer token, a client address). */
  apiWith(headers: Record<string, string>): ApiClient {
    return createApiClient({ baseUrl: INJECT_ORIGIN, fetch: this.#fetch, redirect: 'manual', headers });
  }

  async request<T = any>(
    method: string,
    url: string,
    options: { json?: unknown; body?: string; headers?: Record<string, string> } = {},
  ): Promise<InjectResult<T>> {
    const headers: Record<string, string> = { ...options.headers };
    let payload = options.body;
    if (options.json !== undefined) {
      payload = JSON.stringify(options.json);
      headers['content-type'] ??= 'application/json';
    }
    const { response, body } = await this.#send(method, url, headers, payload);
    const servedBy = response.headers['x-served-by'];
    return { status: response.statusCode, headers: response.headers, body, servedBy: servedBy as string | undefined };
  }

  get = <T = any>(url: string, headers?: Record<string, string>) => this.request<T>('GET', url, { headers });
  post = <T = any>(url: string, json?: unknown, headers?: Record<string, string>) =>
    this.request<T>('POST', url, { json: json ?? {}, headers });
  delete = <T = any>(url: string, headers?: Record<string, string>) => this.request<T>('DELETE', url, { headers });

  /**
   * One request, raw or typed: this client's User-Agent (unless the request names one) and cookies,
   * the cookies of the answer kept, and every error answer checked for the contract's shape.
   */
  async #send(method: string, url: string, given: Record<string, string>, payload: string | undefined) {
    const headers: Record<string, string> = { 'user-agent': this.userAgent, ...given };
    if (this.cookies.size > 0) headers.cookie = cookieHeader(this.cookies);
    const response = await this.app.inject({ method: method as 'GET', url, headers, payload });
    for (const cookie of response.cookies as Array<{ name: string; value: string; expires?: Date }>) {
      if (cookie.value === '' || (cookie.expires && cookie.expires.getTime() <= Date.now()))
        this.cookies.delete(cookie.name);
      else this.cookies.set(cookie.name, cookie.value);
    }
    const type = String(response.headers['content-type'] ?? '');
    const body = type.includes('json') && response.body ? JSON.parse(response.body) : response.body;
    if (response.statusCode >= 400) assertErrorShape(response.statusCode, body);
    return { response, body };
  }

  /** The typed client's fetch: the Request through app.inject(), the answer as a real Response. */
  readonly #fetch = async (request: Request): Promise<Response> => {
    const { pathname, search } = new URL(request.url);
    const payload = request.body === null ? undefined : await request.text();
    const { response } = await this.#send(
      request.method,
      pathname + search,
      Object.fromEntries(request.headers),
      payload,
    );
    const headers = new Headers();
    for (const [name, value] of Object.entries(response.headers)) {
      if (value === undefined) continue;
      for (const one of Array.isArray(value) ? value : [value]) headers.append(name, String(one));
    }
    const empty = NULL_BODY_STATUSES.has(response.statusCode);
    return new Response(empty ? null : response.rawPayload, { status: response.statusCode, headers });
  };
}

/** The typed client needs an absolute URL; only its path and query reach app.inject(). */
const INJECT_ORIGIN = 'http://inject.invalid';
/** Statuses a Response may not carry a body with. */
const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

/**
 * Every error any in-process test sees is checked here: the contract's shape, a code of the one
 * table, and the status that table gives the code.
 */
export function assertErrorShape(status: number, body: unknown): void {
  const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  assert.equal(typeof error?.code, 'string', `a ${status} without an error code: ${JSON.stringify(body)}`);
  assert.equal(typeof error?.message, 'string', `a ${status} without a message`);
  assert.equal(
    ERROR_STATUS[error!.code as ErrorCode],
    status,
    `${String(error!.code)} is not ${status} in the error table`,
  );
}
