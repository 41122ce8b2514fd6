import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

export interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** What a fake app server answers to every request but /readyz. */
export interface EchoBody {
  server: string;
  method: string;
  url: string;
  body: string;
}

export interface FakeUpstream {
  id: string;
  url: string;
  /** /readyz answers 200 while true, 503 while false. */
  ready: boolean;
  /**
   * While true it takes every request (and /readyz) and answers nothing, as a hung process or a
   * server cut off by the network does. kill() ends what it holds.
   */
  silent: boolean;
  /** Every request except /readyz, in order. */
  received: Received[];
  /** The headers of each WebSocket handshake it accepted. */
  upgrades: IncomingHttpHeaders[];
  /** Answers to /big whose client went away before the last byte. */
  cutShort: number;
  /** Dies without a goodbye: the listener and every connection (WebSockets too) are closed. */
  kill(): Promise<void>;
}

/**
 * A tiny app server for balancer tests: answers JSON with X-Served-By, /readyz that can be turned
 * to 503, /set-cookie that sets a cookie of its own, /broken that answers bytes that are not
 * HTTP, and a WebSocket echo prefixed by its id.
 */
export async function startFakeUpstream(id: string): Promise<FakeUpstream> {
  const wss = new WebSocketServer({ noServer: true });
  wss.on('connection', (ws) => ws.on('message', (data) => ws.send(`${id}:${String(data)}`)));
  const server = createServer((req, res) => {
    if (upstream.silent) {
      if (req.url !== '/readyz')
        upstream.received.push({
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body: Buffer.alloc(0),
        });
      return;
    }
    if (req.url === '/readyz') {
      res.writeHead(upstream.ready ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: upstream.ready ? 'ready' : 'draining', server: id }));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      upstream.received.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body,
      });
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'x-served-by': id,
      };
      if (req.url === '/broken') return void req.socket.end('HTTP/1.1 two hundred\r\n\r\n');
      if (req.url?.startsWith('/big?bytes=')) return void sendBig(res, Number(req.url.slice('/big?bytes='.length)));
      if (req.url === '/set-cookie') headers['set-cookie'] = 'app=1; Path=/';
      const answer: EchoBody = {
        server: id,
        method: req.method ?? '',
        url: req.url ?? '',
        body: body.toString('latin1'),
      };
      res.writeHead(200, headers);
      res.end(req.method === 'HEAD' ? undefined : JSON.stringify(answer));
    });
  });
  /** Bytes 0, 1, ... 255, 0, 1... as fast as the connection takes them, honouring backpressure. */
  const sendBig = (res: ServerResponse, bytes: number) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes, 'x-served-by': id });
    const chunk = Buffer.from(Array.from({ length: 64 * 1024 }, (_, i) => i % 256));
    let sent = 0;
    res.on('close', () => {
      if (!res.writableFinished) upstream.cutShort++;
    });
    const more = () => {
      while (sent < bytes) {
        const part = chunk.subarray(0, Math.min(chunk.length, bytes - sent));
        sent += part.length;
        if (!res.write(part)) return void res.once('drain', more);
      }
      res.end();
    };
    more();
  };
  server.on('upgrade', (req, socket, head) => {
    upstream.upgrades.push(req.headers);
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  const upstream: FakeUpstream = {
    id,
    url: `http://127.0.0.1:${port}`,
    ready: true,
    silent: false,
    cutShort: 0,
    received: [],
    upgrades: [],
    async kill() {
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeAllConnections();
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      await closed;
    },
  };
  return upstream;
}
