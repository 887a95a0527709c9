// buildApp(deps) → the proxy's FastifyInstance, without listening, so tests build it freely.
// The plugin order lives here only: path normalisation → cookies → gateway routes → proxy.
import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import cookie from '@fastify/cookie';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { requestObserver } from './admin/metrics.js';
import { jwksRoute } from './auth/jwks.js';
import { authRoutes } from './auth/routes.js';
import { createVerifier, verifyRoutes } from './auth/verify.js';
import { createVerifyFastPath } from './auth/verify-fast-path.js';
import type { GatewayDeps } from './context.js';
import { GatewayError, badPath, methodNotAllowed } from './errors.js';
import { renderErrorPage, ERROR_PAGE_STYLE_HASH } from './pages.js';
import { normaliseRequestUrl } from './proxy/paths.js';
import { ALLOWED_METHODS_HEADER, isRefusedMethod, refuseTunnels, routeEveryMethod } from './proxy/methods.js';
import { proxyRoutes } from './proxy/plugin.js';

const kBadPath = Symbol('badPath');
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const ERROR_PAGE_CSP = `default-src 'none'; style-src ${ERROR_PAGE_STYLE_HASH}; frame-ancestors 'none'; base-uri 'none'`;

type RawRequest = IncomingMessage & { [kBadPath]?: string };

export async function buildApp(deps: GatewayDeps): Promise<FastifyInstance> {
  const { config, metrics } = deps;
  const verifier = createVerifier(deps);
  const fastVerify = createVerifyFastPath(deps, verifier);
  const app = Fastify({
    // Our own server so that the common forward-auth call is answered before fastify's router
    // (verify-fast-path.ts); everything else goes to fastify's handler unchanged.
    serverFactory: (handler) => createGatewayServer(config, (req, res) => fastVerify.handle(req, res, handler)),
    loggerInstance: deps.logger as FastifyBaseLogger,
    // One access-log line of our own per request (SPEC 7) instead of fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: config.trustedProxyCidrs.length > 0 ? config.trustedProxyCidrs : false,
    // Keep the client's X-Request-Id when it is sane, so one id follows a request end to end.
    genReqId: (req) => {
      const sent = req.headers['x-request-id'];
      return typeof sent === 'string' && REQUEST_ID.test(sent) ? sent : randomUUID();
    },
    requestIdHeader: false,
    // Normalise before routing, so what is routed, authorised and forwarded is one path.
    rewriteUrl: (req) => rewriteToNormalisedUrl(req as RawRequest),
    return503OnClosing: true,
    // Upstream bodies stream through; only the gateway's own routes parse bodies (bounded there).
    bodyLimit: 1024 * 1024,
  });

  app.decorateRequest('session', null);
  app.decorateRequest('normalisedPath', '');
  // WebDAV/CalDAV methods reach every route, the gateway's own included; TRACE/CONNECT get 405.
  routeEveryMethod(app);
  refuseTunnels(app.server);

  app.addHook('onRequest', async (request, reply) => {
    if (isRefusedMethod(request.method)) return sendError(request, reply.header('allow', ALLOWED_METHODS_HEADER), methodNotAllowed());
    const reason = (request.raw as RawRequest)[kBadPath];
    if (reason !== undefined) return sendError(request, reply, badPath(reason));
    const query = request.url.indexOf('?');
    request.normalisedPath = query === -1 ? request.url : request.url.slice(0, query);
  });

  const observeRequest = requestObserver(metrics.requestDuration);
  app.addHook('onResponse', async (request, reply) => {
    const status = reply.statusCode;
    observeRequest(request.method, status, reply.elapsedTime / 1_000);
    if (config.accessLog) {
      request.log.info(
        { method: request.method, path: request.normalisedPath, status, ms: Math.round(reply.elapsedTime * 10) / 10, user: request.session?.record.user ?? null, ip: request.ip },
        'request',
      );
    }
  });

  app.setErrorHandler((error: FastifyError, request, reply) => sendError(request, reply, error));

  await app.register(cookie);
  await app.register(async (scope) => authRoutes(scope, deps), { prefix: config.authPrefix });
  // Its own scope: public and cacheable, unlike the auth routes (their onSend sets no-store).
  await app.register(async (scope) => jwksRoute(scope, deps), { prefix: config.authPrefix });
  // Forward-auth in a scope of its own: none of the login pages' parsers and headers per request.
  await app.register(async (scope) => verifyRoutes(scope, deps, verifier), { prefix: config.authPrefix });
  // Closing: fastify answers 503 (return503OnClosing); the fast path must not keep answering 204.
  app.addHook('preClose', async () => fastVerify.close());
  await app.register(async (scope) => proxyRoutes(scope, deps));
  return app;
}

/** What fastify would create itself (plain http, or https with GATEWAY_TLS_*), with its defaults. */
function createGatewayServer(config: GatewayDeps['config'], listener: RequestListener): Server {
  const server: Server = config.tls ? createHttpsServer({ cert: config.tls.cert, key: config.tls.key }, listener) : createHttpServer(listener);
  // fastify's defaults for its own servers: keep idle connections 72 s (longer than the usual
  // 60 s of load balancers, so the balancer closes first), no request or socket timeout.
  server.keepAliveTimeout = 72_000;
  server.requestTimeout = 0;
  server.setTimeout(0);
  return server;
}

function rewriteToNormalisedUrl(req: RawRequest): string {
  const url = req.url ?? '/';
  const result = normaliseRequestUrl(url);
  if (result.ok) return result.url;
  req[kBadPath] = result.reason;
  // Route somewhere harmless; the onRequest hook answers 400 before any handler runs.
  return '/';
}

/** One error shape for everything: JSON for API clients, a small page for browsers. */
function sendError(request: FastifyRequest, reply: FastifyReply, error: FastifyError | GatewayError | Error): FastifyReply {
  const status = statusOf(error as { statusCode?: number });
  if (status >= 500) request.log.error({ err: error, code: (error as GatewayError).code }, 'request failed');
  const message = status >= 500 && !(error instanceof GatewayError) ? 'Internal error.' : error.message;
  const code = (error as GatewayError).code;
  reply.code(status).header('cache-control', 'no-store');
  if ((request.headers.accept ?? '').includes('text/html')) {
    return reply.header('content-security-policy', ERROR_PAGE_CSP).type('text/html; charset=utf-8').send(renderErrorPage(status, titleFor(status), message));
  }
  return reply.send({ error: message, ...(code ? { code } : {}) });
}

function statusOf(error: { statusCode?: number }): number {
  const status = error.statusCode;
  return typeof status === 'number' && status >= 400 && status <= 599 ? status : 500;
}

function titleFor(status: number): string {
  switch (status) {
    case 400: return 'Bad request';
    case 404: return 'Not found';
    case 413: return 'Request too large';
    case 502: return 'Bad gateway';
    case 503: return 'Service unavailable';
    case 504: return 'Gateway timeout';
    default: return status >= 500 ? 'Server error' : 'Request refused';
  }
}
