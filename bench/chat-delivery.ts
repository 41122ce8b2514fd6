/**
 * Chat delivery between servers, durable vs volatile, in one run:
 *   - statewise, store=redis    (3 app servers; messages committed to PostgreSQL, wake-ups by Redis pub/sub)
 *   - statewise, store=postgres (3 app servers; messages committed to PostgreSQL, wake-ups by LISTEN/NOTIFY)
 *   - Socket.IO 4 + @socket.io/redis-adapter (3 nodes; `io.to(room).emit`, nothing stored)
 * Each gets 300 clients (100 per server, each connected straight to its server's port) in 30 rooms
 * of 10 whose members are spread over the 3 servers, so a message fans out to 10 sockets and most
 * deliveries cross servers. All clients live in this process: send and receive times share one clock.
 *
 * 1. Latency: 2,000 messages/s offered (round robin over the 300 clients, scheduled every ms) for
 *    1 s of warm-up + BENCH_SECONDS. Latency = receive time at a recipient on ANOTHER server than
 *    the sender's minus send time (when the frame was written: a late generator is not counted as
 *    latency, its event-loop delay is reported beside). Reports p50/p99/max, the sender's ack
 *    time (statewise: stored), sent and delivered per second, losses.
 * 2. Throughput: the same at rising offered rates; the highest one sustained (the generator kept
 *    up, p99 <= 100 ms, nothing lost, no error frames) is the system's throughput.
 * 3. Idle memory: 2,000 idle sockets (authenticated, subscribed to one room) on ONE fresh server
 *    (statewise store=redis, then one Socket.IO node): (VmRSS after - VmRSS before) / 2,000, each
 *    read after full GCs forced through the server's inspector (the bench opens one on it).
 * CPU used by each part (this load generator, the app servers, PostgreSQL + Redis, anything else
 * on the machine) is read from /proc for every step, to say what bounds each figure. The machine
 * may be shared: each step first waits (up to 30 s) for outside load under 0.25 cores, and a step
 * that fails while outside load was higher is run once more (both attempts are reported).
 * BENCH_SYSTEMS=redis,postgres,socketio picks systems (a partial run writes no results file);
 * BENCH_IDLE_SOCKETS changes the 2,000 (0 skips the idle memory part); BENCH_RATES=2000,3000 runs
 * only those offered rates (no ramp; no results file); BENCH_PROFILE=dir writes a CPU profile of
 * the first app server per step (through its inspector; open it in Chrome DevTools); BENCH_BUNDLE=file
 * runs a server bundle built before (the code before a change) instead of bundling src/.
 *
 * Run: `npm run bench:chat` or `BENCH_SECONDS=5 node --import tsx bench/chat-delivery.ts`
 * (Linux only: it reads /proc). It needs ~4,500 file descriptors (2,000 client sockets here, 2,000
 * on the server it forks); with a lower `ulimit -n` it stops and says so: run `ulimit -n 65536` first.
 * Writes bench/results/chat-delivery.md.
 */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { io as ioClient, type Socket } from 'socket.io-client';
import { WebSocket } from 'ws';
import { freePort } from '../src/kernel/free-port.ts';
import { bundleServer } from '../src/supervisor/server-bundle.ts';
import { ratio, SECONDS, startInfrastructure, startProcess } from './lib/harness.ts';

const SERVERS = 3;
const CLIENTS = 300;
const ROOM_SIZE = 10;
const ROOMS = CLIENTS / ROOM_SIZE;
const WARMUP_MS = 1_000;
const LATENCY_RATE = 2_000;
/** Offered rates tried after the latency step: up while sustained, down while not. */
const RAMP_UP = [3_000, 4_000, 5_000, 6_000, 8_000, 10_000, 12_000, 16_000, 20_000, 24_000, 32_000];
const RAMP_DOWN = [1_500, 1_250, 1_000, 800, 600, 400, 200, 100];
const P99_BOUND_MS = 100;
/** The generator must send at least this share of the offered rate for a step to count. */
const KEPT_UP = 0.97;
const DRAIN_MS = 10_000;
/**
 * The machine is shared. Each step waits (up to QUIET_WAIT_MS) until processes outside this bench
 * use less than this many cores; a step that fails while they used more is run once more, and the
 * second attempt counts (both are reported).
 */
const CONTENDED_CORES = 0.25;
const QUIET_WAIT_MS = 30_000;
const IDLE_SOCKETS = Number(process.env.BENCH_IDLE_SOCKETS ?? 2_000);
const PASSWORD = 'a long bench password';
const RUN = Date.now().toString(36);
/** BENCH_SYSTEMS=redis,postgres,socketio (default all) runs only those; a partial run writes no results file. */
const SYSTEMS = (process.env.BENCH_SYSTEMS ?? 'redis,postgres,socketio').split(',');
const wanted = (system: string) => SYSTEMS.includes(system);
/** BENCH_RATES=2000,3000 runs only those offered rates, in order (for before/after comparisons). */
const RATES = process.env.BENCH_RATES?.split(',').map(Number);
/** BENCH_PROFILE=dir: the first server of each system runs with an inspector, profiled per step. */
const PROFILE_DIR = process.env.BENCH_PROFILE;
const PARTIAL = Boolean(process.env.BENCH_SYSTEMS || RATES || PROFILE_DIR || process.env.BENCH_BUNDLE);
/** Env that opens a process's inspector on `port`, so the bench can force a GC in it. */
const inspect = (port: number) => ({ NODE_OPTIONS: `--inspect=127.0.0.1:${port}` });

