/**
 * The contract of the supervisor's control API (`/_cluster`, and `/metrics` on the balancer's
 * origin), in one place: control-api.ts registers these routes with these schemas (params are
 * validated, answers serialized by them), and the app server's OpenAPI document
 * (src/server/openapi/cluster-paths.ts) describes the same routes from them.
 */
import { Type, type Static, type TSchema } from 'typebox';

/** The control API's own credential, a security scheme of the document (`adminToken`). */
export const ADMIN_TOKEN_SCHEME = {
  type: 'http',
  scheme: 'bearer',
  description:
    'The admin token that `npm start` prints: `Authorization: Bearer <token>`. Only the cluster control routes (tag `cluster`) read it. A caller on loopback that names the balancer as its Host (`localhost:PORT`) needs none. Unsafe requests a browser sends from another origin are refused (403 `forbidden`) with or without it.',
} as const;

const ADMIN = [{ adminToken: [] }];

const ServerStatus = Type.Enum(['starting', 'up', 'draining', 'down'], {
  type: 'string',
  description:
    '`up`: listening and passing the balancer readiness check (it gets traffic); `starting`: launched, not ready yet; `draining`: finishing its requests before it exits; `down`: not running.',
});
const ServerId = Type.String({ minLength: 1, maxLength: 64, description: 'a server id, e.g. `s1`' });
const Count = Type.Integer({ minimum: 0 });
const NullableCount = (description: string) => Type.Union([Count, Type.Null()], { description });

/** One server as GET /_cluster lists it. */
export const ClusterServerSchema = Type.Object({
  id: ServerId,
  pid: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], { description: 'its process id; null when down' }),
  status: ServerStatus,
  startedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
    description: 'when it last became ready to listen; null before its first start',
  }),
  requests: Type.Integer({ minimum: 0, description: 'requests the balancer sent it (each retry attempt counts)' }),
  connections: Type.Integer({ minimum: 0, description: 'open WebSocket tunnels through the balancer to it' }),
  rssBytes: NullableCount('resident memory of its process; null when down or the platform does not tell (non-Linux)'),
  sessionsInMemory: NullableCount(
    'sessions only this server holds (stateful mode), as of its last readiness check (a kill, a rolling restart and a mode switch ask the server afresh); null when sessions are shared',
  ),
});

const ModeSchema = Type.Enum(['stateless', 'stateful'], {
  type: 'string',
  description:
    '`stateless`: session state in the shared store, any server answers any request (round robin); `stateful`: each server keeps its sessions in its own memory, a sticky cookie keeps a visitor on one',
});
const StoreSchema = Type.Enum(['memory', 'postgres', 'redis'], { type: 'string', description: 'where sessions live' });

/** GET /_cluster: the mode, the store, and every server as the balancer sees it. */
export const ClusterViewSchema = Type.Object({
  mode: ModeSchema,
  store: StoreSchema,
  servers: Type.Array(ClusterServerSchema, {
    description: 'every server the supervisor manages, in the order they were added',
  }),
});

/** A server as the supervisor's process manager sees it (the answer to an action on it). */
export const ManagedServerSchema = Type.Object({
  id: ServerId,
  pid: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], { description: 'its process id; null when down' }),
  status: ServerStatus,
  startedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
    description: 'when it last became ready to listen; null before its first start',
  }),
  port: Type.Union([Type.Integer({ minimum: 1, maximum: 65535 }), Type.Null()], {
    description: 'the loopback port it listens on; null when not listening',
  }),
});

const ServerReply = Type.Object(
  { server: ManagedServerSchema },
  { description: 'The server, as it is when the action was taken (the action goes on in the background).' },
);

const RollingRestartReply = Type.Object(
  {
    servers: Type.Array(ServerId, { description: 'the servers that will restart, in order (those up now)' }),
    sessionsAtRisk: NullableCount(
      'stateful mode: sessions those servers hold, lost as each restarts; null when sessions are shared',
    ),
  },
  { description: 'Started: the servers restart one at a time, each drained first.' },
);

