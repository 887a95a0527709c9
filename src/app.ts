// buildApp(deps) → the proxy's FastifyInstance, without listening, so tests build it freely.
// The plugin order lives here only: path normalisation → cookies → gateway routes → proxy.
import { STATUS_CODES, createServer as createHttpServer, type IncomingMessage, type RequestListener, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { SecureContextOptions } from 'node:tls';
import type { Socket } from 'node:net';
import cookie from '@fastify/cookie';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { requestObserver } from './admin/metrics.js';
import { jwksRoute } from './identity/jwks.js';
import { authRoutes } from './login/routes.js';
import { accountRoutes } from './account/routes.js';
import { verifyRoutes } from './forward-auth/verify.js';
import { createVerifier } from './forward-auth/verifier.js';
import { createVerifyFastPath } from './forward-auth/fast-path.js';
import { createGate, sessionCookieAuthenticator } from './access/gate.js';
import { authorizationAuthenticator, type AuthorizationEvents } from './tokens/gate-authenticator.js';
import type { GatewayDeps } from './context.js';
import { GatewayError, badHost, badPath, methodNotAllowed } from './errors.js';
import { hostRefusal, requestIdOf } from './http.js';
import { requestLoggerFactory, roundedMs, writeAccessLine, type AccessLine } from './logger.js';
import { renderErrorPage, ERROR_PAGE_STYLE_HASH } from './pages.js';
import { normaliseRequestUrl, pathForLog } from './access/paths.js';
import { ALLOWED_METHODS_HEADER, isRefusedMethod, refuseTunnels, routeEveryMethod } from './proxy/methods.js';
import { proxyRoutes } from './proxy/routes.js';
import { createForwarding } from './proxy/forwarding.js';
import { createProxyFastPath, receivedByFastPath } from './proxy/fast-path.js';
import { holdContinue } from './proxy/expect-continue.js';
import type { Tracing } from './tracing/index.js';

const kBadPath = Symbol('badPath');
/** Set on a request cut by GATEWAY_REQUEST_TIMEOUT, so its abort is counted as 408, not 499. */
const kTimedOut = Symbol('timedOut');
/** nginx's status for "client closed the request": a client error, never the app's 5xx. */
const CLIENT_CLOSED_REQUEST = 499;
const ERROR_PAGE_CSP = `default-src 'none'; style-src ${ERROR_PAGE_STYLE_HASH}; frame-ancestors 'none'; base-uri 'none'`;

type RawRequest = IncomingMessage & { [kBadPath]?: string; [kTimedOut]?: boolean };
/** Node's in-flight response on a connection (what its own clientError handling consults). */
type HttpSocket = Socket & { _httpMessage?: ServerResponse | null };

export async function buildApp(deps: GatewayDeps): Promise<FastifyInstance> {
  const { config, metrics } = deps;
  // The one access decision, handed to every door (access/gate.ts). Further credential kinds are
  // appended to `authenticators`; a configuration reload calls `app.accessGate.replaceRules(...)`.
  const gate = createGate({
    publicPaths: config.publicPaths,
    rules: config.accessRules,
    logoutPaths: config.logoutPaths,
    authenticators: [
      sessionCookieAuthenticator({ cookieName: config.cookieName, validate: (cookie) => deps.sessions.validateAwaitable(cookie) }),
      // Then `Authorization`: API tokens, and HTTP Basic with GATEWAY_BASIC_AUTH (tokens/).
      ...(deps.tokens ? [authorizationAuthenticator(deps.tokens.authenticator, authorizationEvents(deps))] : []),
    ],
  });
  const verifier = createVerifier({ config, gate, logger: deps.logger, identityTokens: deps.identityTokens, ownsAuthorization: deps.tokens?.authenticator.owns ?? null });
  const fastVerify = createVerifyFastPath(deps, verifier);
  const observeRequest = requestObserver(metrics.requestDuration);
  // How a proxied request's headers cross the gateway, both ways: one for the route and the fast path.
  const upstream = deps.upstream;
  const forwarding = upstream === null ? null : createForwarding(config, upstream, deps.identityTokens, deps.tokens?.authenticator.owns ?? null);
  const fastProxy = forwarding === null ? null : createProxyFastPath(deps, gate, forwarding, {
    answered: (log, line, elapsedMs) => recordAnswer(log, line, elapsedMs),
    clientGone: (req, log, method, path, elapsedMs, user, ip) => logClientError(method, path, clientGoneStatus(req as RawRequest), elapsedMs, { log, user, ip }),
  });
  // Forward-auth's common call, then the common proxied request, before fastify's router; the rest to fastify.
  const beforeRouter = (handler: RequestListener): RequestListener => {
    const toFastify = fastProxy === null ? handler : (req: IncomingMessage, res: ServerResponse) => fastProxy.handle(req, res, handler);
    return (req, res) => fastVerify.handle(req, res, toFastify);
  };
  const app = Fastify({
    // Our own server so that the common forward-auth call and the common proxied request are
    // answered before fastify's router (forward-auth/fast-path.ts, proxy/fast-path.ts); everything
    // else goes to fastify's handler unchanged.
    serverFactory: (handler) => createGatewayServer(config, traceRequests(deps.tracing, beforeRouter(handler as RequestListener))),
    loggerInstance: deps.logger as FastifyBaseLogger,
    // One access-log line of our own per request (SPEC 7) instead of fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    // request.log makes its pino child only when something logs through it (logger.ts).
    childLoggerFactory: requestLoggerFactory,
    trustProxy: config.trustedProxyCidrs.length > 0 ? config.trustedProxyCidrs : false,
    // Keep the client's X-Request-Id when it is sane, so one id follows a request end to end.
    genReqId: (req) => requestIdOf(req.headers),
    requestIdHeader: false,
    // Normalise before routing, so what is routed, authorised and forwarded is one path.
    rewriteUrl: (req) => rewriteToNormalisedUrl(req as RawRequest),
    return503OnClosing: true,
    // Node's request timeout and malformed requests: answered, counted and logged like any other.
    clientErrorHandler: (error, socket) => answerClientError(error, socket as HttpSocket),
    // Upstream bodies stream through; only the gateway's own routes parse bodies (bounded there).
    bodyLimit: 1024 * 1024,
  });

  app.decorate('accessGate', gate);
  app.decorateRequest('session', null);
  app.decorateRequest('principal', null);
  app.decorateRequest('normalisedPath', '');
  app.decorateRequest('receivedAt', 0);
  // WebDAV/CalDAV methods reach every route, the gateway's own included; TRACE/CONNECT get 405.
  routeEveryMethod(app);
  refuseTunnels(app.server);

  // The per-request hooks take fastify's `done` rather than returning a promise: no promise and no
  // microtask per hook on every proxied request. A hook that has answered does not call `done`.
  app.addHook('onRequest', (request, reply, done) => {
    // A request the fast path handed over counts from when the gateway first saw it.
    request.receivedAt = receivedByFastPath(request.raw) ?? performance.now();
    const refusal = refusedRequest(request);
    if (refusal === null) return done();
    if (refusal.statusCode === 405) reply.header('allow', ALLOWED_METHODS_HEADER);
    sendError(request, reply, refusal);
  });

  /** Why a request is answered before routing (and the path it is routed by, set on the way), or null. */
  function refusedRequest(request: FastifyRequest): GatewayError | null {
    if (isRefusedMethod(request.method)) return methodNotAllowed();
    const reason = (request.raw as RawRequest)[kBadPath];
    if (reason !== undefined) return badPath(reason);
    const query = request.url.indexOf('?');
    request.normalisedPath = query === -1 ? request.url : request.url.slice(0, query);
    // Before anything builds a URL or compares an origin from the Host (the verify fast path asks too).
    const refusal = hostRefusal(request.raw, config);
    return refusal === null ? null : badHost(refusal);
  }

  app.addHook('onResponse', (request, reply, done) => {
    const elapsedMs = receivedByFastPath(request.raw) === undefined ? reply.elapsedTime : performance.now() - request.receivedAt;
    const line = { reqId: request.id, method: request.method, path: pathForLog(request.normalisedPath), status: reply.statusCode, ms: roundedMs(elapsedMs), user: request.principal?.record.user ?? null, ip: request.ip };
    recordAnswer(request.log, line, elapsedMs);
    done();
  });

  /** The request metric and the access line (SPEC 7) of an answered request, whichever way it went. */
  function recordAnswer(log: FastifyBaseLogger, line: AccessLine, elapsedMs: number): void {
    observeRequest(line.method, line.status, elapsedMs / 1_000);
    if (config.accessLog) writeAccessLine(log, line);
  }

  // HSTS only means something over https (RFC 6797 §7.2: ignored on plain http): the TLS listener,
  // or a trusted load balancer's X-Forwarded-Proto. Set last, so the operator's value wins over the app's.
  const hsts = config.hsts;
  if (hsts !== null) {
    app.addHook('onSend', async (request, reply) => {
      if (request.protocol === 'https') reply.header('strict-transport-security', hsts);
    });
  }

  // A client that closed its connection mid-request, or was cut by GATEWAY_REQUEST_TIMEOUT, gets no
  // response, so onResponse never runs: counted here as the client error it is.
  app.addHook('onRequestAbort', async (request) => {
    // The request stream is also destroyed when the app stops reading a body (undici then detaches
    // it from the socket first, and the app's failure is answered and counted as such): the client
    // is gone only when its own connection is.
    if (request.raw.socket?.destroyed !== true) return;
    const who = { log: request.log, user: request.principal?.record.user ?? null, ip: request.ip };
    logClientError(request.method, request.normalisedPath, clientGoneStatus(request.raw as RawRequest), performance.now() - request.receivedAt, who);
  });

  /** A request Node refused or cut before fastify answered (timeout, malformed, headers too large). */
  function answerClientError(error: Error & { code?: string }, socket: HttpSocket): void {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const inFlight = socket._httpMessage ?? null;
    const status = error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : error.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    // A request fastify already routed is counted once, by onRequestAbort, when its socket closes.
    if (inFlight) (inFlight.req as RawRequest)[kTimedOut] = status === 408;
    else logClientError(null, null, status, status === 408 ? config.requestTimeoutMs : 0, null, socket.remoteAddress ?? null);
    // Never write a status line into a response that has started (it would corrupt it).
    if (socket.writable && !inFlight?.headersSent) socket.write(rawErrorResponse(status));
    socket.destroy(error);
  }

  /** The access-log line and request metric of a request that got no response (`who`: null before any request was read). */
  function logClientError(method: string | null, path: string | null, status: number, ms: number, who: { log: FastifyBaseLogger; user: string | null; ip: string } | null, peer: string | null = null): void {
    observeRequest(method ?? 'OTHER', status, ms / 1_000);
    if (!config.accessLog) return;
    const line = { method, path: path === null ? null : pathForLog(path), status, ms: roundedMs(ms), user: who?.user ?? null, ip: who?.ip ?? peer };
    (who?.log ?? deps.logger).info(line, 'request');
  }

  app.setErrorHandler((error: FastifyError, request, reply) => sendError(request, reply, error));

  await app.register(cookie);
  await app.register(async (scope) => authRoutes(scope, deps), { prefix: config.authPrefix });
  // Self-service beside the login routes: password change, where am I signed in (SPEC 9).
  await app.register(async (scope) => accountRoutes(scope, deps), { prefix: config.authPrefix });
  // Its own scope: public and cacheable, unlike the auth routes (their onSend sets no-store).
  await app.register(async (scope) => jwksRoute(scope, deps), { prefix: config.authPrefix });
  // Forward-auth in a scope of its own: none of the login pages' parsers and headers per request.
  await app.register(async (scope) => verifyRoutes(scope, deps, verifier), { prefix: config.authPrefix });
  // Closing: fastify answers 503 (return503OnClosing); the fast path must not keep answering 204.
  app.addHook('preClose', async () => {
    fastVerify.close();
    fastProxy?.close();
  });
  // The fast path's connections to the app, once the listener has closed (its requests are done).
  if (fastProxy !== null) app.addHook('onClose', async () => fastProxy.destroy());
  // Forward-auth only (no upstream): the gateway's own routes, and 404 for everything else.
  if (upstream !== null && forwarding !== null) await app.register(async (scope) => proxyRoutes(scope, { ...deps, upstream }, gate, forwarding));
  return app;
}

/**
 * TLS 1.2 at least; for 1.2 only forward-secret AEAD suites (ECDHE with AES-GCM or ChaCha20), none
 * of the CBC/SHA-1 ones Node still offers by default; TLS 1.3's own suites are all AEAD (Mozilla's
 * "intermediate" profile without DHE).
 */
const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** Everything the TLS context holds: given whole on every swap, since setSecureContext resets what is left out. */
function tlsContextOptions(tls: { cert: string; key: string }): SecureContextOptions {
  return { cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2', ciphers: TLS_CIPHERS };
}

/**
 * SIGHUP reload of GATEWAY_TLS_CERT / GATEWAY_TLS_KEY: handshakes from now on use the new pair;
 * open connections keep theirs and are not interrupted. Throws (and changes nothing) when the pair
 * is unusable; config.ts has already checked it, the same way, before this is called.
 */
export function replaceTlsContext(app: FastifyInstance, tls: { cert: string; key: string }): void {
  const server = app.server as Server & Partial<Pick<HttpsServer, 'setSecureContext'>>;
  if (typeof server.setSecureContext !== 'function') throw new Error('the proxy listener is plain http: TLS was not configured at start-up');
  server.setSecureContext(tlsContextOptions(tls));
}

/** With tracing on, one server span around each request; off, the listener itself (no cost). */
function traceRequests(tracing: Tracing | null | undefined, listener: RequestListener): RequestListener {
  return tracing ? tracing.traceRequests(listener) : listener;
}

/** The proxy listener: plain http, or https with GATEWAY_TLS_*. */
function createGatewayServer(config: GatewayDeps['config'], listener: RequestListener): Server {
  const timeouts: ServerOptions = {
    // The whole request, headers and body, within GATEWAY_REQUEST_TIMEOUT, then 408 and the
    // connection closes: a trickling client holds no login slot or app connection for long.
    requestTimeout: config.requestTimeoutMs,
    headersTimeout: config.requestTimeoutMs,
    // Node checks for expired requests only this often (30 s by default): a small fraction of the timeout.
    connectionsCheckingInterval: Math.min(5_000, Math.max(50, Math.floor(config.requestTimeoutMs / 10))),
  };
  const server: Server = config.tls
    ? createHttpsServer({ ...timeouts, ...tlsContextOptions(config.tls) }, listener)
    : createHttpServer(timeouts, listener);
  // `Expect: 100-continue`: the gateway's own routes (sign-in forms) get their 100 at once; a request
  // for the app only once it is allowed (proxy/expect-continue.ts), so a refused upload is never sent.
  const ownRoutes = `${config.authPrefix}/`;
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    if (url.startsWith(ownRoutes) || url === config.authPrefix) res.writeContinue();
    else holdContinue(req, res);
    listener(req, res);
  });
  // Idle keep-alive connections stay 72 s, longer than the usual 60 s of load balancers, so the
  // balancer closes first. No socket inactivity timeout: responses (long polls) may take their time.
  server.keepAliveTimeout = 72_000;
  server.setTimeout(0);
  return server;
}

