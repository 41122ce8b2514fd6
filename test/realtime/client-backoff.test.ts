/**
 * The shipped client's reconnects: exponential backoff up to a cap, full jitter under it (so the
 * clients of a dead server do not all come back in the same millisecond), and a fresh start after
 * a connection that opened. The server is a loopback port nobody listens on, then one that does.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { after, describe, it } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { ChatClient, type SocketLike } from '../../src/realtime/client.ts';
import { waitFor } from '../support/wait.ts';

const MIN_MS = 20;
const MAX_MS = 160;
/** Timers may fire up to a millisecond early (rounding); a refused connect takes a little too. */
const EARLY_MS = 2;

/** A loopback port with nothing listening on it. */
async function deadPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** A client that records when each connection attempt starts. */
function recordingClient(url: () => string, random?: () => number, maxDelayMs = MAX_MS) {
  const attempts: number[] = [];
  const client = new ChatClient({
    url,
    open: (u) => {
      attempts.push(performance.now());
      return new WebSocket(u) as unknown as SocketLike;
    },
    minDelayMs: MIN_MS,
    maxDelayMs,
    heartbeatMs: 0,
    random,
  });
  const gaps = () => attempts.slice(1).map((t, i) => t - attempts[i]!);
  return { client, attempts, gaps };
}

describe('the chat client reconnecting', () => {
  const clients: ChatClient[] = [];
  after(() => clients.forEach((c) => c.close()));

  it('waits twice as long after each failed attempt, up to the cap', async () => {
    const url = `ws://127.0.0.1:${await deadPort()}/ws`;
    // The jitter pinned at its top: each wait is the whole ceiling, 20, 40, 80, 160, 160 ms.
    const { client, attempts, gaps } = recordingClient(
      () => url,
      () => 0.999,
    );
    clients.push(client.connect());
    await waitFor(() => attempts.length >= 6, { what: 'six attempts', timeoutMs: 10_000 });
    client.close();
    const ceilings = [20, 40, 80, 160, 160];
    gaps()
      .slice(0, 5)
      .forEach((gap, i) => {
        assert.ok(gap >= ceilings[i]! - EARLY_MS, `wait ${i + 1}: ${gap.toFixed(1)} ms, at least ${ceilings[i]}`);
        // Only a sanity bound above: a busy machine runs timers late, never early.
        assert.ok(gap < ceilings[i]! * 2 + 500, `wait ${i + 1}: ${gap.toFixed(1)} ms`);
      });
  });

  it('draws each wait at random under the ceiling (full jitter)', async () => {
    const url = `ws://127.0.0.1:${await deadPort()}/ws`;
    const { client, attempts, gaps } = recordingClient(() => url);
    clients.push(client.connect());
    await waitFor(() => attempts.length >= 15, { what: '15 attempts', timeoutMs: 10_000 });
    client.close();
    // From the 4th wait on the ceiling is the cap. Were there no jitter, every wait would be the
    // whole ceiling, all alike; with full jitter 10 waits spread over 0 to 160 ms, and all 10 within
    // 32 ms of each other happens about once in 240,000 runs. (A busy machine's late timers add
    // spread; they do not take it away.)
    const capped = gaps().slice(3, 13);
    const spread = Math.max(...capped) - Math.min(...capped);
    assert.ok(spread > MAX_MS * 0.2, `the waits spread: ${capped.map((g) => g.toFixed(0)).join(', ')} ms`);
  });

  it('starts again from the shortest wait after a connection that opened', async () => {
    const port = await deadPort();
    // Six failed attempts: waits of 20, 40, 80, 160, 320, 640 ms; a seventh would wait 1,280.
    const { client, attempts } = recordingClient(
      () => `ws://127.0.0.1:${port}/ws`,
      () => 0.999,
      5_000,
    );
    let droppedAt = 0;
    let opened = false;
    client.on('status', (status) => {
      if (status === 'open') opened = true;
      else if (status === 'reconnecting' && opened && !droppedAt) droppedAt = performance.now();
    });
    clients.push(client.connect());
    await waitFor(() => attempts.length >= 7, { what: 'seven attempts', timeoutMs: 10_000 });
    // Now something listens there: the next attempt opens; the server then drops it.
    const server = new WebSocketServer({ port, host: '127.0.0.1' });
    after(() => server.close());
    server.on('connection', (socket) => socket.terminate());
    await waitFor(() => droppedAt > 0, { what: 'an open, then the drop', timeoutMs: 10_000 });
    const before = attempts.length;
    await waitFor(() => attempts.length > before, { what: 'the attempt after the drop', timeoutMs: 10_000 });
    client.close();
    const wait = attempts.at(-1)! - droppedAt;
    // 20 ms after a reset; 1,280 without. Half of that leaves a busy machine's late timers room.
    assert.ok(wait < 640, `the first wait after an open is the shortest again: ${wait.toFixed(1)} ms`);
  });
});
