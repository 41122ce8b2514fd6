/**
 * The framework's ceiling: Fastify answering a fixed JSON body through a response schema, with
 * nothing of statewise's (no hooks, no session, no store). Beside the raw node:http hello it shows
 * how much of the gap to the machine's ceiling is the framework and how much is ours.
 */
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.get(
  '/',
  { schema: { response: { 200: { type: 'object', properties: { hello: { type: 'string' } } } } } },
  async () => ({ hello: 'world' }),
);
await app.listen({ port: 0, host: '127.0.0.1' });
const address = app.server.address();
process.send?.({ type: 'listening', port: typeof address === 'object' && address ? address.port : 0 });
