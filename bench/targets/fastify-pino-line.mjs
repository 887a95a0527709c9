// (j) Stock fastify + @fastify/http-proxy with fastify's own pino logger: its two per-request lines
// off (disableRequestLogging) and one request.log.info per response in onResponse, with the same
// fields as session-gateway's access line. What one log line per request costs in stock fastify.
import Fastify, { LogController } from 'fastify';
import proxy from '@fastify/http-proxy';

const { PORT, UPSTREAM } = process.env;
const app = Fastify({ logger: true, logController: new LogController({ disableRequestLogging: true }) });
app.addHook('onResponse', async (request, reply) => {
  request.log.info(
    { method: request.method, path: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10, user: null, ip: request.ip },
    'request',
  );
});
await app.register(proxy, { upstream: UPSTREAM, undici: { connections: 128 } });
await app.listen({ host: '127.0.0.1', port: Number(PORT) });