type Proc = Awaited<ReturnType<typeof startProcess>>;

interface BenchClient {
  /** Index of the server this client is connected to. */
  server: number;
  room: number;
  send(id: number): void;
  close(): void;
}

interface User {
  username: string;
  token: string;
}

interface CpuShare {
  bench: number;
  servers: number;
  infra: number;
  other: number;
  machine: number;
}

interface StepResult {
  offered: number;
  /** Messages sent in the step, warm-up included. */
  messages: number;
  sentPerSecond: number;
  deliveredPerSecond: number;
  p50: number;
  p99: number;
  max: number;
  ackP50: number | undefined;
  ackP99: number | undefined;
  lost: number;
  errors: number;
  loopP99: number;
  cpu: CpuShare;
  /** Empty when the step was sustained; else why not. */
  failure: string;
  /** Why the first attempt at this rate failed, when it was run again (see CONTENDED_CORES). */
  retried?: string;
}

interface SystemResult {
  name: string;
  durable: boolean;
  steps: StepResult[];
  /** PostgreSQL transactions and Redis commands per message sent, over the whole ramp. */
  pgTransactionsPerMessage: number;
  redisCommandsPerMessage: number;
}

interface StoreOps {
  pgTransactions: number;
  redisCommands: number;
}

interface IdleResult {
  name: string;
  sockets: number;
  rssBeforeMb: number;
  rssAfterMb: number;
  bytesPerSocket: number;
  heapBytesPerSocket: number;
}

// ---------------------------------------------------------------------------------------------
// Bookkeeping of one step: every message sent, when, from which server, and who got it.

class Step {
  readonly sentAt: Float64Array;
  readonly sender: Int8Array;
  readonly expected: Uint16Array;
  readonly got: Uint16Array;
  readonly latencies: number[] = [];
  readonly ackLatencies: number[] = [];
  sent = 0;
  errors = 0;
  inWindow = 0;
  windowStart = Infinity;
  windowEnd = Infinity;

  constructor(
    readonly base: number,
    capacity: number,
  ) {
    this.sentAt = new Float64Array(capacity);
    this.sender = new Int8Array(capacity);
    this.expected = new Uint16Array(capacity);
    this.got = new Uint16Array(capacity);
  }

  record(client: BenchClient, expected: number): number {
    const k = this.sent++;
    this.sentAt[k] = performance.now();
    this.sender[k] = client.server;
    this.expected[k] = expected;
    return this.base + k;
  }

  delivered(server: number, id: number): void {
    const k = id - this.base;
    if (k < 0 || k >= this.sent) return; // A late one of the step before.
    const now = performance.now();
    this.got[k]!++;
    if (now >= this.windowStart && now <= this.windowEnd) this.inWindow++;
    const sentAt = this.sentAt[k]!;
    if (sentAt >= this.windowStart && server !== this.sender[k]) this.latencies.push(now - sentAt);
  }

  acked(id: number): void {
    const k = id - this.base;
    if (k >= 0 && k < this.sent && this.sentAt[k]! >= this.windowStart)
      this.ackLatencies.push(performance.now() - this.sentAt[k]!);
  }

  /** Deliveries still missing for the measured messages (those sent after the warm-up). */
  missing(): number {
    let missing = 0;
    for (let k = 0; k < this.sent; k++) {
      if (this.sentAt[k]! >= this.windowStart) missing += Math.max(0, this.expected[k]! - this.got[k]!);
    }
    return missing;
  }

  measuredCount(): number {
    let n = 0;
    for (let k = 0; k < this.sent; k++) if (this.sentAt[k]! >= this.windowStart) n++;
    return n;
  }
}

let nextId = 1;
let current: Step | undefined;
let lastDeliveryAt = 0;
const onDelivery = (server: number, id: number) => {
  lastDeliveryAt = performance.now();
  current?.delivered(server, id);
};
const onAck = (id: number) => current?.acked(id);
const onError = () => {
  if (current) current.errors++;
};

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

// ---------------------------------------------------------------------------------------------
// Load: a fixed offered rate, scheduled against the clock every millisecond.

/** Sends `rate` messages a second, round robin over the clients, for warm-up + SECONDS. */
async function drive(step: Step, clients: BenchClient[], roomSizes: number[], rate: number): Promise<void> {
  const durationMs = WARMUP_MS + SECONDS * 1000;
  const total = Math.round((rate * durationMs) / 1000);
  const start = performance.now();
  step.windowStart = start + WARMUP_MS;
  let cursor = 0;
  while (step.sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000));
    while (step.sent < due) {
      const client = clients[cursor++ % clients.length]!;
      client.send(step.record(client, roomSizes[client.room]!));
    }
    if (performance.now() - start > durationMs + 2_000) break; // Hopelessly behind: the generator is the bound.
    await sleep(1);
  }
  step.windowEnd = performance.now();
}

/** Waits until every measured message reached every member of its room, or DRAIN_MS passed. */
async function drain(step: Step): Promise<void> {
  const deadline = performance.now() + DRAIN_MS;
  while (step.missing() > 0 && performance.now() < deadline) await sleep(50);
}

/** Waits until nothing was delivered for half a second (a backlog of the step before), at most 20 s. */
async function quiet(): Promise<void> {
  const deadline = performance.now() + 20_000;
  while (performance.now() - lastDeliveryAt < 500 && performance.now() < deadline) await sleep(100);
}

