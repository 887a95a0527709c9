// Forward-auth (nginx auth_request, Traefik forwardAuth, Caddy forward_auth): which request is being
// authorised. The proxy calls /_auth/verify and names the request it holds in headers. Those headers
// are believed only from a trusted proxy: anyone else could name a public path and be waved through.
import type { IncomingHttpHeaders } from 'node:http';
import { normaliseRequestUrl } from '../proxy/paths.js';

export interface OriginalRequest {
  /** Normalised path (SPEC 4): what access is decided on. */
  path: string;
  /** Normalised path and query: where the user goes back to after signing in. */
  url: string;
  method: string;
  /**
   * False when no trusted proxy named the request: path and method are then the verify request's
   * own, so public paths cannot match it and the sign-in redirect goes back to `/`.
   */
  known: boolean;
}

export type OriginalRequestResult = { ok: true; request: OriginalRequest } | { ok: false; reason: string };

/** The verify request itself, used when the proxy did not (or may not) name the original. */
export interface VerifyRequest {
  headers: IncomingHttpHeaders;
  /** Whether the TCP peer is in GATEWAY_TRUSTED_PROXIES. */
  peerTrusted: boolean;
  /** The verify request's own normalised path and method. */
  path: string;
  method: string;
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
  const named = agreed(headers['x-forwarded-method'], headers['x-original-method']);
  if (named === CONFLICT) return { ok: false, reason: 'X-Forwarded-Method and X-Original-Method disagree' };
  if (named !== undefined && !METHOD.test(named)) return { ok: false, reason: 'malformed original method' };
  // Rules name methods in upper case, and so does every app that routes on them; a proxy that
  // passes `delete` through (Go's net/http accepts it) must not slip past a rule for DELETE.
  const method = named?.toUpperCase();
  // nginx's subrequest keeps the client's method, so a verify that is not a GET is itself the
  // original method: a header claiming another one is a client's, not the proxy's.
  if (method !== undefined && verify.method !== 'GET' && verify.method !== 'HEAD' && method !== verify.method) {
    return { ok: false, reason: 'original method header disagrees with the request method' };
  }
  if (uri === undefined) return unnamed(verify, method);

  if (NOT_REQUEST_TARGET.test(uri)) return { ok: false, reason: 'malformed original URI (not a request-target)' };
  // Exactly the normalisation of the proxy path: what is authorised here is what the app is asked for.
  const normalised = normaliseRequestUrl(uri);
  if (!normalised.ok) return { ok: false, reason: `malformed original URI (${normalised.reason})` };
  return { ok: true, request: { path: normalised.path, url: normalised.url, method: method ?? verify.method, known: true } };
}

/** The verify request's own path: no trusted proxy named the original (public paths cannot match). */
function unnamed(verify: VerifyRequest, method = verify.method): OriginalRequestResult {
  return { ok: true, request: { path: verify.path, url: verify.path, method, known: false } };
}

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
