import websocket from '@fastify/websocket';
import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { WebSocket } from 'ws';
import type { LiveCredential } from '../accounts/authenticate.ts';
import type { ServerConfig } from '../config/server-config.ts';
import { AppError } from '../kernel/errors.ts';
import type { StateStore } from '../state/types.ts';
import { Connection } from './connection.ts';
import { ChatEdge } from './edge.ts';
import { MAX_FRAME_BYTES, parseClientFrame } from './frames.ts';

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
  async (app, { config, state, log }) => {
    const edge = await ChatEdge.start({
      chat: app.chat,
      state,
      revocations: app.accounts.revocations,
      settings: { serverId: config.serverId, presenceTtlMs: config.presenceTtlMs, recheckMs: config.wsRecheckMs },
      log,
    });
    const limits = { framesPerSecond: config.wsFramesPerSecond, maxBufferedBytes: config.wsMaxBufferedBytes };
    const credentials = new WeakMap<FastifyRequest, LiveCredential>();
    app.decorate('realtime', {
      connections: () => edge.connections,
      closes: (code: number) => edge.closes.get(code) ?? 0,
    } satisfies RealtimeStats);

    await app.register(websocket, {
      options: { maxPayload: MAX_FRAME_BYTES },
      // A graceful stop tells every socket to reconnect elsewhere (1001) and takes presence off.
      preClose: async () => {
        await edge.stop();
        await new Promise<void>((resolve) => app.websocketServer.close(() => resolve()));
      },
    });

    app.get(
      '/ws',
      {
        websocket: true,
        schema: { hide: true },
        preValidation: async (request) => {
          assertSameOriginUpgrade(request);
          const query = request.query as { access_token?: unknown };
          const token = typeof query.access_token === 'string' ? query.access_token : undefined;
          const credential = await app.auth.liveCredential(request, token);
          if (!credential) throw new AppError('not_authenticated', 'Sign in first (session cookie or access_token).');
          credentials.set(request, credential);
        },
      },
      (socket: WebSocket, request) => {
        const connection = new Connection(socket, credentials.get(request)!, limits, (code) => edge.countClose(code));
        edge.attach(connection);
        socket.on('close', () => edge.detach(connection));
        // Frames of one socket run one after another, in the order sent (subscribe, then send).
        let queue = Promise.resolve();
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
          queue = queue.then(() => edge.handle(connection, frame));
        });
      },
    );
  },
  { name: 'realtime', dependencies: ['accounts', 'chat'], fastify: '5.x' },
);

/** What the live edge tells about itself (the cluster view, metrics, tests). */
export interface RealtimeStats {
  /** Sockets open on this server. */
  connections(): number;
  /** How many sockets this server closed with `code` since it started. */
  closes(code: number): number;
}

declare module 'fastify' {
  interface FastifyInstance {
    realtime: RealtimeStats;
  }
}

/** The upgrade is a GET, so the CSRF check of /api does not see it: a foreign Origin is refused here. */
function assertSameOriginUpgrade(request: FastifyRequest): void {
  const origin = request.headers.origin;
  if (origin === undefined) return; // Not a browser.
  let host: string | undefined;
  try {
    host = new URL(origin).host;
  } catch {
    host = undefined;
  }
  if (host !== request.host) {
    throw new AppError('csrf_rejected', `WebSocket connections from ${origin} are not allowed here.`);
  }
}