/** Waits until processes outside this bench used less than CONTENDED_CORES over a second, at most QUIET_WAIT_MS. */
async function quietMachine(): Promise<void> {
  const deadline = performance.now() + QUIET_WAIT_MS;
  while (performance.now() < deadline) {
    const before = await cpuSnapshot();
    await sleep(1_000);
    if (cpuShare(before, await cpuSnapshot(), []).other < CONTENDED_CORES) return;
  }
}

async function runStep(
  clients: BenchClient[],
  roomSizes: number[],
  rate: number,
  serverPids: number[],
  profiler?: Profiler,
): Promise<StepResult> {
  await quiet();
  await quietMachine();
  const step = new Step(nextId, Math.ceil((rate * (WARMUP_MS + SECONDS * 1000 + 2_500)) / 1000) + 16);
  current = step;
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  await profiler?.start();
  const cpuBefore = await cpuSnapshot();
  await drive(step, clients, roomSizes, rate);
  const cpu = cpuShare(cpuBefore, await cpuSnapshot(), serverPids);
  await profiler?.stop(`${rate}`);
  loop.disable();
  await drain(step);
  current = undefined;
  nextId += step.sent + 1;
  return summarise(step, rate, cpu, loop.percentile(99) / 1e6);
}

function summarise(step: Step, rate: number, cpu: CpuShare, loopP99: number): StepResult {
  const seconds = (step.windowEnd - step.windowStart) / 1000;
  const latencies = Float64Array.from(step.latencies).sort();
  const acks = Float64Array.from(step.ackLatencies).sort();
  const lost = step.missing();
  const result: StepResult = {
    offered: rate,
    messages: step.sent,
    sentPerSecond: Math.round(step.measuredCount() / seconds),
    deliveredPerSecond: Math.round(step.inWindow / seconds),
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    max: latencies.length ? latencies[latencies.length - 1]! : NaN,
    ackP50: acks.length ? percentile(acks, 0.5) : undefined,
    ackP99: acks.length ? percentile(acks, 0.99) : undefined,
    lost,
    errors: step.errors,
    loopP99,
    cpu,
    failure: '',
  };
  result.failure = failureOf(result);
  return result;
}

function failureOf(r: StepResult): string {
  const why: string[] = [];
  if (r.sentPerSecond < r.offered * KEPT_UP) why.push(`generator sent only ${r.sentPerSecond}/s`);
  if (!(r.p99 <= P99_BOUND_MS)) why.push(`p99 ${fmt(r.p99)} ms > ${P99_BOUND_MS}`);
  if (r.lost > 0) why.push(`${r.lost} deliveries missing after ${DRAIN_MS / 1000} s`);
  if (r.errors > 0) why.push(`${r.errors} error frames or sockets closed`);
  return why.join('; ');
}

/** The latency step, then the ramp until a step is not sustained. */
async function measureSystem(
  name: string,
  durable: boolean,
  nodes: Proc[],
  clients: BenchClient[],
  stores: Stores,
  profiler?: Profiler,
): Promise<SystemResult> {
  const roomSizes = Array.from({ length: ROOMS }, (_, r) => clients.filter((c) => c.room === r).length);
  const pids = nodes.map((n) => n.child.pid!);
  const result: SystemResult = { name, durable, steps: [], pgTransactionsPerMessage: 0, redisCommandsPerMessage: 0 };
  const opsBefore = await stores.ops();
  let messages = 0; // Every attempt's, warm-ups included: what the stores saw.
  const run = async (rate: number) => {
    let step = await runStep(clients, roomSizes, rate, pids, profiler);
    messages += step.messages;
    log(`  ${name} @ ${rate}/s: ${stepLine(step)}`);
    if (step.failure && step.cpu.other > CONTENDED_CORES) {
      const first = `${step.failure} while other processes used ${fmt(step.cpu.other, 2)} cores`;
      step = { ...(await runStep(clients, roomSizes, rate, pids, profiler)), retried: first };
      messages += step.messages;
      log(`  ${name} @ ${rate}/s again: ${stepLine(step)}`);
    }
    result.steps.push(step);
    return !step.failure;
  };
  if (RATES) {
    for (const rate of RATES) await run(rate);
  } else {
    const sustainedAtLatencyRate = await run(LATENCY_RATE);
    // Up until a rate is not sustained; or, when even the latency rate was not, down until one is.
    for (const rate of sustainedAtLatencyRate ? RAMP_UP : RAMP_DOWN) {
      if ((await run(rate)) !== sustainedAtLatencyRate) break;
    }
  }
  await sleep(11_000); // An idle PostgreSQL backend reports its statistics within 10 s.
  const opsAfter = await stores.ops();
  result.pgTransactionsPerMessage = (opsAfter.pgTransactions - opsBefore.pgTransactions) / messages;
  result.redisCommandsPerMessage = (opsAfter.redisCommands - opsBefore.redisCommands) / messages;
  log(
    `  ${name}: ${fmt(result.pgTransactionsPerMessage, 2)} PostgreSQL transactions and ` +
      `${fmt(result.redisCommandsPerMessage, 2)} Redis commands per message`,
  );
  return result;
}

// ---------------------------------------------------------------------------------------------
// statewise: servers, users, rooms, clients.

async function startStatewise(
  entry: string,
  infra: { databaseUrl: string; redisUrl: string },
  store: 'redis' | 'postgres',
  id: number,
  env: NodeJS.ProcessEnv = {},
): Promise<Proc> {
  return startProcess(entry, {
    ...env,
    SW_MODE: 'stateless',
    SW_STORE: store,
    SW_DATABASE_URL: infra.databaseUrl,
    SW_REDIS_URL: infra.redisUrl,
    SW_PORT: '0',
    SW_LOG_LEVEL: 'warn',
    SW_SERVER_ID: `s${id}`,
    SW_WS_FRAMES_PER_SECOND: '100000',
    SW_LOGIN_IP_LIMIT: '1000000',
    SW_LOGIN_LIMIT: '1000000',
  });
}

