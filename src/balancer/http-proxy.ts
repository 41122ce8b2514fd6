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
  upstreamSilent,
  writeHttpError,
} from './error-replies.ts';
import { forwardedHeaders } from './forwarded-headers.ts';
import { chooseUpstream, needsStickyCookie, type BalancePolicy, type UpstreamRoute } from './policies.ts';
import { errorCode, failedBeforeAnswer, safeToRepeat, timedOut } from './retry-rules.ts';
import { stickySetCookie } from './sticky-cookie.ts';
import type { UpstreamSet, UpstreamState } from './upstreams.ts';

/** What the proxy forwards; the rest gets a 405 from the balancer. */
export const PROXIED_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const;
const PROXIED = new Set<string>(PROXIED_METHODS);

/**
 * Request headers not passed on: those that describe the client's connection to us, not ours to
 * the server (RFC 9110 §7.6.1), those undici sets itself from the body (content-length) or
 * refuses (expect), and those we set: Host (the server's) and X-Forwarded-*.
 */
const NOT_FORWARDED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'expect',
  'content-length',
  'host',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
]);

export interface HttpProxyOptions {
  upstreams: UpstreamSet;
  /** Read per request: the cluster's mode may be switched while it runs. */
  policy: () => BalancePolicy;
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
  /** Name, value, name, value...: host first (each attempt sets its server's), X-Forwarded-* last. */
  readonly headers: string[];
  readonly body: Buffer | undefined;
  readonly tried: Set<string>;
  /** The attempt that counts; the answer or failure of an earlier one (superseded) is dropped. */
  current: Attempt | undefined;
}

export interface HttpProxy {
  /** The node:http request handler. */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /**
   * The server went silent (its health checks time out): the requests still waiting for its answer
   * will not get one either. Those safe to repeat go to another server now; the others are answered
   * 504, since the server may have acted on them. Returns how many were waiting.
   */
  abandon(upstream: UpstreamState): number;
}

/** What an attempt reports to the proxy. */
interface AttemptEvents {
  /** The answer's head arrived (relayed), or the attempt failed: it waits no more. */
  settled(attempt: Attempt): void;
  /** It failed before the client got a status line. */
  failed(attempt: Attempt, error: Error): void;
}

/** Reasons an attempt is aborted: nobody waits for its answer any more. */
const SUPERSEDED = new Error('superseded by an attempt on another server');
const CLIENT_LEFT = new Error('the client went away');

/**
 * One try of a request on one server, as an undici dispatch handler: the answer is relayed to the
 * client as it comes (head, then body chunks with backpressure, then the end), with no promise,
 * stream wrapper or listener per request on the way.
 */
class Attempt implements Dispatcher.DispatchHandler {
  #controller: Dispatcher.DispatchController | undefined;
  #relaying = false;

  constructor(
    readonly forwarding: Forwarding,
    readonly upstream: UpstreamState,
    private readonly events: AttemptEvents,
  ) {}

  /** Drops this attempt: whatever its server says later goes nowhere, and its connection is freed. */
  supersede(): void {
    this.#controller?.abort(SUPERSEDED);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.forwarding.current !== this) controller.abort(SUPERSEDED);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (statusCode < 200) return; // 1xx: informational, the final answer follows
    const { forwarding } = this;
    this.events.settled(this);
    if (forwarding.current !== this) return controller.abort(SUPERSEDED);
    if (forwarding.res.destroyed) return controller.abort(CLIENT_LEFT);
    const head: string[] = [];
    for (const name in headers) {
      // Hop-by-hop: they describe the server's connection to us. Node frames the body itself.
      if (name === 'connection' || name === 'keep-alive' || name === 'transfer-encoding') continue;
      const value = headers[name]!;
      if (typeof value === 'string') head.push(name, value);
      else for (const each of value) head.push(name, each);
    }
    if (needsStickyCookie(forwarding.route, this.upstream)) head.push('set-cookie', stickySetCookie(this.upstream.id));
    this.#relaying = true;
    forwarding.res.writeHead(statusCode, head);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const { res } = this.forwarding;
    if (res.destroyed) return controller.abort(CLIENT_LEFT);
    if (res.write(chunk)) return;
    // A slow client: stop reading from the server until it catches up, or leaves.
    controller.pause();
    const resume = () => {
      res.off('close', leave);
      controller.resume();
    };
    const leave = () => {
      res.off('drain', resume);
      controller.abort(CLIENT_LEFT);
    };
    res.once('drain', resume);
    res.once('close', leave);
  }

