// The common proxied request answered before fastify's router: a GET or HEAD without a body, on a
// plain path, that the gate allows at once (a session the local cache holds, or a public path).
// Measured whole-process, fastify's routing, hooks, per-request objects and the proxy plugin's
// reply machinery cost a proxied request more than the gateway's own work (bench/RESULTS.md). The
// decision is the gate's, as on every door; the headers both ways are forwarding.ts's, as on the
// fastify route; the access line and request metric are app.ts's. Everything else goes on to
// fastify, which answers it exactly as before; a verdict reached here is handed over with the
// request, so its session is never validated, touched or counted twice, and an upstream failure
// is handed over to be answered and logged by the route's own error handling (the request is never
// sent to the app twice).
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { fastifyCookie } from '@fastify/cookie';
import proxyAddr from '@fastify/proxy-addr';
import { Agent, type Dispatcher } from 'undici';
import type { FastifyBaseLogger } from 'fastify';
import { statusObserver } from '../admin/metrics.js';
import { isPromise, type Gate, type LogoutVerdict, type Verdict } from '../access/gate.js';
import { normaliseRequestUrl, pathForLog } from '../access/paths.js';
import { requestReadings } from '../access/request-readings.js';
import type { GatewayDeps } from '../context.js';
import { hostRefusal, peerTrusted, rawPublicOrigin, requestIdOf, requestProtocol } from '../http.js';
import { requestLoggerFactory, roundedMs, type AccessLine } from '../logger.js';
import { proxiedAccess, sanitizedHeaderValues, type Forwarding } from './forwarding.js';
import { hopByHopNames } from './hop-by-hop.js';

const kHandedOver = Symbol('proxyHandedOver');
const kReceivedAt = Symbol('proxyReceivedAt');

/** An upstream call that failed: before the app answered (`upstream`), or its body before a byte reached the client (`body`). */
export interface UpstreamFailure {
  stage: 'upstream' | 'body';
  error: Error & { code?: string };
  /** performance.now() when the call was made (the upstream latency metric). */
  startedAt: number;
}

/** What the fast path hands the route along with the request. */
export type HandedOver =
  | { verdict: Verdict | LogoutVerdict | Promise<Verdict | LogoutVerdict>; failure?: undefined }
  | { verdict: Extract<Verdict, { kind: 'allow' | 'public' }>; failure: UpstreamFailure };

type Carrying = IncomingMessage & { [kHandedOver]?: HandedOver; [kReceivedAt]?: number };

/** The hand-over for this request, once (the route takes it). */
export function takeHandedOver(req: IncomingMessage): HandedOver | undefined {
  const handed = (req as Carrying)[kHandedOver];
  (req as Carrying)[kHandedOver] = undefined;
  return handed;
}

/** performance.now() when the fast path first saw a request it handed over (its duration counts from there). */
export function receivedByFastPath(req: IncomingMessage): number | undefined {
  return (req as Carrying)[kReceivedAt];
}

export interface ProxyFastPathEvents {
  /** The request metric and access line of a request answered here (app.ts's, as for every other). */
  answered(log: FastifyBaseLogger, line: AccessLine, elapsedMs: number): void;
  /** A request whose client went away (or was cut by the request timeout) before its answer ended. */
  clientGone(req: IncomingMessage, log: FastifyBaseLogger, method: string, path: string, elapsedMs: number, user: string | null, ip: string): void;
}

export interface ProxyFastPath {
  /** Answers the request itself or passes it to `next` (fastify); never both. */
  handle(req: IncomingMessage, res: ServerResponse, next: (req: IncomingMessage, res: ServerResponse) => void): void;
  /** From now on every request goes to fastify (which answers 503 while closing). */
  close(): void;
  /** Closes the connections to the app once their requests are done. */
  destroy(): Promise<void>;
}

/**
 * Characters a path may hold to be forwarded here: RFC 3986's unreserved and sub-delims, `:`, `@`,
 * `/` and percent-escapes. The proxy plugin re-parses a path as a URL, which leaves such a path
 * as it is; anything else takes the route.
 */
