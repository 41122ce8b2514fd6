/**
 * A TCP proxy that adds a fixed delay to every chunk, in each direction: latency for a kernel
 * without the netem qdisc. Each direction is one FIFO queue with one timer for its head, so bytes
 * leave in the order they came (a setTimeout per chunk could fire out of order) and a burst costs
 * the delay once, not once per chunk. The end of a stream is queued behind its data.
 */
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';

export interface DelayProxy {
  /** host:port to give clients instead of the target's. */
  host: string;
  port: number;
  close(): Promise<void>;
}

/** Bytes queued in one direction before its source is paused (the proxy is not a bottomless buffer). */
const HIGH_WATER = 1024 * 1024;

interface Queued {
  due: number;
  /** null: the source ended; end the destination after what came before. */
  chunk: Buffer | null;
}

/** Forwards `from` to `to`, each chunk `delayMs` after it arrived. */
function delayedPipe(from: Socket, to: Socket, delayMs: number): void {
  // Short in practice (what arrived within the last delayMs), so shift() costs little.
  const queue: Queued[] = [];
  let bytes = 0;
  let timer: NodeJS.Timeout | undefined;

  const flush = () => {
    timer = undefined;
    const now = performance.now();
    while (queue.length > 0 && queue[0]!.due <= now) {
      const { chunk } = queue.shift()!;
      if (chunk === null) {
        to.end();
        continue;
      }
      bytes -= chunk.length;
      if (!to.destroyed) to.write(chunk);
    }
    if (bytes < HIGH_WATER && from.isPaused()) from.resume();
    schedule();
  };
  const schedule = () => {
    if (timer !== undefined || queue.length === 0) return;
    // Timers have millisecond resolution: round up, never deliver early.
    timer = setTimeout(flush, Math.max(0, Math.ceil(queue[0]!.due - performance.now())));
  };

  from.on('data', (chunk: Buffer) => {
    queue.push({ due: performance.now() + delayMs, chunk });
    bytes += chunk.length;
    if (bytes >= HIGH_WATER) from.pause();
    schedule();
  });
  from.on('end', () => {
    queue.push({ due: performance.now() + delayMs, chunk: null });
    schedule();
  });
  from.on('close', () => {
    // A reset (not an orderly end) cuts the other side too; queued bytes are lost, as on a wire.
    if (from.errored) {
      clearTimeout(timer);
      to.destroy();
    }
  });
}

/** Listens on 127.0.0.1 (any free port) and forwards to `target`, `delayMs` later each way. */
export async function startDelayProxy(target: { host: string; port: number }, delayMs: number): Promise<DelayProxy> {
  const sockets = new Set<Socket>();
  // Half-open allowed: each direction ends when its own queued end is delivered, not at once.
  const server: Server = createServer({ noDelay: true, allowHalfOpen: true }, (client) => {
    const upstream = connect({ host: target.host, port: target.port, noDelay: true, allowHalfOpen: true });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
    }
    delayedPipe(client, upstream, delayMs);
    delayedPipe(upstream, client, delayMs);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    host: '127.0.0.1',
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

// As a process of its own (DELAY_PROXY_TARGET=host:port, DELAY_PROXY_MS): its timers then never
// wait behind a load generator's event loop, which would add its own delay on top.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [host, port] = (process.env.DELAY_PROXY_TARGET ?? '').split(':');
  const proxy = await startDelayProxy({ host: host!, port: Number(port) }, Number(process.env.DELAY_PROXY_MS ?? 5));
  process.send?.({ type: 'listening', port: proxy.port });
  process.on('disconnect', () => process.exit(0));
}