  onResponseEnd(): void {
    this.forwarding.res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.events.settled(this);
    if (this.forwarding.current !== this) return;
    // Mid-answer: the client already has a status line; all we can do is cut it off.
    if (this.#relaying) return void this.forwarding.res.destroy();
    this.events.failed(this, error);
  }
}

/**
 * The hot path: a node:http request handler that sends each request through undici's keep-alive
 * pools, with nothing per request besides routing, one header list and the copy of the bytes. A
 * connection that fails before any answer marks the server down and, when the request is safe to
 * repeat, moves it to the next healthy server (each at most once). Bodies are read whole (up to
 * the limit) before forwarding, so a retried request is sent again byte for byte.
 */
export function createHttpProxy(options: HttpProxyOptions): HttpProxy {
  const { upstreams, policy, agent, bodyLimit } = options;
  /**
   * Attempts sent to each server and not answered yet (no response head), for abandon(). Weak: a
   * restarted server is a new UpstreamState, and the old one's entry must not outlive it.
   */
  const waiting = new WeakMap<UpstreamState, Set<Attempt>>();

  const events: AttemptEvents = {
    settled: (attempt) => waiting.get(attempt.upstream)?.delete(attempt),
    failed: (attempt, error) => onUpstreamError(attempt, error),
  };

  const send = (forwarding: Forwarding, upstream: UpstreamState) => {
    const attempt = new Attempt(forwarding, upstream, events);
    forwarding.current = attempt;
    forwarding.tried.add(upstream.id);
    upstream.requests++;
    let pending = waiting.get(upstream);
    if (!pending) waiting.set(upstream, (pending = new Set()));
    pending.add(attempt);
    forwarding.headers[1] = upstream.host;
    const { req } = forwarding;
    agent.dispatch(
      {
        origin: upstream.url,
        path: req.url!,
        method: req.method as Dispatcher.HttpMethod,
        headers: forwarding.headers,
        body: forwarding.body ?? null,
      },
      attempt,
    );
  };

  /** Moves a request off a server that failed it before answering, when that is safe. */
  const resend = (forwarding: Forwarding, failed: UpstreamState, unsafe: AppError) => {
    if (!safeToRepeat(forwarding.req.method!, forwarding.req.headers)) return reply(forwarding, unsafe);
    if (forwarding.route.pinned) return reply(forwarding, pinnedFailed(failed.id));
    const next = upstreams.next(forwarding.tried);
    if (!next) return reply(forwarding, noServerUp());
    send(forwarding, next);
  };

  const onUpstreamError = ({ forwarding, upstream }: Attempt, error: Error) => {
    if (forwarding.res.destroyed) return; // The client left: nothing to answer.
    if (!failedBeforeAnswer(error)) {
      options.onError(error, upstream.id);
      return reply(forwarding, upstreamFailed(upstream.id, errorCode(error)));
    }
    upstreams.failed(upstream, `connection failed (${errorCode(error)})`, { atOnce: true, silent: timedOut(error) });
    resend(forwarding, upstream, unsafeToRepeat());
  };

  const abandon = (upstream: UpstreamState): number => {
    const pending = waiting.get(upstream);
    if (!pending) return 0;
    waiting.delete(upstream);
    for (const attempt of pending) {
      const { forwarding } = attempt;
      forwarding.current = undefined;
      attempt.supersede();
      if (forwarding.res.headersSent || forwarding.res.destroyed) continue;
      resend(forwarding, upstream, upstreamSilent(upstream.id));
    }
    return pending.size;
  };

  const reply = ({ req, res }: { req: IncomingMessage; res: ServerResponse }, error: AppError) => {
    // Read what is left of the body (bounded) so the client sees this answer, not a reset.
    const keepAlive = drainUnreadBody(req) || req.complete;
    writeHttpError(res, error, keepAlive);
  };

  const forward = (req: IncomingMessage, res: ServerResponse, route: UpstreamRoute, body: Buffer | undefined) => {
    const headers = ['host', ''];
    const original = req.headers;
    for (const name in original) {
      if (NOT_FORWARDED.has(name)) continue;
      const value = original[name]!;
      if (typeof value === 'string') headers.push(name, value);
      else for (const each of value) headers.push(name, each);
    }
    const encrypted = (req.socket as Socket & { encrypted?: boolean }).encrypted === true;
    forwardedHeaders(headers, original, req.socket.remoteAddress, encrypted ? 'https' : 'http');
    send({ req, res, route, headers, body, tried: new Set(), current: undefined }, route.upstream);
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    if (!PROXIED.has(req.method!)) {
      res.setHeader('allow', PROXIED_METHODS.join(', '));
      return reply({ req, res }, methodNotAllowed(PROXIED_METHODS));
    }
    // Only origin-form targets ("/path?query"): an absolute URL or "*" is not ours to forward.
    if (req.url?.charCodeAt(0) !== 47 /* '/' */) return reply({ req, res }, invalidTarget());
    const route = chooseUpstream(upstreams, policy(), req.headers);
    if (route.kind === 'none') return reply({ req, res }, noServerUp());
    if (route.kind === 'pinned-unavailable') return reply({ req, res }, pinnedUnavailable(route.id));
    if (!hasBody(req)) return forward(req, res, route, undefined);
    readBody(req, bodyLimit).then(
      (body) => (body === 'too-large' ? reply({ req, res }, bodyTooLarge(bodyLimit)) : forward(req, res, route, body)),
      () => res.destroy(), // The client went away mid-body: nothing to answer.
    );
  };

  return { handle, abandon };
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
