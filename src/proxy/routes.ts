// Every request that is not a gateway route: authenticate, then forward to the upstream with
// identity injected and spoofed identity stripped (SPEC sections 3 and 4).
import httpProxy, { type FastifyHttpProxyOptions } from '@fastify/http-proxy';
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import type { IncomingHttpHeaders } from 'node:http';
import { statusObserver } from '../admin/metrics.js';
import { createLogout } from '../login/logout.js';
import type { GatewayDeps } from '../context.js';
import { accessDenied, badDestination, badPath, badRequestBody, GatewayError, requestBodyTooLarge, sessionStoreUnavailable, unreadableBodyEncoding, upstreamTimeout, upstreamUnavailable } from '../errors.js';
import { clearSessionCookie, isBrowserNavigation, peerTrusted, publicOrigin, setSessionCookie } from '../http.js';
import { auditRefusal, isPromise, unreachable, type AccessRequest, type Gate, type LogoutVerdict, type Principal, type Verdict } from '../access/gate.js';
import { createBodyMethodScanner, type BodyScan } from '../access/body-methods.js';
import { bodyMayNamePaths, createBodyPathScanner, type BodyPaths } from '../access/body-paths.js';
import { appBasePath } from '../access/destination.js';
import { overridingBodyType } from '../access/method-override.js';
import { judgeBodyAsItStreams, OVERRIDE_CANDIDATES, unreadableCoding, type BodyScanner } from './judged-body.js';
import { hopByHopNames } from './hop-by-hop.js';
import { sendContinue } from './expect-continue.js';
import { sameForwardedIdentity, type ForwardingContext } from '../identity/headers.js';
import { PROXIED_METHODS } from './methods.js';
import { proxiedAccess, type Forwarded, type Forwarding, type ProxiedAccess } from './forwarding.js';
import { takeHandedOver, type UpstreamFailure } from './fast-path.js';
import { pathForLog } from '../access/paths.js';
import { requestReadings } from '../access/request-readings.js';
import { createWebSocketProxy } from './websocket.js';
import { endUpstream, traceUpstream } from '../tracing/index.js';
import { basicChallengeFor } from '../tokens/authenticator.js';

/**
 * No cap on connections to the app: an HTTP/1.1 connection carries one request at a time, so any
 * fixed pool lets that many trickling uploads or long polls (anonymous ones included) queue every
 * other user's request behind them. Unbounded, each in-flight request holds only its own
 * connection, as if its client had connected to the app directly; a body's time on it is bounded by
 * GATEWAY_REQUEST_TIMEOUT and the wait for the answer by GATEWAY_UPSTREAM_TIMEOUT.
 */
const UPSTREAM_CONNECTIONS = null;
const kProxyStarted = Symbol('proxyStarted');
/** What is forwarded for an allowed request: the principal's identity, narrowed by the rule. */
const kForwarded = Symbol('forwarded');
/** The normalised Destination of a COPY/MOVE that was authorised: what the app receives. */
const kDestination = Symbol('destination');

/** Why what the body names refused the request (judged-body.ts), once judged. */
const kBodyRefusal = Symbol('bodyRefusal');
/** The app's headers as the proxy plugin copies them to the reply: taken back if its answer is unusable. */
const kAppHeaders = Symbol('appHeaders');
/** The upstream call failed and was answered (or dropped) by onError. */
const kUpstreamFailed = Symbol('upstreamFailed');

type TimedRequest = FastifyRequest & {
  [kProxyStarted]?: number;
  [kForwarded]?: Forwarded;
  [kDestination]?: string;
  [kBodyRefusal]?: Verdict | GatewayError;
  [kAppHeaders]?: Record<string, unknown>;
  [kUpstreamFailed]?: boolean;
};

/** What a body named, for the gate: other methods, other paths, its members' content; or why it is refused. */
type BodyReadings = { ok: true; readings: Pick<AccessRequest, 'methods' | 'named' | 'wholeTree'> | null } | { ok: false; refusal: GatewayError };