async function postJson(url: string, body: unknown, token?: string): Promise<{ status: number; json: any }> {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'bench' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
  return { status: response.status, json: await response.json().catch(() => null) };
}

/** Registers CLIENTS users (spread over the servers, a few at a time: scrypt is ~40 ms each) and gets each an access token. */
async function registerUsers(nodes: Proc[]): Promise<User[]> {
  const users: User[] = [];
  await inBatches(CLIENTS, 12, async (i) => {
    const url = nodes[i % nodes.length]!.url;
    const username = `cb${RUN}_${i}`;
    const registered = await postJson(`${url}/api/auth/register`, { username, password: PASSWORD });
    if (registered.status !== 201)
      throw new Error(`register ${username}: ${registered.status} ${JSON.stringify(registered.json)}`);
    const token = await postJson(`${url}/api/auth/token`, { username, password: PASSWORD });
    if (token.status !== 200) throw new Error(`token ${username}: ${token.status} ${JSON.stringify(token.json)}`);
    users[i] = { username, token: token.json.accessToken as string };
  });
  return users;
}

async function createRooms(node: Proc, token: string, label: string): Promise<string[]> {
  const ids: string[] = [];
  for (let r = 0; r < ROOMS; r++) {
    const created = await postJson(`${node.url}/api/chat/rooms`, { name: `bench ${RUN} ${label} ${r}` }, token);
    if (created.status !== 201) throw new Error(`create room: ${created.status} ${JSON.stringify(created.json)}`);
    ids.push(created.json.room.id as string);
  }
  return ids;
}

