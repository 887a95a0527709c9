// What both ways of forwarding a request (the fastify route in routes.ts, the fast path in
// fast-path.ts) must do alike, so that they cannot drift apart: what the gate is asked for it, which
// app it goes to, the headers the app receives (identity injected, spoofed identity and the
// gateway's own credentials stripped) and the headers the client receives (the app cannot set the
// gateway's cookies or send users to its own address).
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { Config } from '../config/config.js';
import type { AccessRequest, Credentials, Verdict } from '../access/gate.js';
import type { Readings } from '../access/request-readings.js';
import { createPathMatcher } from '../access/paths.js';
import type { IdentityTokens } from '../identity/signed-identity.js';
import { createRequestHeaderRewriter, type ForwardingContext, type RequestHeaderRewriter } from '../identity/headers.js';
import { CSRF_COOKIE, peerTrusted } from '../http.js';
import { isGatewayCookie } from './gateway-cookies.js';
import { withoutHopByHop } from './hop-by-hop.js';

/** A request the proxy decides: its path is known, and an app logout path is a logout. */
export type ProxiedAccess = AccessRequest & { path: string; logout: true };

/** What the gate is asked for a proxied request: its path and method, what else it names (request-readings.ts), its credentials. */
export function proxiedAccess(path: string, method: string, readings: Readings, credentials: Credentials): ProxiedAccess {
  return {
    path,
    method,
    destination: readings.destination,
    routed: readings.routed,
    methods: readings.methods,
    wholeTree: readings.wholeTree,
    rewritten: readings.rewritten,
    named: readings.named,
    credentials,
    logout: true,
  };
}

/** What is forwarded for an allowed request: the principal's identity, narrowed by the rule. */
export type Forwarded = Extract<Verdict, { kind: 'allow' }>['forwarded'];

/** The parts of a request (fastify's or Node's) the forwarding context is read from. */
export interface ForwardedRequest {
  socket: Socket;
  headers: IncomingHttpHeaders;
  /** The request id (the client's sane X-Request-Id, else a new one). */
  id: string;
}

export interface Forwarding {
  /** The app a path goes to: the longest GATEWAY_UPSTREAM_ROUTES prefix it is under, else GATEWAY_UPSTREAM. */
  upstreamFor(path: string): URL;
  /** The headers the app receives, built from the client's; `leaveOut`: names that must not travel. */
  requestHeaders: RequestHeaderRewriter;
  /** What the request header rewriter needs to know about a request (HTTP and WebSocket alike). */
  context(request: ForwardedRequest, forwarded: Forwarded | null, upstream: URL): ForwardingContext;
  /** The headers the client receives, from the app's; `publicOrigin` is asked only to rewrite a Location. */
  responseHeaders(upstreamHeaders: IncomingHttpHeaders, upstream: URL, publicOrigin: () => string): IncomingHttpHeaders;
}

export function createForwarding(config: Config, upstream: URL, identityTokens: IdentityTokens | null, ownsAuthorization: ((authorization: string) => boolean) | null): Forwarding {
  // The same choice as fastify's router makes between the proxy routes (one per prefix, routes.ts):
  // config.ts allows only prefixes that read the same decoded and normalised, on segment boundaries.
  const routesLongestFirst = [...config.upstreamRoutes]
    .sort((a, b) => b.prefix.length - a.prefix.length)
    .map((route) => ({ matches: createPathMatcher([route.prefix]), url: route.url }));
  const ownCookieNames = [config.cookieName, CSRF_COOKIE];
  const rewriteIdentityHeaders = createRequestHeaderRewriter({
    names: { user: config.headerUser, email: config.headerEmail, groups: config.headerGroups },
    cookieNames: ownCookieNames,
    preserveHost: config.preserveHost,
  });
  // An Authorization header that carried a gateway credential (API token, Basic with
  // GATEWAY_BASIC_AUTH) stays here, whether or not it was the one that decided; any other reaches
  // the app as before (SPEC 9).
  const requestHeaders: RequestHeaderRewriter =
    ownsAuthorization === null
      ? rewriteIdentityHeaders
      : (headers, ctx, leaveOut) => {
        const rewritten = rewriteIdentityHeaders(headers, ctx, leaveOut);
        const authorization = rewritten.authorization;
        if (typeof authorization === 'string' && ownsAuthorization(authorization)) delete rewritten.authorization;
        return rewritten;
      };

  return {
    upstreamFor: (path) => routesLongestFirst.find((route) => route.matches(path))?.url ?? upstream,
    requestHeaders,
    context(request, forwarded, upstream) {
      const socket = request.socket as Socket | undefined;
      return {
        identity: forwarded?.record ?? null,
        peerAddress: socket?.remoteAddress ?? '',
        peerTrusted: peerTrusted(request.socket, config),
        protocol: socket && 'encrypted' in socket ? 'https' : 'http',
        host: request.headers.host,
        requestId: request.id,
        signedIdentity: identityTokens && forwarded ? identityTokens.tokenFor(forwarded, identityTokens.audienceFor(upstream)) : null,
      };
    },
    responseHeaders(upstreamHeaders, upstream, publicOrigin) {
      // The app's Connection/Keep-Alive describe its connection to the gateway, not the client's.
      const headers = withoutHopByHop(upstreamHeaders);
      // The app must not be able to replace or clear the gateway's own cookies.
      const setCookie = headers['set-cookie'] as string | string[] | undefined;
      if (setCookie !== undefined) {
        headers['set-cookie'] = (Array.isArray(setCookie) ? setCookie : [setCookie]).filter((line) => !isGatewayCookie(line, ownCookieNames));
      }
      // An app redirecting to its own internal address would send users to 127.0.0.1.
      const location = headers.location;
      if (typeof location === 'string' && location.startsWith(upstream.origin)) {
        const rest = location.slice(upstream.origin.length);
        const sameApp = rest === '' || rest.startsWith('/') || rest.startsWith('?');
        if (sameApp) headers.location = publicOrigin() + (rest || '/');
      }
      return headers;
    },
  };
}

/**
 * Header values without the characters HTTP forbids in them, as the proxy plugin leaves them on the
 * route (an app's bad header would otherwise fail the whole answer): HTAB, SP to `~` and obs-text stay.
 */
export function sanitizedHeaderValues(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (typeof value === 'string') headers[name] = withoutForbiddenCharacters(value);
    else if (Array.isArray(value)) headers[name] = value.map(withoutForbiddenCharacters);
  }
  return headers;
}

const FORBIDDEN_IN_VALUE = /[^\t\x20-\x7E\x80-\xFF]/g;

function withoutForbiddenCharacters(value: string): string {
  return value.replace(FORBIDDEN_IN_VALUE, '');
}
