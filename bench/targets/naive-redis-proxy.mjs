// (k) The naive session proxy a team writes in an afternoon: fastify + @fastify/cookie +
// @fastify/http-proxy, one Redis GET per request on the session cookie (401 without a session),
// the user passed on as X-Forwarded-User. No log. The peer session-gateway has to beat.
import Fastify from 'fastify';
import cookie from '@fastify/cookie';
import proxy from '@fastify/http-proxy';
import { Redis } from 'ioredis';

const { PORT, UPSTREAM, REDIS_URL, COOKIE_NAME = 'sgw_session', KEY_PREFIX = 'naive:' } = process.env;
const redis = new Redis(REDIS_URL);
const app = Fastify({ logger: false });
await app.register(cookie);
app.addHook('onRequest', async (request, reply) => {
  const id = request.cookies[COOKIE_NAME];
  const raw = id ? await redis.get(KEY_PREFIX + id) : null;
  if (!raw) return reply.code(401).send({ error: 'login' });
  request.user = JSON.parse(raw).user;
});
await app.register(proxy, {
  upstream: UPSTREAM,
  undici: { connections: 128 },
  replyOptions: { rewriteRequestHeaders: (request, headers) => ({ ...headers, 'x-forwarded-user': request.user }) },
});
await app.listen({ host: '127.0.0.1', port: Number(PORT) });
