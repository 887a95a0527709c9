// WebSocket upgrades, forwarded to the upstream only after the same decision as every request.
//
// How: Node hands an `Upgrade` request to the server's 'upgrade' listener instead of fastify.
// `dispatch` routes it through fastify anyway (`fastify.routing`, as @fastify/websocket does),
// with a response object bound to the raw socket. So path normalisation (rewriteUrl), the
// onRequest checks and the proxy route's preHandler `authenticate` run unchanged: one function
// decides for HTTP and WebSockets alike, and a refusal (401, 302, 400, 403 …) is an ordinary
// HTTP response written before anything is upgraded. Only a request it let through reaches
// `upgrade`, the route's next preHandler, which opens the upstream handshake first and only then
// completes the client's.
//
// Why not @fastify/http-proxy's `websocket: true` (which dispatches the same way): it completes
// the client's handshake before the upstream has answered, so an app that refuses or is down
// shows up as a socket that opens and then closes with the upstream's error message (and
// internal address) as the close reason; a reason over 123 bytes even throws inside an event
// handler. It forwards only the Cookie header by default, has no backpressure, accepts messages
// up to ws's 100 MiB, and gives no way from a socket back to the session it was opened with,
// which revocation needs. What is left is small enough to own: `ws` on both sides, here.
import { ServerResponse, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import WebSocket, { WebSocketServer, type RawData } from 'ws';
import { statusClass } from '../admin/metrics.js';
import type { GatewayDeps } from '../context.js';
import { badPath, badWebSocketHandshake, crossOriginWebSocket, shuttingDown, unsupportedUpgrade, upstreamRefusedUpgrade, upstreamTimeout, upstreamUnavailable, type GatewayError } from '../errors.js';
import { isSameOrigin } from '../http.js';
import { refusesCrossSiteWebSocket } from '../access/gate.js';
import { checkHandshake, endToEndHeaders, hasBody, isWebSocketUpgrade, WEBSOCKET_VERSION } from './websocket-handshake.js';
import { createWebSocketRegistry, type CloseReason, type OpenSocket, type SocketCredential } from './websocket-registry.js';

const kUpgrade = Symbol('upgrade');
const kUpstreamProtocol = Symbol('upstreamProtocol');

type UpgradeRequest = IncomingMessage & {
  /** Set by `dispatch`: this request came through 'upgrade', its socket is ours to answer on. */
  [kUpgrade]?: { socket: Socket; head: Buffer };
  [kUpstreamProtocol]?: string;
};

/** Above this many bytes queued towards one side, stop reading from the other until it drains. */
const HIGH_WATER_BYTES = 1024 * 1024;
/** A side that has not finished its closing handshake this long after being asked is cut. */
const CLOSE_GRACE_MS = 3_000;
/** Codes that may not be sent in a close frame (RFC 6455 section 7.4.1) and what is sent instead. */
const NO_STATUS = 1005;
const ABNORMAL = 1006;
const CLOSE_INTERNAL_ERROR = 1011;

export interface WebSocketProxyOptions {
  deps: GatewayDeps;
  /** The HTTP path's own header rewriter (identity in, spoofs and the gateway's cookies out). */
  rewriteHeaders(request: FastifyRequest, headers: IncomingHttpHeaders, upstream: URL): IncomingHttpHeaders;
  /** The upstream serving a normalised path (GATEWAY_UPSTREAM_ROUTES, else GATEWAY_UPSTREAM). */
  upstreamFor(path: string): URL;
}

export interface WebSocketProxy {
  /** The proxy route's preHandler after `authenticate`; a no-op for plain HTTP requests. */
  upgrade(request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void;
}

interface Upstream {
  socket: WebSocket;
  status: number;
}

export function createWebSocketProxy(app: FastifyInstance, options: WebSocketProxyOptions): WebSocketProxy {
  const { deps } = options;
  const { config, metrics, logger } = deps;
  const targets = new Map<URL, UpstreamTarget>();
  const targetFor = (path: string) => {
    const upstream = options.upstreamFor(path);
    let target = targets.get(upstream);
    if (!target) targets.set(upstream, (target = upstreamTarget(upstream)));
    return target;
  };
  let closing = false;

  const registry = createWebSocketRegistry({
    sessions: deps.sessions,
    ...(deps.tokens ? { credentials: deps.tokens.invalidation } : {}),
    revalidateIntervalMs: config.websocketRevalidateIntervalMs,
    onError: (err) => logger.warn({ err: { message: (err as Error).message } }, 'websocket session check failed'),
  });
  // The client's handshake is completed by hand once the upstream has answered; this server
  // never listens. No compression: it would cost CPU per message for every socket.
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    maxPayload: config.websocketMaxMessageBytes,
    // The subprotocol is the upstream's choice, relayed.
    handleProtocols: (_offered, request) => (request as UpgradeRequest)[kUpstreamProtocol] || false,
  });
  const closesByReason = new Map<CloseReason, ReturnType<typeof metrics.websocketCloses.labels>>();

  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => dispatch(app, req as UpgradeRequest, socket as Socket, head));
  // SIGTERM: before the listener closes (which would wait for every socket), end them cleanly.
  app.addHook('preClose', async () => {
    closing = true;
    await registry.closeAll();
  });
  app.addHook('onClose', async () => registry.stop());

  async function startUpgrade(request: FastifyRequest, reply: FastifyReply, pending: { socket: Socket; head: Buffer }): Promise<void> {
    if (!isWebSocketUpgrade(request.headers)) {
      // Another protocol (h2c): the Upgrade is ignored (RFC 9110 section 7.8) and the request is
      // served as plain HTTP, as before. Node already took its body, so only one without a body.
      if (hasBody(request.headers, pending.head)) throw unsupportedUpgrade();
      return;
    }
    const check = checkHandshake(request.method, request.headers);
    if (!check.ok) {
      if (check.status === 426) reply.header('sec-websocket-version', WEBSOCKET_VERSION);
      throw badWebSocketHandshake(check.status, check.reason);
    }
    // Cross-site WebSocket hijacking (access/gate.ts): checked once the handshake is known to be one.
    if (refusesCrossSiteWebSocket(request.principal, isSameOrigin(request, config))) throw crossOriginWebSocket();
    if (closing) throw shuttingDown();
    const target = targetFor(request.normalisedPath);
    const url = target.url(request.url);
    if (url === null) throw badPath('cannot be forwarded unchanged');
    const upstream = await connectUpstream(request, url, target, check.protocols);
    if (closing) {
      upstream.socket.terminate();
      throw shuttingDown();
    }
    reply.hijack();
    try {
      accept(request, pending, upstream);
    } catch (err) {
      // Nothing can be answered on a hijacked request: cut both sides rather than leak them.
      request.log.error({ err: { message: (err as Error).message } }, 'websocket upgrade failed');
      upstream.socket.terminate();
      pending.socket.destroy();
    }
  }

  function connectUpstream(request: FastifyRequest, url: string, target: UpstreamTarget, protocols: string[]): Promise<Upstream> {
    const started = performance.now();
    const headers = options.rewriteHeaders(request, { ...endToEndHeaders(request.headers), host: target.host }, target.upstream);
    const socket = new WebSocket(url, protocols, {
      headers: headers as Record<string, string>,
      perMessageDeflate: false,
      maxPayload: config.websocketMaxMessageBytes,
      followRedirects: false,
      // As on the HTTP path: an https upstream's certificate is always verified.
      rejectUnauthorized: true,
      ...(config.upstreamTlsCa ? { ca: config.upstreamTlsCa } : {}),
    });
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (status: number, failure: GatewayError | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        metrics.upstreamDuration.observe({ status_class: statusClass(status) }, (performance.now() - started) / 1_000);
        if (!failure) return resolve({ socket, status });
        socket.terminate();
        if (failure.statusCode >= 500) request.log.warn({ code: failure.code, cause: (failure.cause as Error | undefined)?.message }, 'upstream failed');
        reject(failure);
      };
      const timer = setTimeout(() => settle(504, upstreamTimeout(new Error('WebSocket handshake timed out'))), config.upstreamTimeoutMs);
      socket.once('open', () => {
        // Nothing is read from the app until the client's side exists to receive it.
        socket.pause();
        settle(101, null);
      });
      socket.on('unexpected-response', (_req, res) => {
        res.resume();
        const status = res.statusCode ?? 502;
        settle(status, status >= 400 && status < 500 ? upstreamRefusedUpgrade(status) : upstreamUnavailable(new Error(`upstream answered ${status} to a WebSocket upgrade`)));
      });
      // Kept for the socket's whole life: an 'error' without a listener would crash the process.
      socket.on('error', (err) => settle(502, upstreamUnavailable(err)));
    });
  }

  function accept(request: FastifyRequest, pending: { socket: Socket; head: Buffer }, upstream: Upstream): void {
    const raw = request.raw as UpgradeRequest;
    raw[kUpstreamProtocol] = upstream.socket.protocol;
    let client: WebSocket | null = null;
    // Synchronous: we validated the handshake already, so `ws` either calls back at once or
    // finds the client gone (and destroys its socket).
    wss.handleUpgrade(raw, pending.socket, pending.head, (ws) => {
      client = ws;
    });
    if (client === null) {
      upstream.socket.terminate();
      return;
    }
    link(request, client, upstream.socket);
  }

  /**
   * What the socket's principal was found by, asked again by the registry: the session cookie, or
   * the Authorization header (an API token, or Basic) through the same function the gate asks.
   */
  function socketCredential(request: FastifyRequest): SocketCredential | null {
    const principal = request.principal;
    if (!principal) return null;
    const user = principal.record.user;
    const cookieValue = request.cookies[config.cookieName];
    if (principal.session) {
      if (!cookieValue) return null;
      return {
        key: principal.session.idHash,
        user,
        stillValid: async (touch) => (await deps.sessions.validate(cookieValue, { touch })).outcome === 'valid',
      };
    }
    const authorization = request.headers.authorization;
    const header = deps.tokens?.authenticator;
    if (!header || typeof authorization !== 'string') return null;
    const ip = request.ip;
    return {
      key: principal.idHash,
      user,
      async stillValid() {
        const verdict = await header.authenticate(authorization, ip);
        switch (verdict.kind) {
          case 'valid':
            return verdict.id === principal.idHash;
          case 'none':
          case 'invalid':
            return false;
          // Fail closed, as a request would (429/503): the socket is told to try again later.
          case 'throttled':
          case 'busy':
            throw new Error(`the ${principal.kind} check could not answer (${verdict.kind})`);
        }
      },
    };
  }

  function link(request: FastifyRequest, client: WebSocket, upstream: WebSocket): void {
    const started = performance.now();
    const user = request.principal?.record.user ?? null;
    let reason: CloseReason | null = null;
    let alive = true;
    let upstreamAlive = true;
    let closed = 0;
    let killTimer: NodeJS.Timeout | null = null;

    const socket: OpenSocket = {
      credential: socketCredential(request),
      active: false,
      end(code, text, why) {
        if (reason !== null) return;
        reason = why;
        closeSide(client, code, text);
        closeSide(upstream, code, text);
        armKillTimer();
      },
      heartbeat() {
        // A side we stopped reading (backpressure) cannot be expected to have answered.
        if (client.readyState === WebSocket.OPEN && !client.isPaused) {
          if (!alive) {
            reason ??= 'unresponsive';
            client.terminate();
            return;
          }
          alive = false;
          client.ping();
        }
        // The app's side too: a half-open connection to it (an app host gone without a FIN)
        // would otherwise hold the client's socket open until the session ends.
        if (upstream.readyState === WebSocket.OPEN && !upstream.isPaused) {
          if (!upstreamAlive) {
            reason ??= 'unresponsive';
            upstream.terminate();
            return;
          }
          upstreamAlive = false;
          upstream.ping();
        }
      },
    };

    const armKillTimer = () => {
      killTimer ??= setTimeout(() => {
        client.terminate();
        upstream.terminate();
      }, CLOSE_GRACE_MS);
      killTimer.unref();
    };
    const onClosed = () => {
      if (++closed < 2) return;
      if (killTimer) clearTimeout(killTimer);
      registry.remove(socket);
      metrics.websocketConnections.dec();
      const why = reason ?? 'client';
      let counter = closesByReason.get(why);
      if (!counter) closesByReason.set(why, (counter = metrics.websocketCloses.labels(why)));
      counter.inc();
      if (config.accessLog) {
        request.log.info({ path: request.normalisedPath, user, reason: why, ms: Math.round(performance.now() - started) }, 'websocket closed');
      }
    };

    client.on('message', (data, isBinary) => {
      socket.active = true;
      alive = true;
      forward(data, isBinary, upstream, client);
    });
    upstream.on('message', (data, isBinary) => {
      upstreamAlive = true;
      forward(data, isBinary, client, upstream);
    });
    client.on('pong', () => {
      alive = true;
    });
    upstream.on('pong', () => {
      upstreamAlive = true;
    });
    client.on('error', (err) => noteError(err));
    upstream.on('error', (err) => noteError(err));
    client.on('close', (code, text) => {
      reason ??= 'client';
      relayClose(upstream, code === ABNORMAL ? 1001 : code, code === ABNORMAL ? 'client went away' : text);
      armKillTimer();
      onClosed();
    });
    upstream.on('close', (code, text) => {
      reason ??= 'upstream';
      relayClose(client, code === ABNORMAL ? CLOSE_INTERNAL_ERROR : code, code === ABNORMAL ? 'upstream connection lost' : text);
      armKillTimer();
      onClosed();
    });
    function noteError(err: Error & { code?: string }) {
      // ws reports protocol violations (bad UTF-8, a message over the size limit) with WS_ERR_* codes.
      if (err.code?.startsWith('WS_ERR_')) reason ??= 'protocol_error';
    }

    registry.add(socket);
    metrics.websocketConnections.inc();
    if (config.accessLog) {
      request.log.info({ method: request.method, path: request.normalisedPath, status: 101, ms: Math.round(performance.now() - started), user, ip: request.ip }, 'request');
    }
    // The app may have gone between its handshake and now (an error while paused).
    if (upstream.readyState === WebSocket.CLOSED) {
      reason = 'upstream';
      closeSide(client, CLOSE_INTERNAL_ERROR, 'upstream connection lost');
      closed++;
      armKillTimer();
      return;
    }
    upstream.resume();
  }

  return {
    upgrade(request, reply, done) {
      const pending = (request.raw as UpgradeRequest)[kUpgrade];
      if (pending === undefined) return done();
      startUpgrade(request, reply, pending).then(() => done(), done);
    },
  };
}

