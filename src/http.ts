// Small request helpers shared by the auth routes and the proxy: content negotiation, origins,
// and the session cookie's attributes.
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { BlockList, Socket } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CookieSerializeOptions } from '@fastify/cookie';

/**
 * The login form's pre-login CSRF cookie (login/csrf.ts). Named here, with the session cookie's
 * helpers, because the proxy and forward-auth also keep it from the app.
 */
export const CSRF_COOKIE = 'sgw_csrf';

// The settings these functions read, each a few fields of Config: callers pass their Config
// (structural typing), and nothing here depends on how the configuration is read.

/** GATEWAY_PUBLIC_URL. */
export interface OriginSettings {
  publicUrl: URL | null;
}

/** GATEWAY_TRUSTED_PROXIES. */
export interface ProxyTrustSettings {
  trustedProxies: Pick<BlockList, 'check'> | null;
}

/** What the Host check reads: GATEWAY_ALLOWED_HOSTS (canonical), GATEWAY_PUBLIC_URL and the trusted proxies. */
export interface HostSettings extends OriginSettings, ProxyTrustSettings {
  allowedHosts: readonly string[] | null;
}

/** GATEWAY_COOKIE_NAME/_SECURE/_DOMAIN, and the session's absolute lifetime (the cookie's Max-Age). */
export interface CookieSettings {
  cookieName: string;
  cookieSecure: boolean;
  cookieDomain: string | null;
  maxLifetimeMs: number;
}

/** A browser navigation gets a redirect to the login page; anything else gets a 401 (SPEC 3). */
export function isBrowserNavigation(request: FastifyRequest): boolean {
  if (request.method !== 'GET' && request.method !== 'HEAD') return false;
  return (request.headers.accept ?? '').includes('text/html');
}

export function wantsJson(request: FastifyRequest): boolean {
  return (request.headers['content-type'] ?? '').toLowerCase().startsWith('application/json');
}

/**
 * The origin users see: GATEWAY_PUBLIC_URL when set, else what the request says (with
 * X-Forwarded-Proto/-Host believed only from trusted proxies, via fastify's trustProxy). That host
 * has passed hostRefusal() before any route ran, so it is a bare host[:port], never a path.
 */
export function publicOrigin(request: FastifyRequest, config: OriginSettings): string {
  if (config.publicUrl) return config.publicUrl.origin;
  return `${request.protocol}://${request.host}`;
}

/**
 * publicOrigin for a request fastify has not seen (the proxy's fast path): the protocol and host
 * read as fastify's request.protocol and request.host read them, through the trusted proxies.
 */
export function rawPublicOrigin(req: IncomingMessage, config: OriginSettings & ProxyTrustSettings): string {
  if (config.publicUrl) return config.publicUrl.origin;
  return `${requestProtocol(req, config)}://${requestHost(req, config)}`;
}