/** A statewise /ws client subscribed to one room; resolves once `subscribed`. */
function statewiseClient(
  node: Proc,
  server: number,
  token: string,
  roomId: string,
  room: number,
): Promise<BenchClient> {
  const ws = new WebSocket(`${node.url.replace('http', 'ws')}/ws?access_token=${encodeURIComponent(token)}`);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('statewise socket: no "subscribed" within 15 s')), 15_000);
    ws.on('error', (error) => (current ? onError() : reject(error)));
    ws.once('open', () => ws.send(JSON.stringify({ type: 'subscribe', room: roomId })));
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data));
      if (frame.type === 'message') onDelivery(server, Number(frame.message.text.slice(1)));
      else if (frame.type === 'ack') onAck(Number(frame.clientMsgId.slice(1)));
      else if (frame.type === 'error') onError();
      else if (frame.type === 'subscribed') {
        clearTimeout(timer);
        resolve({
          server,
          room,
          send: (id) => ws.send(JSON.stringify({ type: 'send', room: roomId, text: `m${id}`, clientMsgId: `c${id}` })),
          close: () => ws.terminate(),
        });
      }
    });
    ws.on('close', () => {
      if (current) onError(); // The bench never closes a socket during a step: the server did.
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Socket.IO 4 + redis adapter.

function socketIoClient(node: Proc, server: number, room: number): Promise<BenchClient> {
  const socket: Socket = ioClient(node.url, { transports: ['websocket'], forceNew: true, reconnection: false });
  const name = `room-${room}`;
  return new Promise((resolve, reject) => {
    socket.once('connect_error', reject);
    socket.once('connect', () => {
      socket.on('message', (payload: { id: number }) => onDelivery(server, payload.id));
      socket.on('disconnect', () => {
        if (current) onError();
      });
      socket
        .timeout(15_000)
        .emitWithAck('join', name)
        .then(() =>
          resolve({
            server,
            room,
            send: (id) => socket.emit('send', { room: name, id }),
            close: () => socket.close(),
          }),
        )
        .catch(reject);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Idle memory.

async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  if (!kb) throw new Error(`no VmRSS for ${pid}`);
  return Number(kb) * 1024;
}

/** Calls one DevTools protocol method on the process whose inspector listens on `port`. */
async function inspectorCall(port: number, method: string, params: object = {}): Promise<any> {
  const [target] = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as [
    { webSocketDebuggerUrl: string },
  ];
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  try {
    await once(ws, 'open');
    ws.send(JSON.stringify({ id: 1, method, params }));
    for (;;) {
      const [data] = await once(ws, 'message');
      const reply = JSON.parse(String(data));
      if (reply.id === 1) return reply.result;
    }
  } finally {
    ws.close();
  }
}

/** A CPU profile of one process through its inspector (BENCH_PROFILE), one file per step. */
class Profiler {
  #ws: WebSocket | undefined;
  #id = 0;

  constructor(
    private readonly port: number,
    private readonly name: string,
  ) {}

  async start(): Promise<void> {
    const [target] = (await (await fetch(`http://127.0.0.1:${this.port}/json/list`)).json()) as [
      { webSocketDebuggerUrl: string },
    ];
    this.#ws = new WebSocket(target.webSocketDebuggerUrl);
    await once(this.#ws, 'open');
    await this.#call('Profiler.enable');
    await this.#call('Profiler.setSamplingInterval', { interval: 200 });
    await this.#call('Profiler.start');
  }

  async stop(label: string): Promise<void> {
    const { profile } = await this.#call('Profiler.stop');
    this.#ws?.close();
    await mkdir(PROFILE_DIR!, { recursive: true });
    const file = `${PROFILE_DIR}/${this.name}-${label}.cpuprofile`;
    await writeFile(file, JSON.stringify(profile));
    log(`  profile: ${file}`);
  }

  async #call(method: string, params: object = {}): Promise<any> {
    const id = ++this.#id;
    this.#ws!.send(JSON.stringify({ id, method, params }));
    for (;;) {
      const [data] = await once(this.#ws!, 'message');
      const reply = JSON.parse(String(data));
      if (reply.id === id) return reply.result;
    }
  }
}

/** RSS and V8 heap + external memory of a process after two full garbage collections. */
async function settledMemory(pid: number, port: number): Promise<{ rss: number; heap: number }> {
  for (let i = 0; i < 2; i++) await inspectorCall(port, 'HeapProfiler.collectGarbage');
  await sleep(500);
  const expression = 'JSON.stringify(process.memoryUsage())';
  const { result } = await inspectorCall(port, 'Runtime.evaluate', { expression, returnByValue: true });
  const usage = JSON.parse(result.value as string) as NodeJS.MemoryUsage;
  return { rss: await rssBytes(pid), heap: usage.heapUsed + usage.external };
}

/**
 * Memory of a server before and after `sockets` idle connections (opened by `open(i)`). The server
 * runs with an inspector on `inspectPort`, which the bench uses to force a full GC before each reading
 * (garbage of the handshakes would otherwise count as the sockets' cost, or make it negative).
 */
async function idleMemory(
  name: string,
  node: Proc,
  inspectPort: number,
  sockets: number,
  open: (i: number) => Promise<BenchClient>,
): Promise<IdleResult> {
  const pid = node.child.pid!;
  const warm: BenchClient[] = [];
  await inBatches(50, 25, async (i) => void warm.push(await open(i)));
  for (const c of warm) c.close();
  await sleep(2_000);
  const before = await settledMemory(pid, inspectPort);
  const idle: BenchClient[] = [];
  try {
    await inBatches(sockets, 50, async (i) => void idle.push(await open(i)));
    await sleep(3_000);
    const after = await settledMemory(pid, inspectPort);
    const result: IdleResult = {
      name,
      sockets,
      rssBeforeMb: before.rss / 2 ** 20,
      rssAfterMb: after.rss / 2 ** 20,
      bytesPerSocket: Math.round((after.rss - before.rss) / sockets),
      heapBytesPerSocket: Math.round((after.heap - before.heap) / sockets),
    };
    log(
      `  ${name}: RSS ${fmt(result.rssBeforeMb)} MiB -> ${fmt(result.rssAfterMb)} MiB, ${result.bytesPerSocket} B per socket ` +
        `(V8 heap + external: ${result.heapBytesPerSocket} B per socket)`,
    );
    return result;
  } finally {
    for (const c of idle) c.close();
  }
}

// ---------------------------------------------------------------------------------------------
// CPU of each part, from /proc.

interface CpuSnapshot {
  at: number;
  machineBusy: number;
  ticks: Map<number, number>;
}

let clockTicks = 100;

async function processTicks(pid: number): Promise<{ ppid: number; ticks: number } | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After the name: state(0) ppid(1) ... utime(11) stime(12).
    return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return undefined; // It exited meanwhile.
  }
}

/** CPU ticks of this process and each of its descendants, and of the whole machine. */
async function cpuSnapshot(): Promise<CpuSnapshot> {
  const pids = (await readdir('/proc')).filter((d) => /^\d+$/.test(d)).map(Number);
  const stats = new Map<number, { ppid: number; ticks: number }>();
  await Promise.all(
    pids.map(async (pid) => {
      const s = await processTicks(pid);
      if (s) stats.set(pid, s);
    }),
  );
  const mine = new Set([process.pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, s] of stats) if (!mine.has(pid) && mine.has(s.ppid)) grew = !!mine.add(pid);
  }
  const ticks = new Map([...mine].map((pid) => [pid, stats.get(pid)!.ticks]));
  const cpuLine = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = cpuLine;
  return { at: performance.now(), machineBusy: user! + nice! + system! + irq! + softirq! + (steal ?? 0), ticks };
}

/** Cores used between two snapshots: this process, the given servers, the rest of our tree (PostgreSQL, Redis), the rest of the machine. */
function cpuShare(a: CpuSnapshot, b: CpuSnapshot, serverPids: number[]): CpuShare {
  const seconds = (b.at - a.at) / 1000;
  const cores = (ticks: number) => ticks / clockTicks / seconds;
  const delta = (pid: number) => (b.ticks.get(pid) ?? 0) - (a.ticks.get(pid) ?? b.ticks.get(pid) ?? 0);
  const bench = delta(process.pid);
  const servers = serverPids.reduce((sum, pid) => sum + delta(pid), 0);
  let tree = 0;
  for (const pid of b.ticks.keys()) tree += delta(pid);
  const machine = b.machineBusy - a.machineBusy;
  return {
    bench: cores(bench),
    servers: cores(servers),
    infra: cores(tree - bench - servers),
    other: Math.max(0, cores(machine - tree)),
    machine: cores(machine),
  };
}

// ---------------------------------------------------------------------------------------------
// Helpers and the report.

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

const fmt = (n: number | undefined, digits = 1) => (n === undefined || Number.isNaN(n) ? 'n/a' : n.toFixed(digits));

/** Runs task(0..count-1), at most `width` at once. */
async function inBatches(count: number, width: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(width, count) }, worker));
}

/** Client i: on server i % 3, in room floor(i / 10): each room has members on every server. */
async function connectClients(open: (i: number, server: number, room: number) => Promise<BenchClient>) {
  const clients: BenchClient[] = [];
  await inBatches(CLIENTS, 30, async (i) => {
    clients[i] = await open(i, i % SERVERS, Math.floor(i / ROOM_SIZE));
  });
  return clients;
}

function stepLine(s: StepResult): string {
  return (
    `sent ${s.sentPerSecond}/s, delivered ${s.deliveredPerSecond}/s, p50 ${fmt(s.p50, 2)} ms, p99 ${fmt(s.p99, 2)} ms, ` +
    `max ${fmt(s.max)} ms, lost ${s.lost}, errors ${s.errors}, cpu bench ${fmt(s.cpu.bench, 2)} servers ${fmt(s.cpu.servers, 2)} ` +
    `pg+redis ${fmt(s.cpu.infra, 2)} other ${fmt(s.cpu.other, 2)}${s.failure ? ` -- NOT sustained: ${s.failure}` : ''}`
  );
}

const sustained = (r: SystemResult) => Math.max(0, ...r.steps.filter((s) => !s.failure).map((s) => s.sentPerSecond));
const bestDelivered = (r: SystemResult) =>
  Math.max(0, ...r.steps.filter((s) => !s.failure).map((s) => s.deliveredPerSecond));

async function describeMachine(databaseUrl: string): Promise<string[]> {
  const run = promisify(execFile);
  const redis = (await run('redis-server', ['--version'])).stdout.trim();
  clockTicks = Number((await run('getconf', ['CLK_TCK'])).stdout.trim()) || 100;
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const { rows } = await client.query<{ version: string }>('SELECT version()');
  await client.end();
  const cpu = cpus();
  return [
    `${cpu.length} cores (${cpu[0]?.model.trim() ?? 'unknown CPU'})`,
    `node ${process.version}`,
    redis,
    rows[0]!.version,
  ];
}

/** Counters of the two stores, to count what one message costs each (includes the background work of the servers). */
class Stores {
  readonly #pg: pg.Client;
  readonly #redis: Redis;

  private constructor(pgClient: pg.Client, redis: Redis) {
    this.#pg = pgClient;
    this.#redis = redis;
  }

  static async open(databaseUrl: string, redisUrl: string): Promise<Stores> {
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    return new Stores(client, new Redis(redisUrl));
  }

  async ops(): Promise<StoreOps> {
    const { rows } = await this.#pg.query<{ n: string }>(
      'SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = current_database()',
    );
    const info = await this.#redis.info('stats');
    return {
      pgTransactions: Number(rows[0]!.n),
      redisCommands: Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? 0),
    };
  }

  async close(): Promise<void> {
    await this.#pg.end();
    this.#redis.disconnect();
  }
}

