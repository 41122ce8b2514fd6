import type { IncomingMessage } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** Bodies up to this size are read and thrown away after an early answer; larger ones are cut off. */
export const LINGER_MAX_BYTES = 16 * 1024 * 1024;
/** A client that takes longer than this to finish its body is cut off. */
export const LINGER_MAX_MS = 5_000;

/**
 * A server that answers before it has read the request body (413, 415) and then closes the
 * connection makes the client's next write meet a TCP reset, and a reset throws away the answer the
 * client had not read yet: a client that sends its whole body before reading sees EPIPE, never the
 * 413. So, as nginx's lingering close does, the rest of the body is read and discarded, up to
 * LINGER_MAX_BYTES and LINGER_MAX_MS, and the connection then stays open for the next request.
 * Past either bound the socket is destroyed. Fastify asks to close (Connection: close) on every
 * body error; that request is withdrawn here, because reading to the end makes the connection safe.
 */
export function lingerOnUnreadBody(request: FastifyRequest, reply: FastifyReply): void {
  if (drainUnreadBody(request.raw)) reply.removeHeader('connection');
}

/**
 * The same for a bare node:http request: reads and discards what is left of the body within the
 * bounds. False when there is nothing to read or too much (then the connection must close).
 */
export function drainUnreadBody(raw: IncomingMessage): boolean {
  // `complete` is not a boolean on a request injected without a socket (app.inject): nothing to linger on.
  if (typeof raw.complete !== 'boolean' || raw.complete || raw.readableEnded || raw.destroyed) return false;
  const declared = Number(raw.headers['content-length'] ?? 0);
  if (declared > LINGER_MAX_BYTES) return false; // Too much to read: Connection: close stays.
  let discarded = 0;
  const cutOff = () => raw.socket?.destroy?.();
  const timer = setTimeout(cutOff, LINGER_MAX_MS);
  timer.unref();
  raw.removeAllListeners('data');
  raw.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > LINGER_MAX_BYTES) cutOff();
  });
  raw.once('end', () => clearTimeout(timer));
  raw.once('close', () => clearTimeout(timer));
  raw.resume();
  return true;
}
