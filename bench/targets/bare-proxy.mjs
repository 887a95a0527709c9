// (g) The floor cost of a Node proxy hop: stock fastify + @fastify/http-proxy, no auth, no logging.
import Fastify from 'fastify';
import proxy from '@fastify/http-proxy';

const { PORT, UPSTREAM } = process.env;
const app = Fastify({ logger: false });
await app.register(proxy, { upstream: UPSTREAM, undici: { connections: 128 } });
await app.listen({ host: '127.0.0.1', port: Number(PORT) });