const fromMethodScan = (scan: BodyScan): BodyReadings => {
  if (!scan.ok) return { ok: false, refusal: badRequestBody(scan.reason) };
  return { ok: true, readings: scan.methods === null ? null : { methods: scan.methods } };
};

const fromPathScan = (scan: BodyPaths): BodyReadings => {
  if (!scan.ok) return { ok: false, refusal: scan.tooLarge ? requestBodyTooLarge(scan.reason) : badRequestBody(scan.reason) };
  if (scan.named === null && !scan.readsMembers) return { ok: true, readings: null };
  return { ok: true, readings: { ...(scan.named === null ? {} : { named: scan.named }), ...(scan.readsMembers ? { wholeTree: true } : {}) } };
};

/** One body read by two scanners as it streams (a POST naming `_method` and REPORT's hrefs): refused if either refuses it. */
function both(first: BodyScanner<BodyReadings>, second: BodyScanner<BodyReadings>): BodyScanner<BodyReadings> {
  return {
    write: (chunk) => first.write(chunk) !== false && second.write(chunk) !== false,
    end: () =>
      Promise.all([first.end(), second.end()]).then(([a, b]): BodyReadings => {
        if (!a.ok) return a;
        if (!b.ok) return b;
        if (a.readings === null || b.readings === null) return { ok: true, readings: a.readings ?? b.readings };
        return { ok: true, readings: { ...a.readings, ...b.readings } };
      }),
  };
}

/** A scanner whose end is read as BodyReadings. */
function mapped<Scan>(scanner: BodyScanner<Scan>, read: (scan: Scan) => BodyReadings): BodyScanner<BodyReadings> {
  return { write: (chunk) => scanner.write(chunk), end: () => scanner.end().then(read) };
}

