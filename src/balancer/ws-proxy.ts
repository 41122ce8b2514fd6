import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { noServerUp, pinnedFailed, pinnedUnavailable, upstreamFailed, writeUpgradeError } from './error-replies.ts';
import { forwardedHeaders } from './forwarded-headers.ts';
import { chooseUpstream, needsStickyCookie, type BalancePolicy, type UpstreamRoute } from './policies.ts';
import { errorCode, failedBeforeAnswer, timedOut } from './retry-rules.ts';
import { stickySetCookie } from './sticky-cookie.ts';
import type { UpstreamSet, UpstreamState } from './upstreams.ts';

/** Request headers the handshake gets from us instead of from the client. */
const REPLACED = new Set(['host', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']);

/** The client's handshake as the upstream should see it: Host is the server, plus X-Forwarded-*. */
function handshake(req: IncomingMessage, upstream: UpstreamState): string {
  let text = `${req.method} ${req.url} HTTP/1.1\r\nhost: ${upstream.host}\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    if (!REPLACED.has(raw[i]!.toLowerCase())) text += `${raw[i]}: ${raw[i + 1]}\r\n`;
  }
  const forwarded: string[] = [];
  const encrypted = (req.socket as Socket & { encrypted?: boolean }).encrypted === true;
  forwardedHeaders(forwarded, req.headers, req.socket.remoteAddress, encrypted ? 'https' : 'http');
  for (let i = 0; i < forwarded.length; i += 2) text += `${forwarded[i]}: ${forwarded[i + 1]}\r\n`;
  return `${text}\r\n`;
}

/** Adds our Set-Cookie to the server's handshake response, right after its status line. */
function withCookie(chunk: Buffer, cookie: string): Buffer {
  const end = chunk.indexOf('\r\n');
  if (end <= 0) return chunk;
  return Buffer.concat([
    chunk.subarray(0, end),
    Buffer.from(`\r\nset-cookie: ${cookie}`, 'latin1'),
    chunk.subarray(end),
  ]);
}

/**
 * WebSocket upgrades, proxied as bytes: the same routing as HTTP (pin header, sticky cookie,
 * round robin), then the handshake goes to the chosen server and the two sockets are piped.
 * Frames are never parsed, so a message costs the balancer nothing but the copy.
 */
export class UpgradeProxy {
  /** Open client sockets and their servers (the HTTP server no longer tracks upgraded ones). */
  readonly #open = new Map<Duplex, UpstreamState>();

  constructor(
    private readonly upstreams: UpstreamSet,
    /** Read per upgrade: the cluster's mode may be switched while it runs. */
    private readonly policy: () => BalancePolicy,
  ) {}

  readonly handle = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // Until the tunnel exists, a client reset must only end this socket (never crash the process).
    const early = () => socket.destroy();
    socket.on('error', early);
    const route = chooseUpstream(this.upstreams, this.policy(), req.headers);
    if (route.kind === 'none') return writeUpgradeError(socket, noServerUp());
    if (route.kind === 'pinned-unavailable') return writeUpgradeError(socket, pinnedUnavailable(route.id));
    this.#attempt({ req, socket, head, route, early, tried: new Set() }, route.upstream);
  };

  closeAll(): void {
    for (const socket of this.#open.keys()) socket.destroy();
    this.#open.clear();
  }

  /**
   * Cuts the tunnels to a server that went silent: their clients would otherwise wait for their
   * own heartbeats to notice, and reconnect (elsewhere) only then. Returns how many were cut.
   */
  closeTo(upstream: UpstreamState): number {
    let closed = 0;
    for (const [socket, server] of this.#open) {
      if (server !== upstream) continue;
      socket.destroy();
      closed++;
    }
    return closed;
  }

  /** Connects to one server; a refused connection moves the upgrade to the next (a GET is safe). */
  #attempt(upgrade: Upgrade, upstream: UpstreamState): void {
    const { socket, route, tried } = upgrade;
    tried.add(upstream.id);
    upstream.requests++;
    const backend = connect(upstream.port, upstream.hostname);
    const abandon = () => backend.destroy();
    socket.once('close', abandon);
    const failed = (error: Error) => {
      socket.off('close', abandon);
      backend.destroy();
      if (socket.destroyed) return;
      if (!failedBeforeAnswer(error)) return writeUpgradeError(socket, upstreamFailed(upstream.id, errorCode(error)));
      this.upstreams.failed(upstream, `connection failed (${errorCode(error)})`, {
        atOnce: true,
        silent: timedOut(error),
      });
      if (route.pinned) return writeUpgradeError(socket, pinnedFailed(upstream.id));
      const next = this.upstreams.next(tried);
      if (!next) return writeUpgradeError(socket, noServerUp());
      this.#attempt(upgrade, next);
    };
    backend.once('error', failed);
    backend.once('connect', () => {
      socket.off('close', abandon);
      backend.off('error', failed);
      this.#tunnel(upgrade, upstream, backend);
    });
  }

  #tunnel({ req, socket, head, route, early }: Upgrade, upstream: UpstreamState, backend: Socket): void {
    upstream.connections++;
    this.#open.set(socket, upstream);
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      upstream.connections--;
      this.#open.delete(socket);
      backend.destroy();
      socket.destroy();
    };
    socket.off('error', early);
    for (const stream of [socket, backend]) {
      stream.on('error', close);
      stream.on('close', close);
    }
    if (socket.destroyed) return close();

    backend.setNoDelay(true);
    req.socket.setNoDelay(true);
    backend.write(handshake(req, upstream));
    if (head.length > 0) backend.write(head);
    if (needsStickyCookie(route, upstream)) {
      // The client learns its server on the handshake response, as it would on an HTTP answer.
      backend.once('data', (chunk: Buffer) => {
        socket.write(withCookie(chunk, stickySetCookie(upstream.id)));
        backend.pipe(socket);
      });
    } else {
      backend.pipe(socket);
    }
    socket.pipe(backend);
  }
}

interface Upgrade {
  req: IncomingMessage;
  socket: Duplex;
  head: Buffer;
  route: UpstreamRoute;
  /** The error listener used before the tunnel exists. */
  early: () => void;
  tried: Set<string>;
}
