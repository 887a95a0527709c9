// GET /_auth/verify: forward-auth for nginx auth_request, Traefik forwardAuth and Caddy forward_auth
// (SPEC 3). Only 204 (identity in headers), 401 (Location: the login URL), 403 and 503. It runs once
// per request of the app behind the proxy, so it is registered outside the other auth routes: no
// body parsing, none of their browser-page headers, nothing computed that a 204 does not carry.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { GatewayDeps } from '../context.js';
import { isSameOrigin } from '../http.js';
import { escapeHtml } from '../pages.js';
import { auditRefusal, refusesCrossSiteWebSocket, unreachable } from '../access/gate.js';
import { pathForLog } from '../access/paths.js';
import { originalRequest, type OriginalRequest } from './original-request.js';
import type { Verifier } from './verifier.js';
import { basicChallengeFor } from '../tokens/authenticator.js';

// nginx's auth_request subrequest, Traefik's and Caddy's calls are GETs whatever the client sent
// (HEAD comes with GET); the other methods are accepted for proxies configured otherwise. The
// verify request's own method is never taken for the client's: only a method header is (SPEC 4,
// original-request.ts).
const VERIFY_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
const HOST = /^(?:[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;
const LEVEL_RANK = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity } as const;
type Level = keyof typeof LEVEL_RANK;

export async function verifyRoutes(app: FastifyInstance, deps: GatewayDeps, verifier: Verifier): Promise<void> {
  const { config } = deps;
  const loginPath = `${config.authPrefix}/login`;
  const secondStepPath = `${config.authPrefix}/mfa`;
  const fixedOrigin = config.publicUrl?.origin ?? null;
  const trusted = config.trustedProxies;
  let warnedUnnamed = false;
  const basicChallenge = deps.tokens?.authenticator.basicEnabled === true ? basicChallengeFor(config.loginTitle) : null;

  // The proxy sends no body (or one we never need): never parse it, never answer 415 or 413 for it.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));

  // The proxy in front logs every request, and a verify runs for each: by default its access-log
  // line (info) is left out: it was about a third of a verify's CPU when measured (pino's JSON and
  // a write per line). Refusals still log (warn, error).
  const quiet = verifier.quiet;
  const configured = config.logLevel as Level; // validated against these names in config.ts
  const logLevel: Level = quiet && LEVEL_RANK[configured] < LEVEL_RANK.warn ? 'warn' : configured;
  app.route({ method: VERIFY_METHODS, url: '/verify', logLevel, handler: verify });

  async function verify(request: FastifyRequest, reply: FastifyReply) {
    const original = originalRequest({ headers: request.headers, peerTrusted: verifier.peerTrusted(request.raw.socket), path: request.normalisedPath });
    if (!original.ok) return forbidden(request, reply, original.reason);
    const target = original.request;
    if (!target.known) warnUnnamed(request);

    // The fast path may have decided this very request already and handed it over.
    const verdict = await (verifier.takeHandedOver(request.raw) ?? verifier.decide(target, request.cookies, request.raw, request.ip));
    switch (verdict.kind) {
      case 'undecidable':
        return forbidden(request, reply, verdict.reason);
      case 'public': {
        return reply.code(204).header('cache-control', 'no-store').headers(verifier.appHeaders(request.raw)).send();
      }
      case 'login':
        return unauthenticated(request, reply, target);
      case 'second-factor':
        // Step-up: 401 like an anonymous request, but the Location is the second step, which
        // returns to the original URL once passed.
        request.principal = verdict.principal;
        request.session = verdict.principal.session;
        request.log.warn({ audit: 'step_up', user: verdict.principal.record.user, ip: request.ip, path: pathForLog(target.path), rule: verdict.rule.index }, 'second factor required');
        return unauthenticated(request, reply, target, secondStepPath);
      case 'forbidden':
        request.principal = verdict.principal;
        request.session = verdict.principal?.session ?? null;
        // 403 (nginx shows its own page), audited like the proxy path's refusals.
        auditRefusal(request.log, verdict, { ip: request.ip, path: target.path });
        return reply.code(403).header('cache-control', 'no-store').send({ error: 'access denied' });
      case 'allow':
        request.principal = verdict.principal;
        request.session = verdict.principal.session;
        // The proxy passes the handshake's headers to verify: the cross-site WebSocket rule holds here too.
        if (request.headers['sec-websocket-key'] !== undefined && refusesCrossSiteWebSocket(verdict.principal, isSameOrigin(request, config))) {
          return forbidden(request, reply, 'cross-origin WebSocket with a session');
        }
        return reply.code(204).headers(verifier.allowHeaders(verdict, request.raw)).send();
      default:
        return unreachable(verdict);
    }
  }

  /**
   * 401 with `Location: <public origin>/_auth/login?rd=<original path and query>`, as Authelia's
   * auth-request endpoint does: nginx turns it into a redirect with `auth_request_set` +
   * `error_page 401 =302`, Caddy with `handle_response`. It must be absolute (nginx treats a
   * relative error_page target as an internal redirect). Traefik hands the 401 itself to the
   * browser, so a navigation also gets a page that moves on to the login form.
   */
  function unauthenticated(request: FastifyRequest, reply: FastifyReply, target: OriginalRequest, to: string = loginPath) {
    reply.code(401).header('cache-control', 'no-store');
    const origin = loginOrigin(request);
    // The login form only honours same-origin paths as rd (SPEC 3), so rd is the path, not a URL.
    const login = origin === null ? null : `${origin}${to}?rd=${encodeURIComponent(target.known ? target.url : '/')}`;
    if (login !== null) reply.header('location', login);
    const accept = request.headers.accept;
    // A page only for what looks like a navigation; presentation, not access, so the verify
    // request's own method stands in when the proxy named none.
    const method = target.method ?? request.method;
    if ((method === 'GET' || method === 'HEAD') && accept !== undefined && accept.includes('text/html') && login !== null) {
      const href = escapeHtml(login);
      return reply
        .type('text/html; charset=utf-8')
        .send(`<!doctype html><meta http-equiv="refresh" content="0;url=${href}"><title>Sign in</title><a href="${href}">Sign in</a>\n`);
    }
    // A client that speaks only Basic learns it may send it (through Traefik, which hands this 401 on).
    if (basicChallenge !== null) reply.header('www-authenticate', basicChallenge);
    return reply.send({ error: 'authentication required', login });
  }

  function forbidden(request: FastifyRequest, reply: FastifyReply, reason: string) {
    request.log.warn({ reason }, 'forward-auth request refused');
    return reply.code(403).header('cache-control', 'no-store').send({ error: 'request refused' });
  }

  /** GATEWAY_PUBLIC_URL, else X-Forwarded-Proto/-Host from a trusted proxy, else the Host header. */
  function loginOrigin(request: FastifyRequest): string | null {
    if (fixedOrigin !== null) return fixedOrigin;
    const protocol = request.protocol;
    const host = request.host;
    if ((protocol !== 'http' && protocol !== 'https') || typeof host !== 'string' || !HOST.test(host)) return null;
    return `${protocol}://${host}`;
  }


  /** Once per process: a proxy that does not name the request makes public paths unreachable. */
  function warnUnnamed(request: FastifyRequest): void {
    if (warnedUnnamed) return;
    warnedUnnamed = true;
    request.log.warn(
      trusted === null
        ? 'forward-auth: GATEWAY_TRUSTED_PROXIES is empty, so X-Forwarded-Uri / X-Original-URI are ignored; public paths cannot match and sign-in returns to /'
        : 'forward-auth: a request came without X-Forwarded-Uri / X-Original-URI from a trusted proxy (or from an untrusted peer); public paths cannot match it and sign-in returns to /',
    );
  }
}
