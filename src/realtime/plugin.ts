import websocket from '@fastify/websocket';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { WebSocket } from 'ws';
import type { LiveCredential } from '../accounts/authenticate.ts';
import { foreignOrigin } from '../kernel/origin.ts';
import type { ServerConfig } from '../config/server-config.ts';
import { AppError } from '../kernel/errors.ts';
import { responses, Security } from '../kernel/responses.ts';
import type { StateStore } from '../state/types.ts';
import { Connection } from './connection.ts';
import { ChatEdge } from './edge.ts';
import { MAX_FRAME_BYTES, parseClientFrame } from './frames.ts';

/** Frames of one socket that may wait for the ones before them to finish. */
const MAX_WAITING = 32;

export interface RealtimeDeps {
  config: ServerConfig;
  state: StateStore;
  log: FastifyBaseLogger;
}

/**
 * `GET /ws`: the chat's live traffic (frames in ../shared/API.md). The upgrade is authenticated like
 * any request (session cookie, or an access token in `?access_token=` or the bearer header) and
 * refused from another origin: a browser sends cookies with a cross-site WebSocket, so without this
 * any page could chat as its visitor.
 */
export const realtimePlugin = fp<RealtimeDeps>(
  async (fastify, { config, state, log }) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const edge = await ChatEdge.start({
      chat: app.chat,
      state,
      revocations: app.accounts.revocations,
      settings: {
        serverId: config.serverId,
        presenceTtlMs: config.presenceTtlMs,
        recheckMs: config.wsRecheckMs,
        pingMs: config.wsPingMs,
      },
      log,
    });
    const limits = { framesPerSecond: config.wsFramesPerSecond, maxBufferedBytes: config.wsMaxBufferedBytes };
    const credentials = new WeakMap<FastifyRequest, LiveCredential>();
    app.decorate('realtime', {
      connections: () => edge.connections,
      closes: (code: number) => edge.closes.get(code) ?? 0,
      closesByCode: () => [...edge.closes].map(([code, count]) => [String(code), count] as [string, number]),
    } satisfies RealtimeStats);

    await app.register(websocket, {
      // No permessage-deflate (ws's default, said here): chat frames are small, and a room's frame is
      // encoded once and written as it is to every socket (room-hub.ts), which compression would undo.
      options: { maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false },
      errorHandler: (error, socket, request) => {
        logSocketError(request.log, error);
        socket.terminate();
      },
      // A graceful stop tells every socket to reconnect elsewhere (1001) and takes presence off.
      preClose: async () => {
        await edge.stop();
        await new Promise<void>((resolve) => app.websocketServer.close(() => resolve()));
      },
    });
    // The 101 is written by ws, not by a Fastify reply: it says who served it here (API.md).
    app.websocketServer.on('headers', (headers: string[]) => headers.push(`X-Served-By: ${config.serverId}`));

    app.route({
      method: 'GET',
      url: '/ws',
      schema: {
        operationId: 'openChatSocket',
        tags: ['chat'],
        summary: "The chat's live traffic (WebSocket)",
        security: Security.signedIn,
        description: wsDescription(limits.framesPerSecond, config.wsPingMs / 1000),
        querystring: Type.Object({
          access_token: Type.Optional(
            Type.String({ description: 'an access token, for clients that cannot send headers' }),
          ),
        }),
        response: responses(
          { 101: Type.Null({ description: 'Switching Protocols: the socket is open' }) },
          [401, 403, 426],
        ),
      },
      preValidation: async (request) => {
        assertSameOriginUpgrade(request);
        const token = request.query.access_token;
        const credential = await app.auth.liveCredential(request, token);
        if (!credential) throw app.auth.notSignedIn(request, 'Sign in first (session cookie or access_token).');
        credentials.set(request, credential);
      },
      handler: async () => {
        throw new AppError('upgrade_required', 'GET /ws is a WebSocket: open it with "Upgrade: websocket".');
      },
      wsHandler: (socket: WebSocket, request) => {
        const connection = new Connection(
          socket,
          credentials.get(request)!,
          limits,
          (code) => edge.countClose(code),
          request.raw.socket, // The upgraded TCP socket, which ws writes to.
        );
        edge.attach(connection);
        socket.on('close', () => edge.detach(connection));
        // Frames of one socket run one after another, in the order sent (subscribe, then send), and
        // at most MAX_WAITING wait their turn: when the stores fall behind, a client is told to slow
        // down instead of piling up work that would answer seconds later.
        let queue = Promise.resolve();
        let waiting = 0;
        socket.on('message', (data, isBinary) => {
          if (!connection.admit()) {
            edge.refuse(connection, 'rate_limited', `Slow down: at most ${limits.framesPerSecond} frames a second.`);
            return;
          }
          if (isBinary) {
            edge.refuse(connection, 'invalid_input', 'Frames are JSON text, not binary.');
            return;
          }
          const frame = parseClientFrame(String(data));
          if (frame instanceof AppError) {
            edge.refuse(connection, frame.code, frame.message);
            return;
          }
          if (waiting >= MAX_WAITING) {
            const about = frame.type === 'send' ? { room: frame.room, clientMsgId: frame.clientMsgId } : {};
            connection.send({
              type: 'error',
              code: 'rate_limited',
              message: `${waiting} frames of yours are still waiting; send again when they are answered.`,
              ...about,
            });
            return;
          }
          waiting++;
          queue = queue.then(() => edge.handle(connection, frame)).finally(() => waiting--);
        });
      },
    });
  },
  { name: 'realtime', dependencies: ['accounts', 'chat'], fastify: '5.x' },
);

