// (e) What a user would otherwise hand-roll: express + express-session + connect-redis +
// http-proxy-middleware, a session required on every proxied request.
import express from 'express';
import session from 'express-session';
import { RedisStore } from 'connect-redis';
import { createClient } from 'redis';
import { createProxyMiddleware } from 'http-proxy-middleware';

const { PORT, UPSTREAM, REDIS_URL } = process.env;
const redis = createClient({ url: REDIS_URL });
await redis.connect();

const app = express();
app.use(
  session({
    store: new RedisStore({ client: redis, prefix: 'bench-express:' }),
    secret: 'bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz',
    resave: false,
    saveUninitialized: false,
    rolling: false,
    cookie: { httpOnly: true, sameSite: 'lax', maxAge: 30 * 60_000 },
  }),
);
app.post('/login', (req, res) => {
  req.session.user = 'bench';
  res.json({ user: 'bench' });
});
app.use((req, res, next) => (req.session.user ? next() : res.status(401).json({ error: 'login' })));
app.use(
  createProxyMiddleware({
    target: UPSTREAM,
    on: { proxyReq: (proxyReq, req) => proxyReq.setHeader('x-forwarded-user', req.session.user) },
  }),
);
app.listen(Number(PORT), '127.0.0.1');