/**
 * Routes an upgrade request through fastify with a response bound to its socket: a refusal is
 * written there as plain HTTP, then the connection ends.
 */
function dispatch(app: FastifyInstance, req: UpgradeRequest, socket: Socket, head: Buffer): void {
  // A client resetting while its request is decided must not become an uncaught 'error'.
  socket.on('error', () => socket.destroy());
  req[kUpgrade] = { socket, head };
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket);
  res.on('finish', () => {
    socket.end();
    socket.setTimeout(CLOSE_GRACE_MS, () => socket.destroy());
  });
  app.routing(req, res);
}

/** Sends one message on, pausing the sender while the receiver's queue is over the high-water mark. */
function forward(data: RawData, isBinary: boolean, to: WebSocket, from: WebSocket): void {
  if (to.readyState !== WebSocket.OPEN) return;
  to.send(data, { binary: isBinary }, () => {
    if (from.isPaused && to.bufferedAmount <= HIGH_WATER_BYTES) from.resume();
  });
  if (to.bufferedAmount > HIGH_WATER_BYTES) from.pause();
}

function closeSide(socket: WebSocket, code: number, text: string | Buffer): void {
  if (socket.readyState === WebSocket.CONNECTING || socket.readyState === WebSocket.OPEN) socket.close(code, text);
}