function report(machine: string[], systems: SystemResult[], idle: IdleResult[]): string {
  return [
    `Machine: ${machine.join('; ')}. The app server is bundled from src/ at the start of the run.`,
    '',
    `${SERVERS} servers per system, ${CLIENTS} clients (${CLIENTS / SERVERS} per server, straight to its port), ` +
      `${ROOMS} rooms of ${ROOM_SIZE} spread over the servers; latency counts recipients on another server than ` +
      `the sender's. Each step: ${WARMUP_MS / 1000} s warm-up + ${SECONDS} s measured, then up to ` +
      `${DRAIN_MS / 1000} s for late deliveries. CPU columns are cores used during the step by this load ` +
      `generator, the app servers, PostgreSQL + Redis, and processes outside this bench (the machine is shared: ` +
      `each step waited up to ${QUIET_WAIT_MS / 1000} s for outside load under ${CONTENDED_CORES} cores, and a ` +
      `step that failed under more outside load was run again).`,
    '',
    ...latencyTable(systems),
    '',
    ...rampTable(systems),
    '',
    ...summaryTable(systems, idle),
    '',
    ...bounds(systems, idle),
  ].join('\n');
}

function latencyTable(systems: SystemResult[]): string[] {
  const lines = [
    `## Latency at ${LATENCY_RATE} messages/s offered`,
    '',
    '| system | sent msg/s | delivered/s | p50 ms | p99 ms | max ms | ack p50 / p99 ms | lost | errors |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const sys of systems) {
    const s = sys.steps[0]!;
    const ack = s.ackP50 === undefined ? 'n/a' : `${fmt(s.ackP50, 2)} / ${fmt(s.ackP99, 2)}`;
    lines.push(
      `| ${sys.name} | ${s.sentPerSecond} | ${s.deliveredPerSecond} | ${fmt(s.p50, 2)} | ${fmt(s.p99, 2)} | ` +
        `${fmt(s.max)} | ${ack} | ${s.lost} | ${s.errors} |`,
    );
  }
  return lines;
}

function rampTable(systems: SystemResult[]): string[] {
  const lines = [
    `## Throughput ramp (sustained = generator kept up, p99 <= ${P99_BOUND_MS} ms, nothing lost, no errors)`,
    '',
    '| system | offered | sent/s | delivered/s | p50 ms | p99 ms | lost | CPU: bench / servers / pg+redis / other / machine | bench loop p99 ms | verdict |',
    '|---|---:|---:|---:|---:|---:|---:|---|---:|---|',
  ];
  for (const sys of systems) {
    for (const s of sys.steps) {
      const c = s.cpu;
      const cpu = [c.bench, c.servers, c.infra, c.other, c.machine].map((x) => fmt(x, 2)).join(' / ');
      const verdict = (s.failure || 'sustained') + (s.retried ? ` (run twice: first ${s.retried})` : '');
      lines.push(
        `| ${sys.name} | ${s.offered} | ${s.sentPerSecond} | ${s.deliveredPerSecond} | ${fmt(s.p50, 2)} | ` +
          `${fmt(s.p99, 2)} | ${s.lost} | ${cpu} | ${fmt(s.loopP99)} | ${verdict} |`,
      );
    }
  }
  return lines;
}

