import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Agent, Dispatcher } from 'undici';
import type { AppError } from '../kernel/errors.ts';
import { drainUnreadBody } from '../kernel/linger.ts';
import {
  bodyTooLarge,
  invalidTarget,
  methodNotAllowed,
  noServerUp,
  pinnedFailed,
  pinnedUnavailable,
  unsafeToRepeat,
  upstreamFailed,
  writeHttpError,
} from './error-replies.ts';
import { addForwardedHeaders } from './forwarded-headers.ts';
import { chooseUpstream, needsStickyCookie, type BalancePolicy, type UpstreamRoute } from './policies.ts';
import { errorCode, failedBeforeAnswer, safeToRepeat } from './retry-rules.ts';
import { appendSetCookie, stickySetCookie } from './sticky-cookie.ts';
import type { UpstreamSet, UpstreamState } from './upstreams.ts';

/** What the proxy forwards; the rest gets a 405 from the balancer. */
export const PROXIED_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const;
const PROXIED = new Set<string>(PROXIED_METHODS);

/**
 * Request headers that describe the client's connection to us, not ours to the server (RFC 9110
 * §7.6.1), plus those undici sets itself from the body (content-length) or refuses (expect).
 */
const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'expect',
  'content-length',
] as const;

export interface HttpProxyOptions {
  upstreams: UpstreamSet;
  policy: BalancePolicy;
  /** One shared keep-alive pool for every upstream (never one per request). */
  agent: Agent;
  /** Largest request body forwarded; a larger one is answered 413 by the balancer. */
  bodyLimit: number;
  /**
   * A server that failed in a way no retry covers (a timeout, a broken answer): the client gets a
   * 502, the operator this. A refused or reset connection is not reported here: it marks the
   * server down, which the upstream set reports.
   */
  onError(error: unknown, serverId: string): void;
}

/** One client request on its way: the server it is trying now, and those it tried already. */
interface Forwarding {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly route: UpstreamRoute;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer | undefined;
  readonly tried: Set<string>;
  upstream: UpstreamState;
}

/**
 * The hot path: a node:http request handler that streams each request into undici's keep-alive
 * pools, with nothing per request besides routing, one header copy and the copy of the bytes. A
 * connection that fails before any answer marks the server down and, when the request is safe to
 * repeat, moves it to the next healthy server (each at most once). Bodies are read whole (up to
 * the limit) before forwarding, so a retried request is sent again byte for byte.
 */
export function createHttpProxy(options: HttpProxyOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { upstreams, policy, agent, bodyLimit } = options;

  const send = (forwarding: Forwarding) => {
    const { upstream, req, res } = forwarding;
    forwarding.tried.add(upstream.id);
    upstream.requests++;
    forwarding.headers.host = upstream.host;
    const request: Dispatcher.RequestOptions = {
      origin: upstream.url,
      path: req.url!,
      method: req.method as Dispatcher.HttpMethod,
      headers: forwarding.headers,
      body: forwarding.body ?? null,
    };
    agent
      .stream(request, ({ statusCode, headers }) => {
        const answer = headers as IncomingHttpHeaders;
        // Hop-by-hop: they describe the server's connection to us. Node frames the body itself.
        delete answer.connection;
        delete answer['keep-alive'];
        delete answer['transfer-encoding'];
        if (needsStickyCookie(forwarding.route, upstream)) appendSetCookie(answer, stickySetCookie(upstream.id));
        res.writeHead(statusCode, answer);
        return res;
      })
      .catch((error: unknown) => onUpstreamError(forwarding, error));
  };

  const onUpstreamError = (forwarding: Forwarding, error: unknown) => {
    const { res, req } = forwarding;
    // Mid-answer: the client already has a status line; all we can do is cut it off.
    if (res.headersSent) return void res.destroy();
    if (res.destroyed) return; // The client left; undici aborted the request for it.
    const failed = forwarding.upstream;
    if (!failedBeforeAnswer(error)) {
      options.onError(error, failed.id);
      return reply(forwarding, upstreamFailed(failed.id, errorCode(error)));
    }
    upstreams.failed(failed, `connection failed (${errorCode(error)})`, true);
    if (!safeToRepeat(req.method!, req.headers)) return reply(forwarding, unsafeToRepeat());
    if (forwarding.route.pinned) return reply(forwarding, pinnedFailed(failed.id));
    const next = upstreams.next(forwarding.tried);
    if (!next) return reply(forwarding, noServerUp());
    forwarding.upstream = next;
    send(forwarding);
  };

  const reply = ({ req, res }: { req: IncomingMessage; res: ServerResponse }, error: AppError) => {
    // Read what is left of the body (bounded) so the client sees this answer, not a reset.
    const keepAlive = drainUnreadBody(req) || req.complete;
    writeHttpError(res, error, keepAlive);
  };

  const forward = (req: IncomingMessage, res: ServerResponse, route: UpstreamRoute, body: Buffer | undefined) => {
    const headers = { ...req.headers };
    for (const name of HOP_BY_HOP) delete headers[name];
    const encrypted = (req.socket as Socket & { encrypted?: boolean }).encrypted === true;
    addForwardedHeaders(headers, req.headers, req.socket.remoteAddress, encrypted ? 'https' : 'http');
    send({ req, res, route, headers, body, tried: new Set(), upstream: route.upstream });
  };

  return (req, res) => {
    if (!PROXIED.has(req.method!)) {
      res.setHeader('allow', PROXIED_METHODS.join(', '));
      return reply({ req, res }, methodNotAllowed(PROXIED_METHODS));
    }
    // Only origin-form targets ("/path?query"): an absolute URL or "*" is not ours to forward.
    if (req.url?.charCodeAt(0) !== 47 /* '/' */) return reply({ req, res }, invalidTarget());
    const route = chooseUpstream(upstreams, policy, req.headers);
    if (route.kind === 'none') return reply({ req, res }, noServerUp());
    if (route.kind === 'pinned-unavailable') return reply({ req, res }, pinnedUnavailable(route.id));
    if (!hasBody(req)) return forward(req, res, route, undefined);
    readBody(req, bodyLimit).then(
      (body) => (body === 'too-large' ? reply({ req, res }, bodyTooLarge(bodyLimit)) : forward(req, res, route, body)),
      () => res.destroy(), // The client went away mid-body: nothing to answer.
    );
  };
}

/** A request carries a body when it says so (RFC 9112 §6.3); most GETs do not, and skip reading. */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
}

/** The whole body, or 'too-large' as soon as it passes the limit (the rest is drained by the reply). */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | 'too-large'> {
  if (Number(req.headers['content-length'] ?? 0) > limit) return Promise.resolve('too-large');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.off('end', onEnd);
        resolve('too-large');
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', reject);
    req.once('close', () => {
      if (!req.complete) reject(new Error('client closed the request'));
    });
  });
}
