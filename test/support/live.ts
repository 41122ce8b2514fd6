/**
 * Live sockets against in-process servers: startApps' servers listen on free ports, and tests
 * talk to `/ws` with real WebSocket clients (`ws`): raw frames (LiveSocket) or the shipped
 * ChatClient.
 */
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { ChatClient, type ChatClientOptions, type SocketLike } from '../../src/realtime/client.ts';
import { newUsername, PASSWORD } from '../security/backends.ts';
import type { InjectClient, TestServer } from './app.ts';
import { waitFor } from './wait.ts';

/** Makes the server listen on a free loopback port; returns its ws:// base. */
export async function listen(server: TestServer): Promise<string> {
  const address = await server.app.listen({ port: 0, host: '127.0.0.1' });
  return address.replace(/^http/, 'ws');
}

/** A registered user, signed in on `server` (a session cookie; on memory it lives on that server only). */
export async function signedIn(server: TestServer, prefix = 'u'): Promise<{ username: string; browser: InjectClient }> {
  const username = newUsername(prefix);
  const browser = server.client();
  const registered = await browser.api.POST('/api/auth/register', { body: { username, password: PASSWORD } });
  assert.equal(registered.response.status, 201);
  return { username, browser };
}

export const cookieHeaders = (browser: InjectClient): Record<string, string> => ({
  cookie: [...browser.cookies].map(([k, v]) => `${k}=${v}`).join('; '),
  'user-agent': browser.userAgent,
});

export type Frame = Record<string, any>;

/** A raw socket that records every frame, and waits for the ones a test expects. */
export class LiveSocket {
  readonly frames: Frame[] = [];
  closed: { code: number; reason: string } | undefined;
  #read = 0;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => this.frames.push(JSON.parse(String(data)) as Frame));
    ws.on('close', (code, reason) => (this.closed = { code, reason: String(reason) }));
  }

  static open(url: string, headers: Record<string, string> = {}): Promise<LiveSocket> {
    const ws = new WebSocket(url, { headers });
    const socket = new LiveSocket(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(socket));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => reject(new Error(`upgrade refused: ${res.statusCode} ${body}`)));
      });
      ws.once('error', reject);
    });
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The next frame (after those already taken) that matches; fails after the deadline. */
  async next(match: (frame: Frame) => boolean = () => true, what = 'a frame', timeoutMs = 10_000): Promise<Frame> {
    return waitFor(
      () => {
        for (let i = this.#read; i < this.frames.length; i++) {
          if (match(this.frames[i]!)) {
            this.#read = i + 1;
            return this.frames[i];
          }
        }
        return undefined;
      },
      { what, timeoutMs, intervalMs: 5 },
    );
  }

  /** Every `message` frame of a room received so far, in order. */
  messages(room: string): Frame[] {
    return this.frames.filter((f) => f.type === 'message' && f.room === room).map((f) => f.message as Frame);
  }

  async subscribe(room: string, after?: number): Promise<Frame> {
    this.send(after === undefined ? { type: 'subscribe', room } : { type: 'subscribe', room, after });
    return this.next((f) => (f.type === 'subscribed' || f.type === 'error') && f.room === room, `subscribed ${room}`);
  }

  waitClosed(timeoutMs = 10_000): Promise<{ code: number; reason: string }> {
    return waitFor(() => this.closed, { what: 'the socket to close', timeoutMs, intervalMs: 5 });
  }

  close(): void {
    this.ws.close();
  }
}

/** The shipped client over `ws`, with the browser's cookie and User-Agent. */
export function chatClient(
  url: string | (() => string),
  headers: Record<string, string>,
  options: Partial<ChatClientOptions> = {},
): ChatClient {
  return new ChatClient({
    url,
    open: (u) => new WebSocket(u, { headers }) as unknown as SocketLike,
    minDelayMs: 20,
    maxDelayMs: 500,
    ...options,
  });
}
