// What the verify route (verify.ts) and its fast path (fast-path.ts) share, built once: the question
// put to the gate for the request a proxy names, the headers of a 204, and the hand-over of a verdict
// the fast path already reached, so a request is never decided (nor its session validated) twice.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Gate, Verdict } from '../access/gate.js';
import type { Config } from '../config/config.js';
import { CSRF_COOKIE, peerTrusted, requestHost } from '../http.js';
import { encodeGroups, encodeHeaderValue, removeCookies } from '../identity/headers.js';
import { IDENTITY_TOKEN_HEADER, type IdentityTokens } from '../identity/signed-identity.js';
import type { OriginalRequest } from './original-request.js';

const kHandedOver = Symbol('handedOver');

type HandedOver = IncomingMessage & { [kHandedOver]?: Promise<Verdict> };

export interface Verifier {
  /** GATEWAY_ACCESS_LOG and GATEWAY_VERIFY_ACCESS_LOG leave verify's info lines out (the default). */
  readonly quiet: boolean;
  peerTrusted(socket: Socket): boolean;
  /** The gate's verdict for the request the proxy names (an unknown one has no path). */
  decide(target: OriginalRequest, cookies: Readonly<Record<string, string | undefined>>, request: IncomingMessage, ip?: string): Promise<Verdict>;
  /** The headers of a 204: identity (narrowed by the rule), the signed token (its `aud` from `request`'s host), no-store, and `appHeaders`. */
  allowHeaders(verdict: Extract<Verdict, { kind: 'allow' }>, request: IncomingMessage): Record<string, string>;
  /**
   * What of the request's own credentials the app may receive, for every 204 to carry: the Cookie
   * header without the gateway's cookies, and the Authorization header unless it holds a gateway
   * credential (an API token, or Basic with GATEWAY_BASIC_AUTH: a token or the user's password),
   * each left out when nothing is left. The proxy replaces the client's headers with these
   * (nginx auth_request_set, Traefik authResponseHeaders, Caddy copy_headers), so the app never
   * receives the session, a token or a password (SPEC 4, SPEC 9).
   */
  appHeaders(request: IncomingMessage): Record<string, string>;
  /** The fast path decided this request but leaves the answer to the route. */
  handOver(request: IncomingMessage, verdict: Promise<Verdict>): void;
  /** The verdict handed over with this request, once. */
  takeHandedOver(request: IncomingMessage): Promise<Verdict> | undefined;
}

export interface VerifierOptions {
  config: Config;
  gate: Gate;
  logger: Logger;
  identityTokens: IdentityTokens | null;
  /** Whether an Authorization value is a gateway credential (tokens/authenticator.ts `owns`); null: none is. */
  ownsAuthorization: ((authorization: string) => boolean) | null;
}

export function createVerifier({ config, gate, logger, identityTokens, ownsAuthorization }: VerifierOptions): Verifier {
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
  const appHeaders = (request: IncomingMessage, headers: Record<string, string> = {}): Record<string, string> => {
    const cookies = appCookies(request);
    if (cookies !== null) headers.cookie = cookies;
    const authorization = request.headers.authorization;
    if (authorization !== undefined && ownsAuthorization?.(authorization) !== true) headers.authorization = authorization;
    return headers;
  };
  return {
    appHeaders: (request) => appHeaders(request),
    quiet: !(config.accessLog && config.verifyAccessLog),
    peerTrusted: (socket) => peerTrusted(socket, config),
    // async: the fast path and the route hand over one promise, whatever the gate answered with.
    async decide(target, cookies, request, ip) {
      if (target.known && target.method === null && !warnedNoMethod && gate.methodScoped) {
        warnedNoMethod = true;
        logger.warn(
          'forward-auth: a request came without X-Forwarded-Method (with X-Forwarded-Uri) or X-Original-Method (with X-Original-URI); rules with `methods:` are applied as if any method were meant, so they may refuse more than intended: have the proxy send the method header',
        );
      }
      return gate.decide({ path: target.known ? target.path : null, method: target.method, destination: target.destination, routed: target.routed, methods: target.methods, wholeTree: target.wholeTree, credentials: ip === undefined ? { cookies, headers: request.headers } : { cookies, headers: request.headers, ip } });
    },
    allowHeaders(verdict, request) {
      const { record } = verdict.forwarded;
      const headers: Record<string, string> = { 'cache-control': 'no-store', [userHeader]: encodeHeaderValue(record.user) };
      if (record.email) headers[emailHeader] = encodeHeaderValue(record.email);
      if (record.groups.length > 0) headers[groupsHeader] = encodeGroups(record.groups);
      if (identityTokens) headers[IDENTITY_TOKEN_HEADER] = identityTokens.tokenFor(verdict.forwarded, identityTokens.audienceForHost(requestHost(request, config)));
      return appHeaders(request, headers);
    },
    handOver(request, verdict) {
      (request as HandedOver)[kHandedOver] = verdict;
    },
    takeHandedOver(request) {
      const handedOver = request as HandedOver;
      const verdict = handedOver[kHandedOver];
      handedOver[kHandedOver] = undefined;
      return verdict;
    },
  };
}