/** What Node itself would write, plus `Connection: close` (the socket is closed right after). */
function rawErrorResponse(status: number): string {
  const body = JSON.stringify({ error: status === 408 ? 'request timeout' : status === 431 ? 'request headers too large' : 'bad request' });
  return `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`;
}

/** A request whose client went away: cut by GATEWAY_REQUEST_TIMEOUT (408), else the client's doing (499). */
function clientGoneStatus(req: RawRequest): number {
  return req[kTimedOut] ? 408 : CLIENT_CLOSED_REQUEST;
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
  if (error instanceof GatewayError && error.headers) reply.headers(error.headers);
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

/**
 * Audit lines and counters for credentials in `Authorization`: a Basic password check that is not
 * served from the cache is a sign-in (gateway_logins_total, the login's audit line, `method:
 * basic`); a refused API token is logged with why. Never the credential itself.
 */
function authorizationEvents(deps: GatewayDeps): AuthorizationEvents {
  const { metrics, logger } = deps;
  return {
    checked(verdict, ip) {
      switch (verdict.kind) {
        case 'valid':
          if (verdict.via === 'basic' && !verdict.cached) {
            metrics.logins.inc({ outcome: 'success' });
            logger.info({ audit: 'login', method: 'basic', user: verdict.identity.user, ip, outcome: 'success' }, 'login succeeded');
          }
          return;
        case 'invalid':
          if (verdict.scheme === 'basic') {
            metrics.logins.inc({ outcome: 'failure' });
            logger.warn({ audit: 'login', method: 'basic', user: verdict.user, ip, outcome: 'failure', reason: verdict.reason }, 'login failed');
          } else {
            logger.warn({ audit: 'token', ip, outcome: verdict.reason }, 'API token refused');
          }
          return;
        case 'throttled':
          metrics.logins.inc({ outcome: 'throttled' });
          logger.warn({ audit: 'login', method: 'basic', user: verdict.user, ip, outcome: 'throttled' }, 'login throttled');
          return;
        case 'busy':
          metrics.logins.inc({ outcome: 'throttled' });
          logger.warn({ audit: 'login', method: 'basic', ip, outcome: 'throttled', by: 'busy' }, 'login refused: too many sign-ins at once');
          return;
        case 'none':
          return;
      }
    },
  };
}
