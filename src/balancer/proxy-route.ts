import replyFrom, { type FastifyReplyFromHooks } from '@fastify/reply-from';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Agent } from 'undici';
import { sendAppError, type ReplyLike } from '../kernel/http-errors.ts';
import { lingerOnUnreadBody } from '../kernel/linger.ts';
import {
  noServerUp,
  pinnedFailed,
  pinnedUnavailable,
  toBalancerError,
  unsafeToRepeat,
  upstreamFailed,
} from './error-replies.ts';
import { addForwardedHeaders } from './forwarded-headers.ts';
import { chooseUpstream, needsStickyCookie, type BalancePolicy, type UpstreamRoute } from './policies.ts';
import { keepBodiesRaw } from './raw-bodies.ts';
import { errorCode, failedBeforeAnswer, safeToRepeat } from './retry-rules.ts';
import { appendSetCookie, stickySetCookie } from './sticky-cookie.ts';
import type { UpstreamSet, UpstreamState } from './upstreams.ts';

/** What the catch-all route forwards; the rest gets a 405 from the balancer. */
export const PROXIED_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const;

export interface ProxyOptions {
  upstreams: UpstreamSet;
  policy: BalancePolicy;
  /** One shared keep-alive pool for every upstream (never one per request). */
  agent: Agent;
  bodyLimit: number;
}

/** The reply of the route, or the one reply-from hands to onError (typed for any server kind). */
interface ProxyReply extends ReplyLike {
  from(source?: string, options?: FastifyReplyFromHooks): unknown;
}

/** One client request on its way: the server it is trying now, and those it tried already. */
interface Forwarding {
  upstream: UpstreamState;
  readonly route: UpstreamRoute;
  readonly tried: Set<string>;
  readonly hooks: FastifyReplyFromHooks;
}

// reply-from must never retry by itself: it would send a GET that got a 503 to the same server again.
const noRetry = () => null;

/**
 * The proxy: a catch-all route that forwards to the chosen server, in its own plugin scope so the
 * raw body parsers and error handler do not reach the control routes. A connection that fails
 * before any answer marks the server down and, when the request is safe to repeat, moves it to
 * the next healthy server (each at most once).
 */
export function proxyRoutes({ upstreams, policy, agent, bodyLimit }: ProxyOptions): FastifyPluginAsync {
  const send = (reply: ProxyReply, request: FastifyRequest, forwarding: Forwarding) => {
    forwarding.tried.add(forwarding.upstream.id);
    forwarding.upstream.requests++;
    return reply.from(forwarding.upstream.url + request.url, forwarding.hooks);
  };

  const onUpstreamError = (reply: ProxyReply, request: FastifyRequest, forwarding: Forwarding, error: unknown) => {
    const failed = forwarding.upstream;
    if (!failedBeforeAnswer(error)) return sendAppError(reply, upstreamFailed(failed.id, errorCode(error)));
    upstreams.failed(failed, `connection failed (${errorCode(error)})`, true);
    if (!safeToRepeat(request.method, request.headers)) return sendAppError(reply, unsafeToRepeat());
    if (forwarding.route.pinned) return sendAppError(reply, pinnedFailed(failed.id));
    const next = upstreams.next(forwarding.tried);
    if (!next) return sendAppError(reply, noServerUp());
    forwarding.upstream = next;
    return send(reply, request, forwarding);
  };

  const start = (request: FastifyRequest, route: UpstreamRoute): Forwarding => {
    const body = Buffer.isBuffer(request.body) ? request.body : undefined;
    const forwarding: Forwarding = {
      upstream: route.upstream,
      route,
      tried: new Set(),
      hooks: {
        // The bytes as received; without this reply-from would JSON.stringify a JSON body again.
        ...(body && {
          body,
          contentType: request.headers['content-type'] ?? 'application/octet-stream',
        }),
        retryDelay: noRetry,
        rewriteRequestHeaders: (_request, headers) => {
          addForwardedHeaders(headers, request.headers, request.socket.remoteAddress, request.protocol);
          return headers;
        },
        rewriteHeaders: (headers) => {
          // Hop-by-hop: they describe our connection to the server, not the client's to us.
          delete headers.connection;
          delete headers['keep-alive'];
          if (needsStickyCookie(route, forwarding.upstream))
            appendSetCookie(headers, stickySetCookie(forwarding.upstream.id));
          return headers;
        },
        onError: (reply, { error }) => void onUpstreamError(reply, request, forwarding, error),
      },
    };
    return forwarding;
  };

  return async (app) => {
    keepBodiesRaw(app);
    app.setErrorHandler((error, request, reply) => {
      const answer = toBalancerError(error, bodyLimit);
      if (answer.status >= 500) request.log.error({ err: error }, 'balancer failed');
      lingerOnUnreadBody(request, reply);
      return sendAppError(reply, answer);
    });
    await app.register(replyFrom, { undici: agent, disableRequestLogging: true });

    app.route({
      method: [...PROXIED_METHODS],
      url: '/*',
      // reply-from logs every upstream failure at warn with a stack; UpstreamSet already logs the
      // state change once, so the route's request logger only keeps errors.
      logLevel: 'error',
      handler: (request, reply) => {
        const route = chooseUpstream(upstreams, policy, request.headers);
        if (route.kind === 'none') return sendAppError(reply, noServerUp());
        if (route.kind === 'pinned-unavailable') return sendAppError(reply, pinnedUnavailable(route.id));
        send(reply, request, start(request, route));
        return reply;
      },
    });
  };
}