function summaryTable(systems: SystemResult[], idle: IdleResult[]): string[] {
  const lines = ['## Summary', '', '| figure | value | target |', '|---|---:|---|'];
  for (const sys of systems) {
    lines.push(
      `| ${sys.name}: p99 at ${LATENCY_RATE} msg/s | ${fmt(sys.steps[0]!.p99, 2)} ms | <= 10 ms |`,
      `| ${sys.name}: highest sustained rate | ${sustained(sys)} msg/s (${bestDelivered(sys)} deliveries/s) | |`,
    );
  }
  const volatile = systems.find((s) => !s.durable);
  for (const sys of volatile ? systems.filter((s) => s.durable) : []) {
    lines.push(
      `| ${sys.name} / Socket.IO volatile, sustained throughput | ${ratio(sustained(sys), sustained(volatile!))} | >= 1 |`,
    );
  }
  for (const r of idle) {
    lines.push(
      `| ${r.name}: memory per idle socket (${r.sockets} sockets; RSS ${fmt(r.rssBeforeMb)} -> ${fmt(r.rssAfterMb)} MiB) | ` +
        `${(r.bytesPerSocket / 1000).toFixed(1)} KB RSS (${(r.heapBytesPerSocket / 1000).toFixed(1)} KB V8 heap + external) | <= 40 KB |`,
    );
  }
  return lines;
}

/** CPU microseconds per message sent, by part, at a step. */
function cpuPerMessage(s: StepResult): { servers: number; infra: number; bench: number } {
  const us = (cores: number) => (cores / s.sentPerSecond) * 1e6;
  return { servers: us(s.cpu.servers), infra: us(s.cpu.infra), bench: us(s.cpu.bench) };
}

/** What bounds each figure, from what this run measured. */
function bounds(systems: SystemResult[], idle: IdleResult[]): string[] {
  const cores = cpus().length;
  const lines = ['## What bounds each figure (from this run)', ''];
  for (const sys of systems) {
    const latency = sys.steps[0]!;
    const best = [...sys.steps].filter((s) => !s.failure).sort((a, b) => b.sentPerSecond - a.sentPerSecond)[0];
    const failed = [...sys.steps].filter((s) => s.failure).sort((a, b) => a.offered - b.offered)[0];
    const at = best ?? latency;
    const per = cpuPerMessage(at);
    const total = per.servers + per.infra + per.bench;
    lines.push(
      `- **${sys.name}.** At ${LATENCY_RATE} msg/s the machine was ${fmt(latency.cpu.machine, 2)} of ${cores} cores busy ` +
        `(servers ${fmt(latency.cpu.servers, 2)}, PostgreSQL + Redis ${fmt(latency.cpu.infra, 2)}, load generator ` +
        `${fmt(latency.cpu.bench, 2)}, outside this bench ${fmt(latency.cpu.other, 2)}; generator event-loop p99 ` +
        `${fmt(latency.loopP99)} ms). At ${at.offered} msg/s each message cost ${fmt(per.servers, 0)} us of app-server CPU, ` +
        `${fmt(per.infra, 0)} us of PostgreSQL + Redis and ${fmt(per.bench, 0)} us of generator (${fmt(total, 0)} us in all, ` +
        `so ${cores} dedicated cores would top out near ${fmt((cores * 1e6) / total, 0)} msg/s), and ` +
        `${fmt(sys.pgTransactionsPerMessage, 2)} PostgreSQL transactions and ${fmt(sys.redisCommandsPerMessage, 2)} Redis ` +
        `commands (the servers' background work included).` +
        (failed
          ? ` At ${failed.offered} msg/s: ${failed.failure} (machine ${fmt(failed.cpu.machine, 2)} cores busy).`
          : ''),
    );
  }
  for (const r of idle) {
    lines.push(
      `- **Idle memory, ${r.name}.** RSS read after two forced full GCs (through the inspector) before and after ` +
        `${r.sockets} sockets: ${(r.bytesPerSocket / 1000).toFixed(1)} KB per socket; the V8 heap + external grew ` +
        `${(r.heapBytesPerSocket / 1000).toFixed(1)} KB per socket. The difference is native memory outside V8 ` +
        `(libuv handles, allocator slack, pages V8 has not returned); kernel socket buffers are not in RSS.`,
    );
  }
  lines.push(
    '',
    'Why: durable messages are stored by group commit: the sends one server gets while its previous batch is ' +
      'being stored go out together in ONE PostgreSQL statement (per room one UPDATE that takes a range of seqs, ' +
      'one multi-row INSERT; committed with fsync=on) before their acks, so transactions and WAL flushes are per ' +
      'batch, not per message. With store=redis each batch then publishes one wake-up per room (its messages ' +
      'riding along); every server hands them to its sockets in seq order, and when a wake-up is overtaken by a ' +
      'later one (concurrent senders on other servers) it waits briefly for the gap to close, then reads the ' +
      "records. With store=postgres the wake-ups are NOTIFYs sent by the batch's own transaction: no transaction " +
      'of their own, and delivered in commit order, which is seq order for a room. A Socket.IO message is one Redis ' +
      'PUBLISH that every node receives (pattern subscription) and nothing is stored. Each delivery is one ' +
      'WebSocket frame written to one socket (a write system call, which on loopback also runs the receiving ' +
      'side of TCP): the frames of a message are the same in both designs, plus an ack here. All of it, the 300 ' +
      'clients included, shares the same cores: past the saturation point every queue grows (the server runs one ' +
      "socket's frames in order, at most 32 waiting), so latency climbs to seconds rather than messages being " +
      'dropped.',
  );
  return lines;
}