const PLAIN_PATH = /^\/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*$/;

/**
 * Whether the proxy plugin forwards this path unchanged. It decodes a path to look for `..`
 * (anywhere after or before a slash: `/..foo` too) and refuses it with a 400, as it refuses what
 * does not decode; a backslash or an empty segment it reads otherwise again. Those take the route,
 * which answers them as it always has.
 */
function forwardedUnchanged(path: string): boolean {
  if (!PLAIN_PATH.test(path)) return false;
  let decoded = path;
  if (path.includes('%')) {
    try {
      decoded = decodeURIComponent(path);
    } catch {
      return false;
    }
  }
  return !decoded.includes('/..') && !decoded.includes('../') && !decoded.includes('//') && !decoded.includes('\\');
}

type Forwardable = Extract<Verdict, { kind: 'allow' | 'public' }>;

/** Null when the fast path cannot serve this configuration at all (every request takes the route). */
export function createProxyFastPath(deps: GatewayDeps, gate: Gate, forwarding: Forwarding, events: ProxyFastPathEvents): ProxyFastPath | null {
  const { config } = deps;
  // Spans are written for the route (one per request, one per upstream call); with tracing on, it alone answers.
  if (deps.tracing) return null;
  const hsts = config.hsts;
  const ownRoutes = `${config.authPrefix}/`;
  // request.ip as fastify reads it (trustProxy): through the trusted proxies' X-Forwarded-For, by the same library.
  const trustedHop = config.trustedProxyCidrs.length > 0 ? proxyAddr.compile(config.trustedProxyCidrs) : null;
  const clientIp = (req: IncomingMessage): string => {
    if (trustedHop === null) return req.socket.remoteAddress!;
    const addresses = proxyAddr.all(req, trustedHop);
    return addresses[addresses.length - 1]!;
  };
  const observeUpstream = statusObserver(deps.metrics.upstreamDuration);
  // The same limits as the route's connections to the app (routes.ts), in a pool of its own.
  const dispatcher = new Agent({
    connections: null,
    headersTimeout: config.upstreamTimeoutMs,
    bodyTimeout: config.upstreamTimeoutMs,
    connect: { rejectUnauthorized: true, ...(config.upstreamTlsCa ? { ca: config.upstreamTlsCa } : {}) },
  });
  let enabled = true;

  /** The normalised URL of a request this path may take, or null. */
  const takes = (req: IncomingMessage): { url: string; path: string } | null => {
    const method = req.method;
    if (method !== 'GET' && method !== 'HEAD') return null;
    const headers = req.headers;
    if (headers['content-length'] !== undefined || headers['transfer-encoding'] !== undefined || headers.expect !== undefined || headers.upgrade !== undefined) return null;
    const normalised = normaliseRequestUrl(req.url ?? '/');
    if (!normalised.ok) return null;
    const query = normalised.url.indexOf('?');
    const path = query === -1 ? normalised.url : normalised.url.slice(0, query);
    if (!forwardedUnchanged(path) || path === config.authPrefix || path.startsWith(ownRoutes)) return null;
    if (hostRefusal(req, config) !== null) return null;
    return { url: normalised.url, path };
  };

  const handOver = (req: IncomingMessage, res: ServerResponse, next: (req: IncomingMessage, res: ServerResponse) => void, handed: HandedOver, receivedAt: number) => {
    (req as Carrying)[kHandedOver] = handed;
    (req as Carrying)[kReceivedAt] = receivedAt;
    next(req, res);
  };

  return {
    close() {
      enabled = false;
    },
    destroy: () => dispatcher.close(),
    handle(req, res, next) {
      if (!enabled) return next(req, res);
      const taken = takes(req);
      if (taken === null) return next(req, res);
      const receivedAt = performance.now();
      const cookieHeader = req.headers.cookie;
      let cookies: Record<string, string | undefined>;
      try {
        // The same parser (and decoding) as @fastify/cookie gives the route; anything odd is the route's.
        cookies = cookieHeader === undefined ? {} : fastifyCookie.parse(cookieHeader);
      } catch {
        return next(req, res);
      }
      const found = requestReadings({ method: req.method!, url: taken.url, headers: req.headers, reroutingHeadersReachApp: peerTrusted(req.socket, config) });
      // (Only a COPY or MOVE names a Destination today; the route forwards it normalised.)
      if (!found.ok || found.destinationHeader !== null) return next(req, res);
      const ip = clientIp(req);
      let verdict: Verdict | LogoutVerdict | Promise<Verdict | LogoutVerdict>;
      try {
        verdict = gate.decide(proxiedAccess(taken.path, req.method!, found.readings, { cookies, headers: req.headers, ip }));
      } catch {
        return next(req, res); // nothing happened yet: the route decides, and answers whatever failed
      }
      const go = (decided: Verdict | LogoutVerdict) => {
        if (!enabled || !forwardable(decided)) return handOver(req, res, next, { verdict: decided }, receivedAt);
        forward(req, res, next, taken, decided, ip, receivedAt);
      };
      if (!isPromise(verdict)) return go(verdict);
      // A store error, or anything else: the route decides again and answers it with its own handling.
      verdict.then(go, () => handOver(req, res, next, { verdict }, receivedAt)).catch(() => res.destroy());
    },
  };

  /** Only a request the gate lets through as it stands: anything with more to say (a renewed cookie) takes the route. */
  function forwardable(verdict: Verdict | LogoutVerdict): verdict is Forwardable {
    if (verdict.kind === 'public') return true;
    return verdict.kind === 'allow' && !verdict.principal.session?.renewedCookie;
  }

  function forward(req: IncomingMessage, res: ServerResponse, next: (req: IncomingMessage, res: ServerResponse) => void, taken: { url: string; path: string }, verdict: Forwardable, ip: string, receivedAt: number): void {
    const id = requestIdOf(req.headers);
    const log = requestLoggerFactory(deps.logger as FastifyBaseLogger, { reqId: id }, {});
    const user = verdict.kind === 'allow' ? verdict.principal.record.user : null;
    const method = req.method!;
    const forwarded = verdict.kind === 'allow' ? verdict.forwarded : null;
    const upstream = forwarding.upstreamFor(taken.path);
    let headers: IncomingHttpHeaders;
    try {
      headers = forwarding.requestHeaders(req.headers, forwarding.context({ socket: req.socket, headers: req.headers, id }, forwarded, upstream), hopByHopNames(req.headers));
    } catch {
      // (A signed identity that cannot be made, say.) Nothing was sent: the route builds them again and answers its failure.
      return handOver(req, res, next, { verdict }, receivedAt);
    }
    // The app's own address, as the proxy plugin sends it, unless GATEWAY_PRESERVE_HOST kept the client's.
    if (!config.preserveHost) headers.host = upstream.host;
    const startedAt = performance.now();
    // Once handed over, the request and its answer are the route's: nothing more is counted here.
    let handedOver = false;
    const failed = (stage: UpstreamFailure['stage'], error: Error) => {
      // A client already gone has nobody to answer and was counted as such (499), as on the route.
      if (res.destroyed || req.socket.destroyed) return;
      handedOver = true;
      handOver(req, res, next, { verdict, failure: { stage, error, startedAt } }, receivedAt);
    };

    const options = { origin: upstream.origin, path: taken.url, method, headers: headers as Record<string, string | string[]>, body: null };
    // The app's answer goes to the client as undici hands it over: no Readable between them (the
    // proxy plugin's stream, piped, with its end-of-stream watchers, cost more per request than the
    // gateway's own work here). The headers go with the first byte, as fastify sends a stream.
    let call: Dispatcher.DispatchController | undefined;
    let status = 0;
    let bodyOpen = false;
    const closed = () => {
      if (handedOver || res.writableFinished) return;
      // The client went away (or its answer was cut): the app's call stops, as a piped body is destroyed.
      if (bodyOpen) {
        bodyOpen = false;
        if (res.headersSent) log.info({ res: { statusCode: res.statusCode } }, 'stream closed prematurely');
      }
      call?.abort(new Error('the client went away'));
      // Only a closed client connection is the client's doing (as app.ts's onRequestAbort hook reads it).
      if (req.socket.destroyed) events.clientGone(req, log, method, taken.path, performance.now() - receivedAt, user, ip);
    };
    // A client gone while the gate waited for the session store has had its 'close' already:
    // nobody to answer and nothing to ask the app.
    if (res.closed) return closed();
    res.once('close', closed);
    try {
      dispatcher.dispatch(options, {
        onRequestStart(controller) {
          call = controller;
          if (res.destroyed) controller.abort(new Error('the client went away'));
        },
        onResponseStart(controller, statusCode, answerHeaders) {
          if (statusCode < 200) return; // an interim answer (103 Early Hints): not forwarded, as on the route
          const answeredAt = performance.now();
          if (req.destroyed || res.destroyed) return controller.abort(new Error('the client went away'));
          try {
            status = validStatus(statusCode);
            res.statusCode = status;
            const out = sanitizedHeaderValues(forwarding.responseHeaders(answerHeaders as IncomingHttpHeaders, upstream, () => rawPublicOrigin(req, config)));
            for (const name of Object.keys(out)) res.setHeader(name, out[name]!);
            // As app.ts's onSend hook: on https only, after the app's, so the operator's value wins.
            if (hsts !== null && requestProtocol(req, config) === 'https') res.setHeader('strict-transport-security', hsts);
          } catch (error) {
            // (An app's status or header Node cannot send.) The route answers 502 without any of the app's headers.
            for (const name of res.getHeaderNames()) res.removeHeader(name);
            failed('upstream', error as Error);
            return controller.abort(error as Error); // (its error comes back here, to a request already handed over)
          }
          // (An unusable answer is counted by the route, once, as the failure it answers.)
          observeUpstream(status, (answeredAt - startedAt) / 1_000);
          bodyOpen = true;
          res.once('finish', () => {
            if (handedOver) return;
            const elapsedMs = performance.now() - receivedAt;
            events.answered(log, { reqId: id, method, path: pathForLog(taken.path), status, ms: roundedMs(elapsedMs), user, ip }, elapsedMs);
          });
        },
        onResponseData(controller, chunk) {
          if (!bodyOpen) return;
          if (res.write(chunk)) return;
          // The client reads slower than the app sends: the app's socket waits, as a piped body does.
          controller.pause();
          res.once('drain', () => controller.resume());
        },
        onResponseEnd() {
          if (!bodyOpen) return;
          bodyOpen = false;
          res.end();
        },
        onResponseError(_controller, error) {
          if (handedOver) return;
          if (!bodyOpen) return failed('upstream', error);
          bodyOpen = false;
          // Before any byte reached the client the route answers it, with none of the app's headers; after, the answer is cut.
          if (!res.headersSent) {
            for (const name of res.getHeaderNames()) res.removeHeader(name);
            return failed('body', error);
          }
          logStreamError(log, error);
          res.destroy();
        },
      });
    } catch (error) {
      // undici reports a request it refuses through onResponseError; were it to throw, the route answers the same way.
      failed('upstream', error as Error);
    }
  }
}

/** As fastify's reply.code: an upstream status outside 100–599 is the app's failure (502). */
function validStatus(status: number): number {
  if (!Number.isInteger(status) || status < 100 || status > 599) throw new Error(`the app answered with status ${status}`);
  return status;
}

/** fastify's own line for a stream that failed after its headers went out (as its sendStream logs it). */
function logStreamError(log: FastifyBaseLogger, err: Error): void {
  log.warn({ err }, 'response terminated with an error with headers already sent');
}