/** Passes a close on to the other side; codes that cannot be sent in a frame are sent as no code. */
function relayClose(to: WebSocket, code: number, text: string | Buffer): void {
  if (to.readyState !== WebSocket.OPEN) return;
  if (code === NO_STATUS || !isSendableCode(code)) to.close();
  else to.close(code, text);
}

function isSendableCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== NO_STATUS && code !== ABNORMAL) || (code >= 3000 && code <= 4999);
}

/**
 * Where upgrades go: the upstream's origin with ws:/wss:, its path as a prefix. Returns null when
 * the WHATWG URL parser (which `ws` applies) would change the authorised path.
 */
interface UpstreamTarget {
  upstream: URL;
  host: string;
  url(requestUrl: string): string | null;
}

function upstreamTarget(upstream: URL): UpstreamTarget {
  const origin = `${upstream.protocol === 'https:' ? 'wss:' : 'ws:'}//${upstream.host}`;
  const basePath = upstream.pathname.replace(/\/$/, '');
  return {
    upstream,
    host: upstream.host,
    url(requestUrl) {
      const query = requestUrl.indexOf('?');
      const path = basePath + (query === -1 ? requestUrl : requestUrl.slice(0, query));
      const parsed = new URL(origin + basePath + requestUrl);
      return parsed.pathname === path ? parsed.href : null;
    },
  };
}