// ---------------------------------------------------------------------------------------------
// The run.

async function checkFileLimit(): Promise<void> {
  const limits = await readFile('/proc/self/limits', 'utf8');
  const soft = Number(/Max open files\s+(\d+)/.exec(limits)?.[1] ?? 0);
  if (soft < IDLE_SOCKETS * 2 + 500) {
    throw new Error(
      `open file limit is ${soft}; this bench needs ${IDLE_SOCKETS * 2 + 500}: run \`ulimit -n 65536\` first`,
    );
  }
}

await checkFileLimit();
const infra = await startInfrastructure();
const stops: Array<() => Promise<void>> = [];
let open: BenchClient[] = [];
const closeClients = () => {
  for (const c of open) c.close();
  open = [];
};
let stores: Stores | undefined;
const stopAll = async () => {
  for (const stop of stops.splice(0)) await stop();
};

try {
  // BENCH_BUNDLE: a server bundle built earlier (the code before a change, for a back-to-back comparison).
  const entry = process.env.BENCH_BUNDLE ?? (await bundleServer());
  const machine = await describeMachine(infra.databaseUrl);
  stores = await Stores.open(infra.databaseUrl, infra.redisUrl);
  log(`bench: ${machine.join('; ')}; ${SECONDS} s per step`);
  const systems: SystemResult[] = [];
  let users: User[] = [];
  let statewiseRooms: string[] = [];

  for (const store of (['redis', 'postgres'] as const).filter(wanted)) {
    log(`statewise store=${store}: starting ${SERVERS} servers`);
    const nodes: Proc[] = [];
    const profilePort = PROFILE_DIR ? await freePort() : 0;
    for (let s = 1; s <= SERVERS; s++) {
      nodes.push(await startStatewise(entry, infra, store, s, s === 1 && PROFILE_DIR ? inspect(profilePort) : {}));
    }
    const profiler = PROFILE_DIR ? new Profiler(profilePort, store) : undefined;
    stops.push(...nodes.map((n) => n.stop));
    if (users.length === 0) {
      log(`  registering ${CLIENTS} users`);
      users = await registerUsers(nodes);
    }
    const rooms = await createRooms(nodes[0]!, users[0]!.token, store);
    if (statewiseRooms.length === 0) statewiseRooms = rooms;
    open = await connectClients((i, s, r) => statewiseClient(nodes[s]!, s, users[i]!.token, rooms[r]!, r));
    systems.push(await measureSystem(`statewise store=${store} (durable)`, true, nodes, open, stores!, profiler));
    closeClients();
    await stopAll();
  }

  const peer = new URL('./peers/socketio-node.ts', import.meta.url).pathname;
  if (wanted('socketio')) {
    log(`Socket.IO 4 + redis adapter: starting ${SERVERS} nodes`);
    const ioNodes: Proc[] = [];
    for (let s = 0; s < SERVERS; s++) ioNodes.push(await startProcess(peer, { REDIS_URL: infra.redisUrl }));
    stops.push(...ioNodes.map((n) => n.stop));
    open = await connectClients((_i, s, r) => socketIoClient(ioNodes[s]!, s, r));
    systems.push(await measureSystem('Socket.IO 4 + redis adapter (volatile)', false, ioNodes, open, stores!));
    closeClients();
    await stopAll();
  }

  log(`idle memory: ${IDLE_SOCKETS} sockets on one server`);
  const idle: IdleResult[] = [];
  const userOf = (i: number) => i % CLIENTS;
  const roomOf = (i: number) => Math.floor(userOf(i) / ROOM_SIZE);
  if (users.length > 0 && IDLE_SOCKETS > 0) {
    const port = await freePort();
    const lone = await startStatewise(entry, infra, 'redis', 9, inspect(port));
    stops.push(lone.stop);
    idle.push(
      await idleMemory('statewise store=redis', lone, port, IDLE_SOCKETS, (i) =>
        statewiseClient(lone, 0, users[userOf(i)]!.token, statewiseRooms[roomOf(i)]!, 0),
      ),
    );
    await stopAll();
  }
  if (wanted('socketio') && IDLE_SOCKETS > 0) {
    const port = await freePort();
    const ioLone = await startProcess(peer, { REDIS_URL: infra.redisUrl, ...inspect(port) });
    stops.push(ioLone.stop);
    idle.push(
      await idleMemory('Socket.IO 4 + redis adapter', ioLone, port, IDLE_SOCKETS, (i) =>
        socketIoClient(ioLone, 0, roomOf(i)),
      ),
    );
    await stopAll();
  }

  const text = report(machine, systems, idle);
  process.stdout.write(`\n${text}\n`);
  if (!PARTIAL) {
    await mkdir(new URL('./results/', import.meta.url), { recursive: true });
    await writeFile(
      new URL('./results/chat-delivery.md', import.meta.url),
      `# Chat delivery between servers, ${new Date().toISOString()}\n\n${text}\n`,
    );
  }
} finally {
  closeClients();
  await stopAll();
  await stores?.close();
  await infra.stop();
}