export async function proxyRoutes(app: FastifyInstance, deps: GatewayDeps & { upstream: URL }, gate: Gate, forwarding: Forwarding): Promise<void> {
  const { config, metrics } = deps;
  const logout = createLogout(deps);
  const loginUrl = `${config.authPrefix}/login`;
  const secondStepUrl = `${config.authPrefix}/mfa`;
  const observeUpstreamStatus = statusObserver(metrics.upstreamDuration);
  const basicChallenge = deps.tokens?.authenticator.basicEnabled === true ? basicChallengeFor(config.loginTitle) : null;

  /** A renewed cookie (signed with a retired secret) goes out with whatever is answered. */
  const renewCookie = (reply: FastifyReply, principal: Principal | null) => {
    const renewed = principal?.session?.renewedCookie;
    if (renewed) setSessionCookie(reply, config, renewed);
  };

  /**
   * The preHandler of every proxied route: no access, no forwarding. In fastify's callback form, so
   * a request the gate decides at once (a cached session) passes without a promise.
   */
  const authenticate = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    // Decided (and perhaps sent) by the fast path already: never decided, touched or sent twice.
    const handed = takeHandedOver(request.raw);
    if (handed?.failure !== undefined) return answerHandedOverFailure(request, reply, handed.verdict, handed.failure, done);
    // What else the app may act on (a Destination, a path in the query, an overriding method, the
    // whole tree, a trusted proxy's rewritten URL, a Destination without the app's base path): the
    // rules for each are asked too (request-readings.ts).
    const found = requestReadings({ method: request.method, url: request.url, headers: request.headers, reroutingHeadersReachApp: peerTrusted(request.socket, config) });
    if (!found.ok) return done(found.kind === 'destination' ? badDestination(found.reason) : badPath(found.reason));
    // The Destination the app receives is the one authorised (normalised).
    if (found.destinationHeader !== null) (request as TimedRequest)[kDestination] = found.destinationHeader;
    const access = proxiedAccess(request.normalisedPath, request.method, found.readings, { cookies: request.cookies, headers: request.headers, ip: request.ip });
    const verdict = handed?.verdict ?? gate.decide(access);
    if (isPromise(verdict)) verdict.then((decided) => judgeBody(request, reply, access, decided, done)).catch(done);
    else judgeBody(request, reply, access, verdict, done);
  };

  /**
   * A request let through whose body may name what would change the decision (judged-body.ts): a
   * POST's form, multipart or JSON body naming a method, where some method would meet another
   * rule here; a WebDAV body naming other paths by href, where there are rules; a Depth-1 PROPFIND
   * asking for its members' content, where a rule inside differs.
   */
  const judgeBody = (request: FastifyRequest, reply: FastifyReply, access: ProxiedAccess, verdict: Verdict | LogoutVerdict, done: HookHandlerDoneFunction): void => {
    if (verdict.kind === 'allow' || verdict.kind === 'public') {
      const scanner = bodyScannerFor(request, access, verdict);
      if (scanner !== null) {
        const coding = unreadableCoding(request);
        if (coding !== null) return done(unreadableBodyEncoding(coding));
        judgeBodyAsItStreams(request, scanner, async (readings) => {
          const refusal = await bodyRefusal(access, verdict, readings);
          if (refusal === null) return false;
          (request as TimedRequest)[kBodyRefusal] = refusal;
          return true;
        });
      }
    }
    renderVerdict(request, reply, verdict, done);
  };

  /** A scanner of what this request's body names that could change the verdict, or null: no need to read it. */
  const bodyScannerFor = (request: FastifyRequest, access: ProxiedAccess, verdict: Extract<Verdict, { kind: 'allow' | 'public' }>): BodyScanner<BodyReadings> | null => {
    const methods = methodScannerFor(request, access, verdict);
    const paths = pathScannerFor(request, access, verdict);
    return methods !== null && paths !== null ? both(methods, paths) : (methods ?? paths);
  };

  /** A POST's body read for the methods it names (`_method`), where some method would meet another rule. */
  const methodScannerFor = (request: FastifyRequest, access: ProxiedAccess, verdict: Extract<Verdict, { kind: 'allow' | 'public' }>): BodyScanner<BodyReadings> | null => {
    const contentType = request.headers['content-type'];
    const type = gate.methodScoped ? overridingBodyType(request.method, contentType) : null;
    if (type === null) return null;
    const everyMethod = access.methods === undefined ? OVERRIDE_CANDIDATES : [...access.methods, ...OVERRIDE_CANDIDATES];
    if (gate.ruleFor({ ...access, methods: everyMethod }) === verdict.rule) return null;
    return mapped(createBodyMethodScanner(type, contentType ?? ''), fromMethodScan);
  };

  /**
   * A WebDAV body read for the paths it names (a REPORT's hrefs) or its members' content (a Depth-1
   * PROPFIND), where there are rules. Also a POST that names such a method (a trusted override
   * header, `?_method=REPORT`): an app that honours it runs the REPORT on this body.
   */
  const pathScannerFor = (request: FastifyRequest, access: ProxiedAccess, verdict: Extract<Verdict, { kind: 'allow' | 'public' }>): BodyScanner<BodyReadings> | null => {
    if (!gate.hasRules) return null;
    const namesPaths = bodyMayNamePaths(request.method, request.headers) || access.methods?.some((method) => bodyMayNamePaths(method, request.headers)) === true;
    if (!namesPaths) return null;
    // A PROPFIND names no paths, only its members' content: read only if a rule inside differs.
    if (request.method === 'PROPFIND' && gate.ruleFor({ ...access, wholeTree: true }) === verdict.rule) return null;
    const basePath = peerTrusted(request.socket, config) ? appBasePath(request.headers) : null;
    return mapped(createBodyPathScanner({ contentType: request.headers['content-type'], requestPath: access.path, basePath }), fromPathScan);
  };

  /** Why what a body names refuses the request it was let through as, or null. */
  const bodyRefusal = async (access: ProxiedAccess, verdict: Extract<Verdict, { kind: 'allow' | 'public' }>, body: BodyReadings): Promise<Verdict | GatewayError | null> => {
    if (!body.ok) return body.refusal;
    if (body.readings === null) return null;
    const { methods, named, wholeTree } = body.readings;
    const asked = {
      ...access,
      methods: methods === undefined ? access.methods : [...(access.methods ?? []), ...methods],
      named: named === undefined ? access.named : [...(access.named ?? []), ...named],
      wholeTree: wholeTree === true || access.wholeTree,
    };
    if (gate.ruleFor(asked) === verdict.rule) return null;
    let judged: Verdict | LogoutVerdict;
    try {
      judged = await gate.decide(asked);
    } catch (err) {
      return err instanceof GatewayError ? err : sessionStoreUnavailable(err);
    }
    // (Not a logout: that depends on the path alone, which the first decision found none.)
    if (judged.kind === 'public' || judged.kind === 'logout') return null;
    if (judged.kind !== 'allow') return judged;
    // The identity went out with the request's headers: a rule that would send less refuses.
    if (verdict.kind === 'public' || sameForwardedIdentity(judged.forwarded.record, verdict.forwarded.record)) return null;
    return { kind: 'forbidden', rule: judged.rule, user: judged.principal.record.user, principal: judged.principal };
  };

  /** Answers a request whose body named what the rules refuse, or could not be read (the upstream request was aborted). */
  const renderBodyRefusal = (request: FastifyRequest, reply: FastifyReply, refusal: Verdict | GatewayError): void => {
    // Refused before its end (too large, unreadable), the rest of the body is never read: the
    // connection cannot carry another request, so it closes once answered.
    if (!request.raw.complete) reply.header('connection', 'close');
    if (refusal instanceof GatewayError) return void reply.send(refusal);
    renderVerdict(request, reply, refusal, (err) => void reply.send(err ?? accessDenied()));
  };

  /** Renders the gate's verdict: `done()` forwards, `done(error)` answers with the error; otherwise answered here. */
  const renderVerdict = (request: FastifyRequest, reply: FastifyReply, verdict: Verdict | LogoutVerdict, done: HookHandlerDoneFunction): void => {
    switch (verdict.kind) {
      case 'logout':
        logout.fromAppPath(request, reply).then(undefined, done);
        return;
      case 'public':
        sendContinue(request.raw);
        return done();
      case 'allow':
        request.principal = verdict.principal;
        request.session = verdict.principal.session;
        renewCookie(reply, verdict.principal);
        (request as TimedRequest)[kForwarded] = verdict.forwarded;
        sendContinue(request.raw);
        return done();
      case 'forbidden':
        // A signed-in user without the rule's group, or a `deny` rule: 403 (page or JSON), audited.
        request.principal = verdict.principal;
        request.session = verdict.principal?.session ?? null;
        renewCookie(reply, verdict.principal);
        auditRefusal(request.log, verdict, { ip: request.ip, path: request.normalisedPath });
        return done(accessDenied());
      case 'login': {
        // A cookie that no longer names a session is cleared so the browser stops sending it.
        if (verdict.clearCookie) clearSessionCookie(reply, config);
        if (isBrowserNavigation(request)) {
          const rd = encodeURIComponent(request.url);
          // A session that timed out: the login page says so, rather than appearing out of nowhere.
          const expired = verdict.outcome === 'expired' ? '&expired=1' : '';
          reply.redirect(`${loginUrl}?rd=${rd}${expired}`, 302);
          return;
        }
        // Clients that speak only Basic (WebDAV, CalDAV, git) learn that they may send it.
        if (basicChallenge !== null) reply.header('www-authenticate', basicChallenge);
        reply.code(401).send({ error: 'authentication required', login: loginUrl });
        return;
      }
      case 'second-factor': {
        // Step-up: signed in with a password alone, on a path whose rule asks for a second factor.
        // Through the second step (enrolment first, if need be), then back here.
        request.principal = verdict.principal;
        request.session = verdict.principal.session;
        renewCookie(reply, verdict.principal);
        request.log.info({ audit: 'step_up', user: verdict.principal.record.user, ip: request.ip, path: pathForLog(request.normalisedPath), rule: verdict.rule.index }, 'second factor required');
        const next = `${secondStepUrl}?rd=${encodeURIComponent(request.url)}`;
        if (isBrowserNavigation(request)) reply.redirect(next, 302);
        else reply.code(401).send({ error: 'second factor required', mfa: next });
        return;
      }
      case 'undecidable': // only a door that cannot name the path gets this; the proxy always can
        return done(accessDenied());
      default:
        return unreachable(verdict);
    }
  };

  /** What the identity header rewriter needs to know about a request (HTTP and WebSocket alike). */
  const forwardingContext = (request: FastifyRequest, upstream: URL): ForwardingContext =>
    forwarding.context(request, (request as TimedRequest)[kForwarded] ?? null, upstream);
  // Upgrades pass through `authenticate` first, on the same route, so one function decides for both.
  const websockets = createWebSocketProxy(app, {
    deps,
    rewriteHeaders: (request, headers, upstream) => forwarding.requestHeaders(headers, forwardingContext(request, upstream)),
    // Same choice as the HTTP routes below: the longest matching prefix, else GATEWAY_UPSTREAM.
    upstreamFor: forwarding.upstreamFor,
  });

  /** One http-proxy (and one connection pool) per upstream; `prefix` paths reach it unchanged. */
  const proxyOptions = (upstream: URL, prefix: string): FastifyHttpProxyOptions => ({
    upstream: upstream.toString().replace(/\/$/, ''),
    prefix,
    rewritePrefix: prefix === '/' ? undefined : prefix,
    // Every method, WebDAV and CalDAV included (methods.ts, SPEC 4), through `authenticate`.
    httpMethods: [...PROXIED_METHODS],
    // fastify runs a route's preHandler array in order and stops once one has answered; the
    // plugin's type only spells the single-function form.
    preHandler: [authenticate, websockets.upgrade] as unknown as FastifyHttpProxyOptions['preHandler'],
    disableRequestLogging: true,
    internalRewriteLocationHeader: false,
    undici: {
      connections: UPSTREAM_CONNECTIONS,
      headersTimeout: config.upstreamTimeoutMs,
      bodyTimeout: config.upstreamTimeoutMs,
      // reply-from turns certificate checks OFF for https upstreams unless told otherwise; a
      // gateway that forwards identity must not talk to an unverified peer.
      connect: { rejectUnauthorized: true, ...(config.upstreamTlsCa ? { ca: config.upstreamTlsCa } : {}) },
    },
    replyOptions: {
      // Never replay a request on the app: a legacy POST may not be idempotent.
      retryDelay: () => null,
      rewriteRequestHeaders(request, headers) {
        (request as TimedRequest)[kProxyStarted] = performance.now();
        // Hop-by-hop headers are left out of the client's; what the gateway adds cannot be named away.
        const clientHeaders = headers as IncomingHttpHeaders;
        const forwarded = forwarding.requestHeaders(clientHeaders, forwardingContext(request as FastifyRequest, upstream), hopByHopNames(clientHeaders));
        const destination = (request as TimedRequest)[kDestination];
        if (destination !== undefined) forwarded.destination = destination;
        return traceUpstream(request, forwarded, request.method, upstream, request.normalisedPath);
      },
      rewriteHeaders(upstreamHeaders, request) {
        const appHeaders = forwarding.responseHeaders(upstreamHeaders, upstream, () => publicOrigin(request as FastifyRequest, config));
        (request as TimedRequest)[kAppHeaders] = appHeaders;
        return appHeaders;
      },
      onResponse(request, reply, res) {
        const upstream = res as unknown as { statusCode: number; stream: NodeJS.ReadableStream & { destroy(): void } };
        // The proxy plugin calls this even after it reported the answer unusable (a status no HTTP
        // client may be sent), which onError has answered and counted: the app's body is dropped.
        if ((request as TimedRequest)[kUpstreamFailed] === true) return void upstream.stream.destroy();
        observeUpstream(request as FastifyRequest, upstream.statusCode);
        endUpstream(request, upstream.statusCode);
        reply.send(upstream.stream);
      },
      onError(reply, { error }) {
        (reply.request as TimedRequest)[kUpstreamFailed] = true;
        endUpstream(reply.request, null, error);
        // The body named a method the rules refuse: the app never got it whole; the client learns why.
        const refusal = (reply.request as TimedRequest)[kBodyRefusal];
        if (refusal !== undefined) return renderBodyRefusal(reply.request as FastifyRequest, reply as FastifyReply, refusal);
        // The client went away mid-request (its body stream broke the upstream call): its doing,
        // not the app's. No 5xx in the upstream metric (the Upstream5xx alert) and nobody to answer;
        // the request itself is counted by app.ts's onRequestAbort hook.
        // (The request stream being destroyed is no proof: undici also destroys it when the app stops
        // reading the body, which is the app's failure; only a closed client connection is.)
        if (reply.raw.destroyed || reply.raw.socket?.destroyed === true) return;
        answerUpstreamFailure(reply.request as FastifyRequest, reply as FastifyReply, error);
      },
    },
  });

  /** The app could not be reached or did not answer in time: 502 or 504, counted and logged. */
  function answerUpstreamFailure(request: FastifyRequest, reply: FastifyReply, error: Error & { statusCode?: number }): void {
    const failure = error.statusCode === 504 ? upstreamTimeout(error) : upstreamUnavailable(error);
    observeUpstream(request, failure.statusCode);
    request.log.warn({ code: failure.code, cause: (error.cause as Error | undefined)?.message ?? error.message }, 'upstream failed');
    reply.send(failure);
  }

  /**
   * An upstream call the fast path made and that failed before anything reached the client: answered
   * as the route answers its own. Before the app answered, as the proxy plugin reports it (a 504 for a
   * timeout, else a 502); a body that broke before its first byte, as fastify answers a failed stream.
   */
  function answerHandedOverFailure(request: FastifyRequest, reply: FastifyReply, verdict: Extract<Verdict, { kind: 'allow' | 'public' }>, failure: UpstreamFailure, done: HookHandlerDoneFunction): void {
    if (verdict.kind === 'allow') {
      request.principal = verdict.principal;
      request.session = verdict.principal.session;
    }
    if (failure.stage === 'body') return done(failure.error);
    (request as TimedRequest)[kProxyStarted] = failure.startedAt;
    request.log.warn(failure.error, 'response errored');
    const timedOut = failure.error.code === 'UND_ERR_HEADERS_TIMEOUT';
    answerUpstreamFailure(request, reply, Object.assign(new Error(timedOut ? 'Gateway Timeout' : 'Bad Gateway', { cause: failure.error }), { statusCode: timedOut ? 504 : 502 }));
  }

  // An app's answer that failed before its first byte reached the client (a status no client may be
  // sent, a body that broke) is answered with the gateway's own error: none of the app's headers
  // goes with it (the proxy plugin copied them to the reply first).
  app.addHook('onError', (request, reply, _error, done) => {
    for (const name of Object.keys((request as TimedRequest)[kAppHeaders] ?? {})) reply.removeHeader(name);
    done();
  });
  // fastify's built-in text/plain parser would buffer (413 above bodyLimit) and re-encode bodies
  // as UTF-8; without it, http-proxy's own pass-through parsers stream every body unchanged.
  app.removeAllContentTypeParsers();
  // Longest prefix wins: fastify's router prefers the more specific registered path.
  for (const route of config.upstreamRoutes) await app.register(httpProxy, proxyOptions(route.url, route.prefix));
  await app.register(httpProxy, proxyOptions(deps.upstream, '/'));

  function observeUpstream(request: FastifyRequest, status: number): void {
    const started = (request as TimedRequest)[kProxyStarted];
    if (started === undefined) return;
    observeUpstreamStatus(status, (performance.now() - started) / 1_000);
  }
}