export const SwitchModeBody = Type.Object(
  { mode: ModeSchema },
  { additionalProperties: false, examples: [{ mode: 'stateful' }] },
);
export type SwitchModeBody = Static<typeof SwitchModeBody>;

const SwitchModeReply = Type.Object(
  {
    mode: ModeSchema,
    store: StoreSchema,
    servers: Type.Array(ServerId, { description: 'the servers that restart in the new mode (those not down)' }),
    sessionsLost: NullableCount(
      'leaving stateful mode: the sessions those servers held, lost with their memory; null when sessions were shared (they stay in the store, and count again once the cluster is back in stateless mode)',
    ),
  },
  { description: 'Started: every server drains and restarts in the new mode; GET /_cluster shows them up again.' },
);

export type ClusterView = Static<typeof ClusterViewSchema>;
export type SwitchModeAnswer = Static<typeof SwitchModeReply>;
export type ManagedServerView = Static<typeof ManagedServerSchema>;
export type RollingRestartAnswer = Static<typeof RollingRestartReply>;

export const ServerParams = Type.Object({ id: ServerId });
export type ServerParams = Static<typeof ServerParams>;

/** The error answers, in the one error shape (the component `Error`). */
const errors = (...statuses: number[]) => Object.fromEntries(statuses.map((s) => [s, Type.Ref('Error')]));
/** What any control route may refuse: a malformed path (400), a caller without access (403). */
const REFUSED = [400, 403];
/** Unsafe routes also refuse a body too large (413) or not JSON (415). */
const UNSAFE_REFUSED = [...REFUSED, 413, 415];
/** Routes on one server: an id too long for the router (414) or that names no server (404). */
const BY_ID_REFUSED = [...UNSAFE_REFUSED, 404, 414];

const eventStreamExample = [
  'event: log',
  'data: {"at":"2026-01-05T10:00:01.000Z","text":"s2 killed (SIGKILL): 0 sessions lost (they live in postgres)"}',
  '',
  'event: view',
  'data: {"mode":"stateless","store":"postgres","servers":[{"id":"s1","pid":4242,"status":"up","startedAt":"2026-01-05T09:58:00.000Z","requests":120,"connections":2,"rssBytes":91226112,"sessionsInMemory":null}]}',
  '',
  '',
].join('\n');

interface ControlRoute {
  method: 'GET' | 'POST' | 'DELETE';
  url: string;
  schema: {
    operationId: string;
    summary: string;
    description: string;
    tags: string[];
    security: Array<Record<string, string[]>>;
    params?: TSchema;
    body?: TSchema;
    response: Record<number, unknown>;
  };
}

const route = (
  method: ControlRoute['method'],
  url: string,
  schema: Omit<ControlRoute['schema'], 'tags' | 'security'>,
): ControlRoute => ({ method, url, schema: { ...schema, tags: ['cluster'], security: ADMIN } });

/** An action on one server; 409 `conflict` when the server is in a state the action does not apply to. */
const onServer = (action: string, operationId: string, summary: string, description: string) =>
  route('POST', `/_cluster/servers/:id/${action}`, {
    operationId,
    summary,
    description,
    params: ServerParams,
    response: { 202: ServerReply, ...errors(...BY_ID_REFUSED, 409) },
  });

