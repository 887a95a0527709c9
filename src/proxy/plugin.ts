// Every request that is not a gateway route: authenticate, then forward to the upstream with
// identity injected and spoofed identity stripped (SPEC sections 3 and 4).
import httpProxy, { type FastifyHttpProxyOptions } from '@fastify/http-proxy';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingHttpHeaders } from 'node:http';
import { statusClass } from '../admin/metrics.js';
import { CSRF_COOKIE } from '../auth/csrf.js';
import type { GatewayDeps } from '../context.js';
import { upstreamTimeout, upstreamUnavailable } from '../errors.js';
import { clearSessionCookie, isBrowserNavigation, publicOrigin, setSessionCookie } from '../http.js';
import { createRequestHeaderRewriter } from './identity-headers.js';
import { createPathMatcher } from './paths.js';

const UPSTREAM_CONNECTIONS = 128;
const kProxyStarted = Symbol('proxyStarted');

type TimedRequest = FastifyRequest & { [kProxyStarted]?: number };

export async function proxyRoutes(app: FastifyInstance, deps: GatewayDeps): Promise<void> {
  const { config, sessions, metrics } = deps;
  const isPublic = createPathMatcher(config.publicPaths);
  const isLogout = createPathMatcher(config.logoutPaths);
  const loginUrl = `${config.authPrefix}/login`;
  const upstreamOrigin = deps.upstream.origin;
  const ownCookiePrefixes = [`${config.cookieName}=`, `${CSRF_COOKIE}=`];
  const upstreamByClass = new Map<string, ReturnType<typeof metrics.upstreamDuration.labels>>();
  const trusted = config.trustedProxies;
  const rewriteRequestHeaders = createRequestHeaderRewriter({
    names: { user: config.headerUser, email: config.headerEmail, groups: config.headerGroups },
    cookieNames: [config.cookieName, CSRF_COOKIE],
    preserveHost: config.preserveHost,
  });

  /** The preHandler of every proxied route: no valid session, no forwarding. */
  const authenticate = async (request: FastifyRequest, reply: FastifyReply) => {
    const path = request.normalisedPath;
    if (isLogout(path)) return logoutFromAppPath(request, reply);
    if (isPublic(path)) return;
    const validation = await sessions.validate(request.cookies[config.cookieName]);
    if (validation.outcome === 'valid') {
      request.session = validation.session;
      if (validation.session.renewedCookie) setSessionCookie(reply, config, validation.session.renewedCookie);
      return;
    }
    // A cookie that no longer names a session is cleared so the browser stops sending it.
    if (validation.outcome !== 'missing') clearSessionCookie(reply, config);
    if (isBrowserNavigation(request)) {
      const rd = encodeURIComponent(request.url);
      // A session that timed out: the login page says so, rather than appearing out of nowhere.
      const expired = validation.outcome === 'expired' ? '&expired=1' : '';
      return reply.redirect(`${loginUrl}?rd=${rd}${expired}`, 302);
    }
    return reply.code(401).send({ error: 'authentication required', login: loginUrl });
  };

  const proxyOptions: FastifyHttpProxyOptions = {
    upstream: deps.upstream.toString().replace(/\/$/, ''),
    prefix: '/',
    preHandler: authenticate,
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
        const peerAddress = request.socket.remoteAddress ?? '';
        return rewriteRequestHeaders(headers as IncomingHttpHeaders, {
          identity: request.session?.record ?? null,
          peerAddress,
          peerTrusted: trusted !== null && peerAddress !== '' && trusted.check(peerAddress, peerAddress.includes(':') ? 'ipv6' : 'ipv4'),
          protocol: request.socket && 'encrypted' in request.socket ? 'https' : 'http',
          host: request.headers.host,
          requestId: request.id,
        });
      },
      rewriteHeaders(headers, request) {
        // The app must not be able to replace or clear the gateway's own cookies.
        const setCookie = headers['set-cookie'] as string | string[] | undefined;
        if (setCookie !== undefined) {
          headers['set-cookie'] = (Array.isArray(setCookie) ? setCookie : [setCookie]).filter((line) => !ownCookiePrefixes.some((p) => line.startsWith(p)));
        }
        // An app redirecting to its own internal address would send users to 127.0.0.1.
        const location = headers.location;
        if (typeof location === 'string' && location.startsWith(upstreamOrigin)) {
          const rest = location.slice(upstreamOrigin.length);
          const sameApp = rest === '' || rest.startsWith('/') || rest.startsWith('?');
          if (sameApp && request) headers.location = publicOrigin(request as FastifyRequest, config) + (rest || '/');
        }
        return headers;
      },
      onResponse(request, reply, res) {
        const upstream = res as unknown as { statusCode: number; stream: NodeJS.ReadableStream };
        observeUpstream(request as FastifyRequest, upstream.statusCode);
        reply.send(upstream.stream);
      },
      onError(reply, { error }) {
        const failure = (error as { statusCode?: number }).statusCode === 504 ? upstreamTimeout(error) : upstreamUnavailable(error);
        observeUpstream(reply.request as FastifyRequest, failure.statusCode);
        reply.request.log.warn({ code: failure.code, cause: (error.cause as Error | undefined)?.message ?? error.message }, 'upstream failed');
        reply.send(failure);
      },
    },
  };
  // fastify's built-in text/plain parser would buffer (413 above bodyLimit) and re-encode bodies
  // as UTF-8; without it, http-proxy's own pass-through parsers stream every body unchanged.
  app.removeAllContentTypeParsers();
  await app.register(httpProxy, proxyOptions);

  /** A legacy `<a href="/logout">`: end the session here (the app never sees it), then show the login page. */
  async function logoutFromAppPath(request: FastifyRequest, reply: FastifyReply) {
    const cookie = request.cookies[config.cookieName];
    const validation = await sessions.validate(cookie).catch(() => null);
    await sessions.destroy(cookie);
    clearSessionCookie(reply, config);
    const user = validation?.outcome === 'valid' ? validation.session.record.user : null;
    request.log.info({ audit: 'logout', user, ip: request.ip, outcome: user ? 'success' : 'no_session' }, 'logout');
    return reply.redirect(`${loginUrl}?logged_out=1`, 303);
  }

  function observeUpstream(request: FastifyRequest, status: number): void {
    const started = (request as TimedRequest)[kProxyStarted];
    if (started === undefined) return;
    const label = statusClass(status);
    let child = upstreamByClass.get(label);
    if (!child) upstreamByClass.set(label, (child = metrics.upstreamDuration.labels(label)));
    child.observe((performance.now() - started) / 1_000);
  }
}