/** The protocol the client used, as fastify's request.protocol reads it: a trusted proxy's X-Forwarded-Proto (its last entry), else the listener's. */
export function requestProtocol(req: IncomingMessage, config: ProxyTrustSettings): string {
  const forwardedProto = req.headers['x-forwarded-proto'];
  if (forwardedProto && peerTrusted(req.socket, config)) return lastEntry(String(forwardedProto));
  return 'encrypted' in req.socket ? 'https' : 'http';
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The request's id: the client's X-Request-Id when it is sane, so one id follows a request end to end; else a new one. */
export function requestIdOf(headers: IncomingHttpHeaders): string {
  const sent = headers['x-request-id'];
  return typeof sent === 'string' && REQUEST_ID.test(sent) ? sent : randomUUID();
}

/**
 * RFC 3986 section 3.2.2-3.2.3 `host [ ":" port ]` in the forms clients send: a DNS name (letters,
 * digits, `-`, `_`, dots), an IPv4 address, or an IP-literal in brackets. Percent-encoding and
 * sub-delims are valid in a reg-name but name nothing a browser sends; refusing them keeps `/`,
 * `?`, `#`, `@`, `%` and spaces out of every absolute URL built from a Host.
 */
const WELL_FORMED_HOST = /^(?:[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?$/;
const MAX_HOST_LENGTH = 261; // 255 for the name (RFC 1035) + ":65535"

/** The last Host found well formed: nearly every request repeats it, and then needs no regex match. */
let lastWellFormedHost = '';

export function isWellFormedHost(host: string): boolean {
  if (host === lastWellFormedHost) return true;
  if (host.length > MAX_HOST_LENGTH) return false;
  const match = WELL_FORMED_HOST.exec(host);
  const wellFormed = match !== null && (match[1] === undefined || Number(match[1]) <= 65_535);
  if (wellFormed) lastWellFormedHost = host;
  return wellFormed;
}

/** `App.Example.com.:443` → `app.example.com:443`: the form GATEWAY_ALLOWED_HOSTS entries are kept in. */
export function canonicalHost(host: string): { name: string; withPort: string } {
  const lower = host.toLowerCase();
  const colon = lower.lastIndexOf(':');
  const hasPort = colon !== -1 && colon > lower.lastIndexOf(']');
  const name = (hasPort ? lower.slice(0, colon) : lower).replace(/\.$/, '');
  return { name, withPort: hasPort ? `${name}${lower.slice(colon)}` : name };
}

const kPeerTrusted = Symbol('hostCheckPeerTrusted');
const allowedSets = new WeakMap<HostSettings, ReadonlySet<string> | null>();

/**
 * Why a request must get 400 before anything else reads its Host, or null (every door asks: the
 * onRequest hook in app.ts and the verify fast path). The Host header must be well formed; so must
 * X-Forwarded-Host when a trusted proxy sends it, since that is then the host absolute URLs and
 * same-origin checks use (the last entry, as fastify's request.host reads it). With
 * GATEWAY_ALLOWED_HOSTS, that host must also be one of them (or GATEWAY_PUBLIC_URL's): a page
 * reached through a rebound DNS name is refused, and no URL is built from a name nobody chose.
 */
export function hostRefusal(req: IncomingMessage, config: HostSettings): string | null {
  const host = req.headers.host;
  if (host === undefined || !isWellFormedHost(host)) return 'malformed Host header';
  const effective = requestHost(req, config);
  if (effective !== host && !isWellFormedHost(effective)) return 'malformed X-Forwarded-Host header';
  const allowed = allowedHostSet(config);
  if (allowed === null) return null;
  const { name, withPort } = canonicalHost(effective);
  return allowed.has(name) || allowed.has(withPort) ? null : 'Host not allowed (GATEWAY_ALLOWED_HOSTS)';
}

/**
 * The host the client asked for: a trusted proxy's X-Forwarded-Host (its last entry, as fastify's
 * request.host reads it), else the Host header. Checked by hostRefusal before any route runs.
 */
export function requestHost(req: IncomingMessage, config: ProxyTrustSettings): string {
  const forwarded = req.headers['x-forwarded-host'];
  if (forwarded === undefined || forwarded === '' || !peerTrusted(req.socket, config)) return req.headers.host ?? '';
  return lastEntry(Array.isArray(forwarded) ? forwarded.join(',') : forwarded);
}

/** The last entry of a comma-separated list (what the proxy nearest the gateway wrote). */
export function lastEntry(list: string): string {
  return list.slice(list.lastIndexOf(',') + 1).trim();
}

function allowedHostSet(config: HostSettings): ReadonlySet<string> | null {
  let set = allowedSets.get(config);
  if (set === undefined) {
    const hosts = config.allowedHosts;
    set = hosts === null ? null : new Set([...hosts, ...(config.publicUrl ? [canonicalHost(config.publicUrl.hostname).name] : [])]);
    allowedSets.set(config, set);
  }
  return set;
}

/**
 * Whether the TCP peer is in GATEWAY_TRUSTED_PROXIES (so its X-Forwarded-* headers are believed).
 * Checked once per connection: a proxy's keep-alive connection carries many requests.
 */
export function peerTrusted(socket: Socket & { [kPeerTrusted]?: boolean }, config: ProxyTrustSettings): boolean {
  let verdict = socket[kPeerTrusted];
  if (verdict === undefined) {
    const address = socket.remoteAddress ?? '';
    const trusted = config.trustedProxies;
    verdict = trusted !== null && address !== '' && trusted.check(address, address.includes(':') ? 'ipv6' : 'ipv4');
    socket[kPeerTrusted] = verdict;
  }
  return verdict;
}

/**
 * True unless the browser says the request came from another origin. Browsers send Origin on
 * every POST and Sec-Fetch-Site on every request; non-browser clients send neither.
 */
export function isSameOrigin(request: FastifyRequest, config: OriginSettings): boolean {
  const fetchSite = request.headers['sec-fetch-site'];
  if (fetchSite !== undefined && fetchSite !== 'same-origin' && fetchSite !== 'none') return false;
  const origin = request.headers.origin;
  if (origin === undefined) return true;
  return origin === publicOrigin(request, config);
}

export function sessionCookieOptions(config: CookieSettings): CookieSerializeOptions {
  return {
    httpOnly: true,
    sameSite: 'lax',
    path: '/',
    secure: config.cookieSecure,
    ...(config.cookieDomain ? { domain: config.cookieDomain } : {}),
    // Never outlives the session's absolute end (SPEC 5).
    maxAge: Math.floor(config.maxLifetimeMs / 1_000),
  };
}

export function setSessionCookie(reply: FastifyReply, config: CookieSettings, value: string): void {
  reply.setCookie(config.cookieName, value, sessionCookieOptions(config));
}

export function clearSessionCookie(reply: FastifyReply, config: CookieSettings): void {
  const { maxAge: _maxAge, ...options } = sessionCookieOptions(config);
  reply.clearCookie(config.cookieName, options);
}

/** Responses that carry session state must never be cached by a shared cache. */
export function noStore(reply: FastifyReply): void {
  reply.header('cache-control', 'no-store');
  reply.header('pragma', 'no-cache');
}
