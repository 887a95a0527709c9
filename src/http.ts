// Small request helpers shared by the auth routes and the proxy: content negotiation, origins,
// and the session cookie's attributes.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CookieSerializeOptions } from '@fastify/cookie';
import type { Config } from './config.js';

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
 * X-Forwarded-Proto/-Host believed only from trusted proxies, via fastify's trustProxy).
 */
export function publicOrigin(request: FastifyRequest, config: Config): string {
  if (config.publicUrl) return config.publicUrl.origin;
  return `${request.protocol}://${request.host}`;
}

/**
 * True unless the browser says the request came from another origin. Browsers send Origin on
 * every POST and Sec-Fetch-Site on every request; non-browser clients send neither.
 */
export function isSameOrigin(request: FastifyRequest, config: Config): boolean {
  const fetchSite = request.headers['sec-fetch-site'];
  if (fetchSite !== undefined && fetchSite !== 'same-origin' && fetchSite !== 'none') return false;
  const origin = request.headers.origin;
  if (origin === undefined) return true;
  return origin === publicOrigin(request, config);
}

export function sessionCookieOptions(config: Config): CookieSerializeOptions {
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

export function setSessionCookie(reply: FastifyReply, config: Config, value: string): void {
  reply.setCookie(config.cookieName, value, sessionCookieOptions(config));
}

export function clearSessionCookie(reply: FastifyReply, config: Config): void {
  const { maxAge: _maxAge, ...options } = sessionCookieOptions(config);
  reply.clearCookie(config.cookieName, options);
}

/** Responses that carry session state must never be cached by a shared cache. */
export function noStore(reply: FastifyReply): void {
  reply.header('cache-control', 'no-store');
  reply.header('pragma', 'no-cache');
}
