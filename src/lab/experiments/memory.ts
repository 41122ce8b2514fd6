import { Redis } from 'ioredis';
import pg from 'pg';
import { WebSocket } from 'ws';
import { createApiClient, dataOf } from '../../client/api-client.ts';
import type { Experiment, Section } from '../experiment.ts';
import type { LabInfrastructure } from '../infrastructure.ts';
import { startWithHeapProbe } from '../heap-probe.ts';
import { startLabCluster, type LabSystem } from '../lab-cluster.ts';
import { systemsToRun } from '../quick-systems.ts';
import { FAULT_LAB_USER_AGENT, SignedInClient } from '../signed-in-client.ts';
import { median, spread } from '../stats.ts';
import { until } from '../until.ts';

/** What N visitor sessions cost a system: in its server's heap, and in its shared store. */
export interface SessionBytesRun {
  system: string;
  sessions: number;
  /** The server's JS heap after a full GC, growth per session (the store itself in stateful mode). */
  serverHeapPerSession: number;
  /** The shared store's growth per session; null in stateful mode (the heap is the store). */
  store: 'redis' | 'postgres' | null;
  storePerSession: number | null;
  /** redis only: MEMORY USAGE of one session's hash and of its cart's, summed (a cross-check). */
  keyBytes?: number;
}

export interface SocketBytesRun {
  system: string;
  sockets: number;
  /** The server's heap and resident memory after a full GC, growth per open socket. */
  heapPerSocket: number;
  rssPerSocket: number;
}

export interface MemoryResults {
  sessions: Array<{ system: string; runs: SessionBytesRun[] }>;
  sockets: Array<{ system: string; runs: SocketBytesRun[] }>;
}

const sizes = (quick: boolean) => (quick ? { sessions: 300, sockets: 100 } : { sessions: 5_000, sockets: 1_000 });
/** Requests in flight while sessions are made. */
const CONCURRENCY = 16;

/** `count` visitor sessions, each with a one-line cart (a cart write is what makes a visitor's session). */
async function makeSessions(url: string, itemId: string, count: number): Promise<void> {
  const api = createApiClient({ baseUrl: url, headers: { 'user-agent': FAULT_LAB_USER_AGENT } });
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < count) {
        next++;
        // No cookie sent: each request is a new visitor, whose session this cart write makes.
        const { response } = await api.POST('/api/cart/items', { body: { itemId, qty: 1 } });
        if (response.status !== 200 || response.headers.getSetCookie().length === 0)
          throw new Error(`a visitor's cart: ${response.status}`);
      }
    }),
  );
}

/** What the shared store holds, in bytes, by its own measure. */
function storeBytes(store: 'redis' | 'postgres', infra: LabInfrastructure): () => Promise<number> {
  if (store === 'redis') {
    return async () => {
      const redis = new Redis(infra.redisUrl!);
      try {
        return Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);
      } finally {
        redis.disconnect();
      }
    };
  }
  return async () => {
    const client = new pg.Client(infra.databaseUrl);
    await client.connect();
    try {
      const { rows } = await client.query<{ bytes: string }>(
        "SELECT pg_total_relation_size('state_sessions') + pg_total_relation_size('state_hashes') AS bytes",
      );
      return Number(rows[0]!.bytes);
    } finally {
      await client.end();
    }
  };
}

/** MEMORY USAGE of one visitor's session hash plus its cart's hash, from a sample of sessions. */
async function redisKeyBytes(redisUrl: string): Promise<number> {
  const redis = new Redis(redisUrl);
  try {
    const [, keys] = await redis.scan('0', 'MATCH', 'sw:s:*', 'COUNT', 1000);
    const sample = keys.slice(0, 20);
    const sizes = await Promise.all(
      sample.map(async (key) => {
        const id = /^sw:s:\{(.+)\}$/.exec(key)![1];
        const session = (await redis.memory('USAGE', key)) ?? 0;
        const cart = (await redis.memory('USAGE', `sw:h:{cart:s:${id}}`)) ?? 0;
        return Number(session) + Number(cart);
      }),
    );
    return sizes.length === 0 ? 0 : Math.round(median(sizes));
  } finally {
    redis.disconnect();
  }
}

/** A one-server cluster whose server answers memory readings after a full GC. */
async function probedCluster(system: LabSystem, infra: LabInfrastructure) {
  const { started: cluster, probe } = await startWithHeapProbe(() => startLabCluster(system, infra, 1));
  const pid = cluster.supervisor.view().servers[0]!.pid!;
  return { cluster, read: () => probe.read(pid), stop: () => cluster.stop().finally(() => probe.dispose()) };
}

