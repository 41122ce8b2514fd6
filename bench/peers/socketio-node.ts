/**
 * The peer of bench/chat-delivery.ts: one Socket.IO 4 node with @socket.io/redis-adapter, the usual
 * way to spread a Socket.IO chat over several processes. Nothing is stored: a `send` is broadcast
 * to its room at once (`io.to(room).emit`), across nodes by Redis pub/sub, sender included.
 * Env: REDIS_URL. Reports `{type:'listening', port}` over IPC like every bench process.
 */
import { createServer } from 'node:http';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';

interface ChatPayload {
  room: string;
  id: number;
}

const pub = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const sub = pub.duplicate();
for (const client of [pub, sub]) client.on('error', (err) => process.stderr.write(`redis error: ${err.message}\n`));

const http = createServer();
const io = new Server(http, { transports: ['websocket'], serveClient: false });
io.adapter(createAdapter(pub, sub));

io.on('connection', (socket) => {
  socket.on('join', (room: string, ack?: () => void) => {
    void Promise.resolve(socket.join(room)).then(() => ack?.());
  });
  socket.on('send', (payload: ChatPayload) => {
    io.to(payload.room).emit('message', payload);
  });
});

http.listen(0, '127.0.0.1', () => {
  const address = http.address();
  process.send?.({ type: 'listening', port: typeof address === 'object' && address ? address.port : 0 });
});
