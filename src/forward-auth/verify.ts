// GET /_auth/verify: forward-auth for nginx auth_request, Traefik forwardAuth and Caddy forward_auth
// (SPEC 3). Only 204 (identity in headers), 401 (Location: the login URL), 403 and 503. It runs once
// per request of the app behind the proxy, so it is registered outside the other auth routes: no
// body parsing, none of their browser-page headers, nothing computed that a 204 does not carry.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { GatewayDeps } from '../context.js';
import { isSameOrigin, requestHost } from '../http.js';
import { escapeHtml } from '../pages.js';
import { createAccessRules, decideAccess, DEFAULT_RULE, forwardedIdentity, type AccessRule } from '../access/rules.js';
import { encodeGroups, encodeHeaderValue, removeCookies } from '../identity/headers.js';
import { pathForLog } from '../access/paths.js';
import { IDENTITY_TOKEN_HEADER } from '../identity/signed-identity.js';
import { userForAudit, type ActiveSession } from '../session/manager.js';
import { CSRF_COOKIE } from '../login/csrf.js';
import { originalRequest, type OriginalRequest } from './original-request.js';
import { takePrevalidated } from './fast-path.js';

// nginx's auth_request subrequest, Traefik's and Caddy's calls are GETs whatever the client sent
// (HEAD comes with GET); the other methods are accepted for proxies configured otherwise. The
// verify request's own method is never taken for the client's: only a method header is (SPEC 4,
// original-request.ts).
const VERIFY_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
const HOST = /^(?:[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;
const kTrustedPeer = Symbol('trustedPeer');
const LEVEL_RANK = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity } as const;
type Level = keyof typeof LEVEL_RANK;

type PeerSocket = Socket & { [kTrustedPeer]?: boolean };

/** What the fastify route and the fast path (forward-auth/fast-path.ts) share: one decision, built once. */
export interface Verifier {
  /** GATEWAY_ACCESS_LOG and GATEWAY_VERIFY_ACCESS_LOG leave verify's info lines out (the default). */
  readonly quiet: boolean;
  peerTrusted(socket: Socket): boolean;
  /** The same rules as the proxy path, for the request the proxy asks about; null: cannot be decided. */
  ruleFor(target: OriginalRequest): AccessRule | null;
  /** The headers of a 204: identity (narrowed by the rule), the signed token (its `aud` from `request`'s host), no-store. */
  allowHeaders(rule: AccessRule, session: ActiveSession, request: IncomingMessage): Record<string, string>;
  /**
   * The request's Cookie header without the gateway's cookies, or null when nothing is left. A 204
   * carries it as `Cookie`: Traefik (authResponseHeadersRegex matching Cookie) first drops the
   * client's header, then copies this one, so the app never receives the session (SPEC 4).
   */
  appCookies(request: IncomingMessage): string | null;
}

export function createVerifier(deps: GatewayDeps): Verifier {
  const { config } = deps;
  const access = createAccessRules(config.publicPaths, config.accessRules);
  // Without the original request no rule can be looked up: with rules that refuse someone
  // (deny, groups), letting any session through would open them, so refuse instead.
  // The same for a rule that narrows the groups sent: the full list must not go out instead.
  const rulesRestrict = config.accessRules.some((rule) => rule.policy === 'deny' || rule.policy === 'groups' || rule.forwardGroups !== null);
  const trusted = config.trustedProxies;
  let warnedNoMethod = false;
  const userHeader = config.headerUser.toLowerCase();
  const emailHeader = config.headerEmail.toLowerCase();
  const groupsHeader = config.headerGroups.toLowerCase();
  const gatewayCookies = new Set([config.cookieName, CSRF_COOKIE]);
  const sessionOnly = `${config.cookieName}=`;
  const appCookies = (request: IncomingMessage): string | null => {
    const cookie = request.headers.cookie;
    // The common case, answered without parsing: no cookie, or the session cookie alone.
    if (cookie === undefined || (cookie.startsWith(sessionOnly) && !cookie.includes(';'))) return null;
    const kept = removeCookies(cookie, gatewayCookies);
    return kept === '' ? null : kept;
  };
  return {
    appCookies,
    quiet: !(config.accessLog && config.verifyAccessLog),
    /** Keep-alive connections from the proxy carry many verifies: check the peer once per socket. */
    peerTrusted(socket: PeerSocket) {
      let verdict = socket[kTrustedPeer];
      if (verdict === undefined) {
        const address = socket.remoteAddress ?? '';
        verdict = trusted !== null && address !== '' && trusted.check(address, address.includes(':') ? 'ipv6' : 'ipv4');
        socket[kTrustedPeer] = verdict;
      }
      return verdict;
    },
    ruleFor(target) {
      if (!target.known) return rulesRestrict ? null : DEFAULT_RULE;
      if (target.method === null && access.methodScoped && !warnedNoMethod) {
        warnedNoMethod = true;
        deps.logger.warn(
          'forward-auth: a request came without X-Forwarded-Method (with X-Forwarded-Uri) or X-Original-Method (with X-Original-URI); rules with `methods:` are applied as if any method were meant, so they may refuse more than intended: have the proxy send the method header',
        );
      }
      return access.match(target.path, target.method);
    },
    allowHeaders(rule, session, request) {
      const forwarded = forwardedIdentity(rule, session);
      const { record } = forwarded;
      const headers: Record<string, string> = { 'cache-control': 'no-store', [userHeader]: encodeHeaderValue(record.user) };
      if (record.email) headers[emailHeader] = encodeHeaderValue(record.email);
      if (record.groups.length > 0) headers[groupsHeader] = encodeGroups(record.groups);
      const tokens = deps.identityTokens;
      if (tokens) headers[IDENTITY_TOKEN_HEADER] = tokens.tokenFor(forwarded, tokens.audienceForHost(requestHost(request, config)));
      const cookies = appCookies(request);
      if (cookies !== null) headers.cookie = cookies;
      return headers;
    },
  };
}

export async function verifyRoutes(app: FastifyInstance, deps: GatewayDeps, verifier: Verifier): Promise<void> {
  const { config, sessions } = deps;
  const loginPath = `${config.authPrefix}/login`;
  const fixedOrigin = config.publicUrl?.origin ?? null;
  const trusted = config.trustedProxies;
  let warnedUnnamed = false;

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

    const rule = verifier.ruleFor(target);
    if (rule === null) return forbidden(request, reply, 'access rules need the original request (X-Forwarded-Uri or X-Original-URI from a trusted proxy)');
    if (rule.policy === 'public') {
      const cookies = verifier.appCookies(request.raw);
      return reply.code(204).header('cache-control', 'no-store').headers(cookies === null ? {} : { cookie: cookies }).send();
    }
    if (rule.policy === 'deny') return denied(request, reply, rule, target, await userForAudit(sessions, request.cookies[config.cookieName]));
    // The fast path may have validated this very request already and handed it over.
    const validation = (await takePrevalidated(request.raw)) ?? (await sessions.validate(request.cookies[config.cookieName]));
    if (validation.outcome !== 'valid') return unauthenticated(request, reply, target);
    request.session = validation.session;
    const { record } = validation.session;
    if (decideAccess(rule, record) === 'forbidden') return denied(request, reply, rule, target, record.user);
    // As on the proxy path: browsers apply no CORS to WebSockets, so one carrying a session must be
    // opened from the gateway's own origin (the proxy passes the handshake's headers to verify).
    if (request.headers['sec-websocket-key'] !== undefined && !isSameOrigin(request, config)) return forbidden(request, reply, 'cross-origin WebSocket with a session');
    return reply.code(204).headers(verifier.allowHeaders(rule, validation.session, request.raw)).send();
  }



  /**
   * 401 with `Location: <public origin>/_auth/login?rd=<original path and query>`, as Authelia's
   * auth-request endpoint does: nginx turns it into a redirect with `auth_request_set` +
   * `error_page 401 =302`, Caddy with `handle_response`. It must be absolute (nginx treats a
   * relative error_page target as an internal redirect). Traefik hands the 401 itself to the
   * browser, so a navigation also gets a page that moves on to the login form.
   */
  function unauthenticated(request: FastifyRequest, reply: FastifyReply, target: OriginalRequest) {
    reply.code(401).header('cache-control', 'no-store');
    const origin = loginOrigin(request);
    // The login form only honours same-origin paths as rd (SPEC 3), so rd is the path, not a URL.
    const login = origin === null ? null : `${origin}${loginPath}?rd=${encodeURIComponent(target.known ? target.url : '/')}`;
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
    return reply.send({ error: 'authentication required', login });
  }

  /** An access rule refuses: 403 (nginx shows its own page), audited like the proxy path's refusals. */
  function denied(request: FastifyRequest, reply: FastifyReply, rule: AccessRule, target: OriginalRequest, user: string | null) {
    // warn, not info as on the proxy path: verify's info lines are off by default (see logLevel).
    request.log.warn({ audit: 'access_denied', user, ip: request.ip, path: pathForLog(target.path), rule: rule.index, policy: rule.policy }, 'access denied');
    return reply.code(403).header('cache-control', 'no-store').send({ error: 'access denied' });
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