/** One server behind the balancer: warm it up, then make N sessions, and read each measure before and after. */
export async function sessionBytesOnce(system: LabSystem, infra: LabInfrastructure, count: number) {
  const { cluster, read, stop } = await probedCluster(system, infra);
  try {
    const menu = await dataOf(createApiClient({ baseUrl: cluster.url }).GET('/api/menu'));
    const itemId = menu.items[0]!.id;
    await makeSessions(cluster.url, itemId, Math.min(200, count)); // Warm-up: JIT, pools, first pages.
    const store = system.mode === 'stateful' ? null : system.store;
    const readStore = store && storeBytes(store, infra);
    const [heapBefore, storeBefore] = [(await read()).heapUsed, await readStore?.()];
    await makeSessions(cluster.url, itemId, count);
    const [heapAfter, storeAfter] = [(await read()).heapUsed, await readStore?.()];
    const run: SessionBytesRun = {
      system: system.name,
      sessions: count,
      serverHeapPerSession: Math.round((heapAfter - heapBefore) / count),
      store,
      storePerSession:
        storeBefore === undefined || storeAfter === undefined ? null : Math.round((storeAfter - storeBefore) / count),
    };
    if (store === 'redis') run.keyBytes = await redisKeyBytes(infra.redisUrl!);
    return run;
  } finally {
    await stop();
  }
}

/** N chat sockets of one user held open to one server; its memory before and after. */
export async function socketBytesOnce(system: LabSystem, infra: LabInfrastructure, count: number) {
  const { cluster, read, stop } = await probedCluster(system, infra);
  const sockets: WebSocket[] = [];
  try {
    const user = await SignedInClient.register(cluster.url, `mem_${Date.now().toString(36)}`);
    const open = () =>
      new Promise<WebSocket>((resolve, reject) => {
        const socket = new WebSocket(`${cluster.url.replace(/^http/, 'ws')}/ws`, {
          headers: { cookie: user.cookie, 'user-agent': FAULT_LAB_USER_AGENT },
        });
        socket.once('message', () => resolve(socket)); // The server's hello: the socket is attached.
        socket.on('error', reject);
        sockets.push(socket);
      });
    for (let i = 0; i < 20; i++) await open(); // Warm-up.
    const before = await read();
    for (let i = 0; i < count; i += CONCURRENCY)
      await Promise.all(Array.from({ length: Math.min(CONCURRENCY, count - i) }, open));
    await until(() => cluster.supervisor.view().servers[0]!.connections >= count, 'every socket tunnelled');
    const after = await read();
    return {
      system: system.name,
      sockets: count,
      heapPerSocket: Math.round((after.heapUsed - before.heapUsed) / count),
      rssPerSocket: Math.round((after.rss - before.rss) / count),
    } satisfies SocketBytesRun;
  } finally {
    for (const socket of sockets) socket.terminate();
    await stop();
  }
}

const kb = (bytes: number) => `${(bytes / 1024).toFixed(2)} KiB`;

