// Forward-auth (nginx auth_request, Traefik forwardAuth, Caddy forward_auth): which request is being
// authorised. The proxy calls /_auth/verify and names the request it holds in headers. Those headers
// are believed only from a trusted proxy: anyone else could name a public path and be waved through.
import type { IncomingHttpHeaders } from 'node:http';
import { normaliseRequestUrl } from '../access/paths.js';
import { requestReadings, type Readings } from '../access/request-readings.js';

/**
 * The request the proxy names, and its other readings (access/request-readings.ts): the Destination
 * of a COPY/MOVE (also read when the method is not known), a path in the query, the methods a POST
 * names in its query, a whole-tree read. The proxy passes the client's headers on with its own, so
 * the Destination and Depth are the client's. Re-routing headers are not read: the shipped proxy
 * configs remove them before the app.
 */
export interface OriginalRequest extends Readings {
  /** Normalised path (SPEC 4): what access is decided on. */
  path: string;
  /** Normalised path and query: where the user goes back to after signing in. */
  url: string;
  /**
   * Upper case; null when no method header came in the URI header's convention. The verify
   * request's own method says nothing: nginx's auth_request subrequest is always a GET, Traefik's
   * and Caddy's too. Rules then apply as if any method could be meant (access/rules.ts).
   */
  method: string | null;
  /**
   * False when no trusted proxy named the request: the path is then the verify request's own,
   * so public paths cannot match it and the sign-in redirect goes back to `/`.
   */
  known: boolean;
}

export type OriginalRequestResult = { ok: true; request: OriginalRequest } | { ok: false; reason: string };

/** The verify request itself, used when the proxy did not (or may not) name the original. */
export interface VerifyRequest {
  headers: IncomingHttpHeaders;
  /** Whether the TCP peer is in GATEWAY_TRUSTED_PROXIES. */
  peerTrusted: boolean;
  /** The verify request's own normalised path. */
  path: string;
}

// RFC 9110 §9.1: a method is a token.
const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/;
// A request-target as nginx ($request_uri) and Traefik send it is printable ASCII without spaces. A
// space also means a header sent twice (Node joins the copies with ", "): two requests named at once.
const NOT_REQUEST_TARGET = /[^!-~]/;

/**
 * Traefik and Caddy send X-Forwarded-Uri / X-Forwarded-Method; nginx configs conventionally send
 * X-Original-URI / X-Original-Method. Each proxy overwrites its own names but passes the client's
 * copies of the other ones through, so when both are present they must agree: a client adding
 * `X-Forwarded-Uri: /public` behind an nginx that only sets X-Original-URI is refused, not believed.
 */
export function originalRequest(verify: VerifyRequest): OriginalRequestResult {
  if (!verify.peerTrusted) return unnamed(verify);
  const { headers } = verify;

  const uri = agreed(headers['x-forwarded-uri'], headers['x-original-uri']);
  if (uri === CONFLICT) return { ok: false, reason: 'X-Forwarded-Uri and X-Original-URI disagree' };
  // No URI, no method either: a method header alone names no request, and is no proxy's.
  if (uri === undefined) return unnamed(verify);
  const method = namedMethod(headers);
  if (method === CONFLICT) return { ok: false, reason: 'X-Forwarded-Method and X-Original-Method disagree' };
  if (method === MALFORMED) return { ok: false, reason: 'malformed original method' };

  if (NOT_REQUEST_TARGET.test(uri)) return { ok: false, reason: 'malformed original URI (not a request-target)' };
  // Exactly the normalisation of the proxy path: what is authorised here is what the app is asked for.
  const normalised = normaliseRequestUrl(uri);
  if (!normalised.ok) return { ok: false, reason: `malformed original URI (${normalised.reason})` };
  const found = requestReadings({ method, url: normalised.url, headers, reroutingHeadersReachApp: false });
  if (!found.ok) return { ok: false, reason: found.kind === 'destination' ? found.reason : `malformed original URI (${found.reason})` };
  return { ok: true, request: { path: normalised.path, url: normalised.url, method, known: true, ...found.readings } };
}

/**
 * The original method, believed only in the convention of the URI header it came with (SPEC 4):
 * X-Forwarded-Method with X-Forwarded-Uri, X-Original-Method with X-Original-URI. nginx's
 * documented snippet sets only X-Original-URI and passes the client's own headers on, so an
 * X-Forwarded-Method there is the client's. With both URI headers (one of them may be the
 * client's), both method headers must be there and agree. Otherwise the method is unknown (null).
 */
function namedMethod(headers: IncomingHttpHeaders): string | null | typeof CONFLICT | typeof MALFORMED {
  const conventions: Array<[uri: string | string[] | undefined, method: string | string[] | undefined]> = [
    [headers['x-forwarded-uri'], headers['x-forwarded-method']],
    [headers['x-original-uri'], headers['x-original-method']],
  ];
  let method: string | null = null;
  for (const [uri, named] of conventions) {
    if (uri === undefined) continue;
    const value = single(named);
    if (value === CONFLICT) return CONFLICT;
    if (value === undefined) return null;
    if (!METHOD.test(value)) return MALFORMED;
    // Rules name methods in upper case, and so does every app that routes on them; a proxy that
    // passes `delete` through (Go's net/http accepts it) must not slip past a rule for DELETE.
    const upper = value.toUpperCase();
    if (method !== null && method !== upper) return CONFLICT;
    method = upper;
  }
  return method;
}

/** The verify request's own path: no trusted proxy named the original (public paths cannot match). */
function unnamed(verify: VerifyRequest): OriginalRequestResult {
  return { ok: true, request: { path: verify.path, url: verify.path, method: null, known: false } };
}

const MALFORMED = Symbol('malformed');

const CONFLICT = Symbol('conflict');

/** The one value two header spellings give, undefined if neither is sent, CONFLICT if they differ. */
function agreed(a: string | string[] | undefined, b: string | string[] | undefined): string | undefined | typeof CONFLICT {
  const first = single(a);
  const second = single(b);
  if (first === CONFLICT || second === CONFLICT) return CONFLICT;
  if (first !== undefined && second !== undefined && first !== second) return CONFLICT;
  return first ?? second;
}

/** A header sent twice names two requests: refuse rather than pick one. */
function single(value: string | string[] | undefined): string | undefined | typeof CONFLICT {
  if (Array.isArray(value)) return value.length === 1 ? value[0] : CONFLICT;
  return value;
}
