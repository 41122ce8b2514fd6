/**
 * The anchor the brief compares against: Express 5 + express-session + connect-redis, on the same
 * Redis as statewise's redis backend. GET /login creates a session; GET /me reads it.
 */
import express from 'express';
import session from 'express-session';
import { RedisStore } from 'connect-redis';
import { createClient } from 'redis';

const client = createClient({ url: process.env.REDIS_URL });
await client.connect();
const app = express();
app.use(
  session({
    store: new RedisStore({ client, prefix: 'bench-sess:' }),
    secret: 'a bench secret that is long enough to be real',
    resave: false,
    saveUninitialized: false,
    rolling: false,
    cookie: { httpOnly: true, sameSite: 'lax' },
  }),
);
app.get('/login', (req, res) => {
  (req.session as unknown as { user: unknown }).user = { id: 'u1', username: 'alice' };
  res.json({ ok: true });
});
app.get('/me', (req, res) => {
  const user = (req.session as unknown as { user?: unknown }).user;
  if (!user) return void res.status(401).json({ error: 'not signed in' });
  res.json({ user });
});
const server = app.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.send?.({ type: 'listening', port: typeof address === 'object' && address ? address.port : 0 });
});