const wsDescription = (
  framesPerSecond: number,
  pingSeconds: number,
) => `Opens the chat's live socket (authenticated by the session cookie, \`?access_token=\` or a bearer header; refused from another Origin). Frames are JSON objects with a \`type\`.

Client to server: \`{type:"subscribe", room, after?}\` (every message with seq > after, then \`subscribed\`, then live ones; without after: live ones only), \`{type:"unsubscribe", room}\` (answered \`unsubscribed\`), \`{type:"send", room, text, clientMsgId}\` (answered \`ack\`; the same clientMsgId again is the same message), \`{type:"typing", room}\` (in a subscribed room; shown to the others for about 5 s), \`{type:"read", room, seq}\`, \`{type:"ping"}\` (answered \`pong\`: how a client, a browser above all, which can neither send nor see WebSocket pings, finds out that a quiet socket's path still works; the shipped client pings after 10 s of quiet and reconnects when 10 s more bring nothing).

Server to client: \`hello {server}\` (first: the server that holds the socket), \`message\`, \`subscribed {room, lastSeq}\`, \`unsubscribed {room}\`, \`ack {clientMsgId, message}\`, \`presence {room, online}\`, \`typing {room, users}\` (the typer included), \`unread {rooms}\` (at connect, and when the user reads on any device), \`pong\`, \`error {code, message, room?, clientMsgId?}\` with a code of the error table.

A socket may send ${framesPerSecond} frames a second (bursts of twice that) before \`rate_limited\`, and have 32 frames waiting for their answers (a \`send\` refused for that carries its clientMsgId: send it again). Close codes: 1001 the server is stopping (reconnect), 1009 a frame over ${MAX_FRAME_BYTES} bytes, 4001 the session or token ended, 4008 the socket did not read what it was sent (resume with the last seq), 4029 it kept sending far over its rate. The server pings every socket every ${pingSeconds} s and cuts one that has not answered the previous ping (browsers and WebSocket libraries answer by themselves), so a client gone without a goodbye goes offline.`;

/**
 * A client that breaks the WebSocket protocol (a frame over the limit, bad UTF-8, a bad opcode: ws
 * has already closed it with the matching code) or drops its connection did it, as with a 4xx: it
 * is logged at info, not as a server error.
 */
function logSocketError(log: FastifyBaseLogger, error: Error & { code?: string }): void {
  const byClient = error.code?.startsWith('WS_ERR_') || error.code === 'ECONNRESET' || error.code === 'EPIPE';
  if (byClient) log.info({ code: error.code, reason: error.message }, 'socket closed: a client fault');
  else log.error({ err: error }, 'socket error');
}

/** What the live edge tells about itself (the cluster view, metrics, tests). */
export interface RealtimeStats {
  /** Sockets open on this server. */
  connections(): number;
  /** How many sockets this server closed with `code` since it started. */
  closes(code: number): number;
  /** Every close code so far with its count. */
  closesByCode(): Array<[string, number]>;
}

declare module 'fastify' {
  interface FastifyInstance {
    realtime: RealtimeStats;
  }
}

/** The upgrade is a GET, so the CSRF check of /api does not see it: a foreign Origin is refused here. */
function assertSameOriginUpgrade(request: FastifyRequest): void {
  const origin = foreignOrigin(request);
  if (origin !== undefined) {
    throw new AppError('csrf_rejected', `WebSocket connections from ${origin} are not allowed here.`);
  }
}
