/**
 * The shipped client's bookkeeping by seq, against a scripted `/ws` server (a real WebSocket
 * server that sends exactly the frames a test gives it, duplicates and all): each message is
 * handed on once, in order, whatever the server repeats; after a reconnect the client subscribes
 * with the last seq it has, and sends again, with the same clientMsgId, what was never
 * acknowledged. The real server's side: test/realtime/edge.test.ts and test/e2e/chat-kill.test.ts.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, describe, it } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { ChatClient, type Message, type SocketLike } from '../../src/realtime/client.ts';
import { waitFor } from '../support/wait.ts';

const ROOM = '0b7e2a4e-1c1a-4a8e-9a51-8f4f3b0b3f11';
const message = (seq: number) => ({
  type: 'message',
  room: ROOM,
  message: { seq, text: `m${seq}`, clientMsgId: `c${seq}`, user: 'u', createdAt: new Date(0).toISOString() },
});

/** A server that records what each connection sent and lets the test send frames and close. */
async function scriptedServer() {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(server, 'listening');
  const connections: Array<{ socket: WebSocket; received: Array<Record<string, any>> }> = [];
  server.on('connection', (socket) => {
    const connection = { socket, received: [] as Array<Record<string, any>> };
    socket.on('message', (data) => connection.received.push(JSON.parse(String(data))));
    connections.push(connection);
  });
  const { port } = server.address() as { port: number };
  return {
    url: `ws://127.0.0.1:${port}/ws`,
    connections,
    close: () => {
      for (const { socket } of connections) socket.terminate();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('the chat client, by seq', () => {
  const cleanups: Array<() => unknown> = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('hands each message on once and in order, resubscribes with its last seq, and sends again what was not acknowledged', async () => {
    const server = await scriptedServer();
    cleanups.push(server.close);
    const client = new ChatClient({
      url: server.url,
      open: (u) => new WebSocket(u) as unknown as SocketLike,
      minDelayMs: 10,
      maxDelayMs: 20,
      heartbeatMs: 0,
    });
    cleanups.push(() => client.close());
    const seen: number[] = [];
    client.on('message', (_room, m: Message) => seen.push(m.seq));
    client.connect();
    client.subscribe(ROOM, 0);
    await waitFor(() => server.connections[0]?.received.some((f) => f.type === 'subscribe'), { what: 'subscribe' });
    const first = server.connections[0]!;
    assert.deepEqual(
      first.received.find((f) => f.type === 'subscribe'),
      { type: 'subscribe', room: ROOM, after: 0 },
    );

    // Replayed history (before `subscribed`, as the server sends it) and live messages overlapping.
    for (const seq of [1, 2, 2]) first.socket.send(JSON.stringify(message(seq)));
    first.socket.send(JSON.stringify({ type: 'subscribed', room: ROOM, lastSeq: 2 }));
    for (const seq of [3, 1, 3]) first.socket.send(JSON.stringify(message(seq)));
    await waitFor(() => seen.length >= 3, { what: 'three messages' });
    const sending = client.send(ROOM, 'not acknowledged yet', 'lost-ack');
    await waitFor(() => first.received.some((f) => f.type === 'send'), { what: 'the send' });

    first.socket.terminate(); // the server dies before acknowledging
    await waitFor(() => server.connections[1]?.received.length === 2, { what: 'the second connection catching up' });
    const second = server.connections[1]!;
    assert.deepEqual(second.received, [
      { type: 'subscribe', room: ROOM, after: 3 },
      { type: 'send', room: ROOM, text: 'not acknowledged yet', clientMsgId: 'lost-ack' },
    ]);
    second.socket.send(JSON.stringify(message(3)));
    second.socket.send(JSON.stringify(message(4)));
    second.socket.send(JSON.stringify({ type: 'subscribed', room: ROOM, lastSeq: 4 }));
    const stored = { ...message(4).message, text: 'not acknowledged yet', clientMsgId: 'lost-ack' };
    second.socket.send(JSON.stringify({ type: 'ack', clientMsgId: 'lost-ack', message: stored }));
    assert.equal((await sending).seq, 4);
    await waitFor(() => seen.length >= 4, { what: 'the fourth message' });
    assert.deepEqual(seen, [1, 2, 3, 4], 'each seq once, in order');
  });
});