/** Every route of the control API, by operationId. */
export const CONTROL_ROUTES = {
  getCluster: route('GET', '/_cluster', {
    operationId: 'getCluster',
    summary: 'The cluster: its mode, its store and every server',
    description:
      'Every server the supervisor manages, with its status as the balancer sees it (`up` means it gets traffic), the requests and WebSocket tunnels the balancer gave it, its memory and, in stateful mode, the sessions only it holds. `npm start` is ready when this lists every server `up`.',
    response: { 200: ClusterViewSchema, ...errors(...REFUSED) },
  }),
  streamClusterEvents: route('GET', '/_cluster/events', {
    operationId: 'streamClusterEvents',
    summary: "The cluster's live feed (server-sent events)",
    description:
      'A `text/event-stream` that stays open: first the recent `log` events, then a `view` event (the body of GET /_cluster) every second, and each `log` event as it happens followed by a fresh `view`. `log` data is `{at, text}`: when (ISO 8601) and what happened, in words. Read it with fetch: an EventSource cannot send the admin token.',
    response: {
      200: {
        description: 'The stream: `event: log|view` and `data: <JSON>` per event',
        content: {
          'text/event-stream': {
            schema: Type.String({ description: 'server-sent events', examples: [eventStreamExample] }),
          },
        },
      },
      ...errors(...REFUSED),
    },
  }),
  getClusterMetrics: route('GET', '/metrics', {
    operationId: 'getClusterMetrics',
    summary: "The balancer's and supervisor's metrics (Prometheus)",
    description:
      'Prometheus text format: per server, the requests the balancer sent it, its open WebSocket tunnels, whether it is up, its memory and the sessions only it holds; and the supervisor process itself. Each app server serves its own metrics on its own loopback port.',
    response: {
      200: {
        description: 'The metrics, Prometheus text format 0.0.4',
        content: { 'text/plain': { schema: Type.String({ description: 'Prometheus text exposition format' }) } },
      },
      ...errors(...REFUSED),
    },
  }),
  killServer: onServer(
    'kill',
    'killServer',
    'Kill a server (SIGKILL)',
    'SIGKILL, no goodbye: whatever lived only in its memory (stateful sessions, open sockets) is gone; the event log counts the sessions it held. Answers once it has exited. 409 `conflict` when it is down already.',
  ),
  stopServer: onServer(
    'stop',
    'stopServer',
    'Stop a server gracefully',
    'Readiness false, in-flight requests finish, sockets are told to reconnect elsewhere (1001), then it exits. Answers at once; the drain goes on (watch GET /_cluster). 409 `conflict` when it is draining or down already.',
  ),
  startServer: onServer(
    'start',
    'startServer',
    'Start a stopped server',
    'Starts it on its former port; it gets traffic once it passes the readiness check. Answers at once. 409 `conflict` when it is not down.',
  ),
  addServer: route('POST', '/_cluster/servers', {
    operationId: 'addServer',
    summary: 'Add a server',
    description: 'Starts one more app server (the next free id, e.g. `s4`); the balancer sends it traffic once ready.',
    response: { 201: ServerReply, ...errors(...UNSAFE_REFUSED) },
  }),
  removeServer: route('DELETE', '/_cluster/servers/:id', {
    operationId: 'removeServer',
    summary: 'Remove a server',
    description: 'Drains it, stops it, and takes it out of the cluster. Answers at once.',
    params: ServerParams,
    response: { 202: ServerReply, ...errors(...BY_ID_REFUSED) },
  }),
  rollingRestart: route('POST', '/_cluster/rolling-restart', {
    operationId: 'rollingRestart',
    summary: 'Restart every server, one at a time',
    description:
      'Drains and restarts the servers that are up, one at a time: the next stops only once the restarted one is ready, so in stateless mode no request fails. 409 `conflict` while one runs. Answers at once.',
    response: { 202: RollingRestartReply, ...errors(...UNSAFE_REFUSED, 409) },
  }),
  switchMode: route('POST', '/_cluster/mode', {
    operationId: 'setMode',
    summary: 'Switch the cluster between stateless and stateful',
    description:
      "Drains every server that is not down and restarts them all at once in the other mode (a short pause: the balancer answers 503 until they are ready), and switches the balancer's policy (round robin or sticky cookie). Leaving stateful mode loses the sessions and carts the servers held in memory; entering it, the sessions in the shared store are not read (sign in again) but stay there for when the cluster comes back. Orders and the ledger live in PostgreSQL in both. 409 `conflict` when the cluster is in that mode already, or while a switch or a rolling restart runs. Answers at once.",
    body: SwitchModeBody,
    response: { 202: SwitchModeReply, ...errors(...UNSAFE_REFUSED, 409) },
  }),
} satisfies Record<string, ControlRoute>;
