/**
 * Defect 7: a 3 MiB body answered 413 before it was read, then the connection closed: a client
 * still sending met a TCP reset and lost the 413 (EPIPE). Now the rest of the body is read and
 * discarded (bounded), and the client reads the answer; the connection even serves the next request.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createBalancer, type Balancer } from '../../src/balancer/balancer.ts';
import { startApp } from '../support/app.ts';
import { waitFor } from '../support/wait.ts';

const BODY = 3 * 1024 * 1024;

/** Reads one HTTP answer (head and content-length body) from a socket that stays open. */
function readAnswer(socket: Socket): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const text = received.toString('latin1');
      const headEnd = text.indexOf('\r\n\r\n');
      if (headEnd < 0) return;
      const length = Number(/content-length: (\d+)/i.exec(text.slice(0, headEnd))?.[1] ?? 0);
      if (received.length < headEnd + 4 + length) return;
      socket.off('data', onData);
      socket.off('error', reject);
      resolve({ status: Number(text.slice(9, 12)), body: text.slice(headEnd + 4, headEnd + 4 + length) });
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.resume();
  });
}

/** A client that sends its whole body before it reads anything, as many simple clients do. */
async function postBigBodyThenRead(port: number): Promise<{ socket: Socket; status: number; body: string }> {
  const socket = connect(port, '127.0.0.1');
  socket.pause();
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.write(
    `POST /api/auth/register HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${BODY}\r\n\r\n`,
  );
  const chunk = Buffer.alloc(64 * 1024, 'x');
  for (let sent = 0; sent < BODY; sent += chunk.length) {
    if (!socket.write(chunk)) await new Promise((resolve) => socket.once('drain', resolve));
  }
  return { socket, ...(await readAnswer(socket)) };
}

describe('an early 413 reaches a client that is still sending', () => {
  let apps: Awaited<ReturnType<typeof startApp>>;
  let balancer: Balancer;
  let appPort: number;
  before(async () => {
    apps = await startApp({ store: 'memory' });
    await apps.server.app.listen({ port: 0, host: '127.0.0.1' });
    appPort = (apps.server.app.server.address() as { port: number }).port;
    balancer = await createBalancer({ port: 0, policy: 'round-robin', logger: false, healthIntervalMs: 50 });
    balancer.setUpstreams([{ id: 's1', url: `http://127.0.0.1:${appPort}` }]);
    await waitFor(() => balancer.health()[0]?.healthy, { what: 's1 healthy' });
  });
  after(async () => {
    await balancer.close();
    await apps.close();
  });

  for (const via of ['app server', 'balancer'] as const) {
    it(`from the ${via}, every time, and the connection then serves the next request`, async () => {
      const port = via === 'app server' ? appPort : Number(new URL(balancer.url).port);
      for (let i = 0; i < 3; i++) {
        const { socket, status, body } = await postBigBodyThenRead(port);
        try {
          assert.equal(status, 413);
          assert.equal(JSON.parse(body).error.code, 'body_too_large');
          socket.write('GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n');
          assert.equal((await readAnswer(socket)).status, 200, 'the same connection answers again');
        } finally {
          socket.destroy();
        }
      }
    });
  }
});