export const memory: Experiment<MemoryResults> = {
  name: 'memory',
  // Every store even with --quick: each is read its own way (heap, used_memory, relation sizes).
  steps: (ctx) => (ctx.systems.length + 1) * ctx.repeat,
  async run(ctx) {
    const { sessions: n, sockets: w } = sizes(ctx.quick);
    const results: MemoryResults = { sessions: [], sockets: [] };
    for (const system of ctx.systems) {
      const runs: SessionBytesRun[] = [];
      for (let run = 1; run <= ctx.repeat; run++) {
        ctx.step(`memory: ${n} sessions, ${system.name} (run ${run} of ${ctx.repeat})`);
        runs.push(await sessionBytesOnce(system, ctx.infra, n));
      }
      results.sessions.push({ system: system.name, runs });
    }
    // Sockets live in the server's memory in every mode; one stateless system measures them.
    const [system] = systemsToRun({ ...ctx, quick: true }, 'stateless');
    if (system) {
      const runs: SocketBytesRun[] = [];
      for (let run = 1; run <= ctx.repeat; run++) {
        ctx.step(`memory: ${w} WebSockets, ${system.name} (run ${run} of ${ctx.repeat})`);
        runs.push(await socketBytesOnce(system, ctx.infra, w));
      }
      results.sockets.push({ system: system.name, runs });
    }
    return results;
  },
  report(results): Section[] {
    const perSession = results.sessions.map(({ system, runs }) => ({
      system,
      store: runs[0]!.store,
      heap: median(runs.map((r) => r.serverHeapPerSession)),
      shared: runs[0]!.store === null ? null : median(runs.map((r) => r.storePerSession ?? 0)),
    }));
    const stateful = perSession.find((p) => p.store === null);
    const shared = perSession.filter((p) => p.store !== null);
    const sockets = results.sockets.flatMap((s) => s.runs);
    const measured = (stateful ? stateful.heap > 0 : true) && shared.every((p) => (p.shared ?? 0) > 0);
    const where = [
      ...(stateful ? [`${stateful.heap} B in a stateful server\u2019s heap`] : []),
      ...shared.map((p) => `${p.shared} B in ${p.store}`),
    ].join(', ');
    const nearCache = shared.map((p) => `${p.heap} B`).join(' and ');
    const verdict = measured
      ? `Depends on the store, and small everywhere: a visitor session with a one-line cart took ${where} (medians); a million of them take ${Math.round(
          (Math.max(...perSession.map((p) => p.shared ?? p.heap)) * 1_000_000) / 2 ** 20,
        )} MiB at most. The stateless servers\u2019 heaps grew too (${nearCache} per session): mostly their near cache of recently read sessions (SW_NEAR_CACHE_ENTRIES).`
      : `Not measurable here: the growth per session was ${perSession.map((p) => p.shared ?? p.heap).join('/')} bytes.`;
    const perSocket = sockets.length
      ? ` Each open WebSocket added ${kb(median(sockets.map((r) => r.heapPerSocket)))} of heap and ${kb(median(sockets.map((r) => r.rssPerSocket)))} of resident memory to its server.`
      : '';
    return [
      {
        title: 'Memory: what a session and a WebSocket cost',
        claim:
          'The articles: keeping sessions in server memory is cheap, and moving them to Redis or a database costs memory (and money) there instead; each open WebSocket holds memory on its server whatever the mode.',
        verdict: verdict + perSocket,
        header: ['system', 'runs', 'count', 'server heap per item', 'shared store per item', 'store measured by'],
        rows: [
          ...results.sessions.map(({ system, runs }) => [
            system,
            runs.length,
            `${runs[0]!.sessions} sessions`,
            spread(runs.map((r) => r.serverHeapPerSession)),
            runs[0]!.store === null ? 'none: the heap is the store' : spread(runs.map((r) => r.storePerSession ?? 0)),
            runs[0]!.store === 'redis'
              ? `used_memory (MEMORY USAGE of one session and its cart: ${spread(runs.map((r) => r.keyBytes ?? 0))})`
              : runs[0]!.store === 'postgres'
                ? 'size of state_sessions + state_hashes'
                : '',
          ]),
          ...results.sockets.map(({ system, runs }) => [
            system,
            runs.length,
            `${runs[0]!.sockets} WebSockets`,
            spread(runs.map((r) => r.heapPerSocket)),
            `resident: ${spread(runs.map((r) => r.rssPerSocket))} per socket`,
            'the server process\u2019s RSS',
          ]),
        ],
        charts: [
          {
            title: 'Bytes per visitor session (one-line cart), median',
            axis: 'bytes',
            values: perSession.flatMap((p) => [
              { label: p.system, series: 'server heap', value: p.heap },
              { label: p.system, series: 'shared store', value: p.shared ?? 0 },
            ]),
          },
          ...(sockets.length
            ? [
                {
                  title: 'Server memory per open WebSocket, median',
                  axis: 'bytes',
                  values: results.sockets.flatMap(({ system, runs }) => [
                    { label: system, series: 'heap', value: median(runs.map((r) => r.heapPerSocket)) },
                    { label: system, series: 'resident', value: median(runs.map((r) => r.rssPerSocket)) },
                  ]),
                },
              ]
            : []),
        ],
        notes: [
          'One server, N new visitors each adding one line to a cart (that write is what starts a visitor\u2019s session), after a warm-up of 200; each figure is the growth over those N divided by N.',
          'Server figures are read after a full garbage collection: the measured server is started with a preload (--expose-gc) that collects garbage and reports process.memoryUsage() on SIGUSR2; nothing else of it changes.',
          'PostgreSQL\u2019s figure is table and index pages (8 KiB at a time), dead row versions included until vacuum; Redis\u2019s is used_memory, its own bookkeeping included. Resident memory moves in pages and the allocator keeps what it freed: read it as a rough figure.',
          'The sockets are one signed-in user\u2019s, opened through the balancer and held idle; the balancer (in the lab process) is not counted.',
        ],
      },
    ];
  },
};
