// WebDAV's COPY and MOVE name a second path in the Destination header (RFC 4918 §10.3): the resource
// is written there. The access rules must allow the request at that path too, or a user who may
// write anywhere could move a file into a folder a rule keeps from them (Apache's mod_dav checks
// the Destination against its own access control the same way). The Destination is read as the
// request path is (paths.ts): normalised, or refused with 400 when it cannot be put into one
// unambiguous form; what is authorised is what the app receives.
import type { IncomingHttpHeaders } from 'node:http';
import { normaliseHeaderName } from '../identity/headers.js';
import { normaliseRequestUrl } from './paths.js';

/** The methods whose Destination header names where they write (RFC 4918 §9.8, §9.9). */
export const DESTINATION_METHODS: ReadonlySet<string> = new Set(['COPY', 'MOVE']);

export type DestinationReading =
  /** `path`: what the rules are asked about; `header`: the Destination to forward (normalised). */
  | { ok: true; path: string; header: string }
  | { ok: false; reason: string };

// `http://` or `https://`, then an authority without anything a URL parser could read another way.
const ABSOLUTE = /^(https?:\/\/)([^/?#\\@\s]*)(.*)$/i;
// A header sent twice reaches Node joined with ", ": a space is never part of a URI.
const NOT_URI = /[^!-~]/;

/**
 * The Destination of a request with `method` (upper case; null: not known, as in forward-auth
 * without a method header, when any Destination sent is checked). Null when there is none to check.
 */
export function requestDestination(method: string | null, headers: IncomingHttpHeaders): DestinationReading | null {
  const value = headers.destination;
  if (value === undefined || (method !== null && !DESTINATION_METHODS.has(method))) return null;
  return readDestination(value);
}

/**
 * An absolute http(s) URI or an absolute path (RFC 4918's Simple-ref), reduced to its path; the
 * host is the app's to judge. Anything else (another scheme, a relative or `//host` reference, a
 * second Destination) is refused: a path the gateway cannot name is one it cannot authorise.
 */
export function readDestination(value: string | string[]): DestinationReading {
  if (Array.isArray(value)) return refused('not one URI');
  const reference = readReference(value);
  return reference.ok ? reference : refused(reference.reason);
}

/**
 * A URI reference naming a resource of the app, as a Destination header or a WebDAV body's `href`
 * does: an absolute http(s) URI or an absolute path, normalised like a request path; anything else
 * is refused (with why).
 */
export function readReference(value: string): DestinationReading {
  if (NOT_URI.test(value)) return { ok: false, reason: 'not one URI' };
  if (value.startsWith('/')) {
    if (value.startsWith('//')) return { ok: false, reason: 'a network-path reference (//host) is not a path' };
    return normalised('', value);
  }
  const absolute = ABSOLUTE.exec(value);
  if (absolute === null) return { ok: false, reason: 'must be an absolute http(s) URI or an absolute path' };
  const [, scheme = '', authority = '', rest = ''] = absolute;
  if (authority === '') return { ok: false, reason: 'no host' };
  return normalised(`${scheme}${authority}`, rest === '' ? '/' : rest);
}

function normalised(origin: string, target: string): DestinationReading {
  if (!target.startsWith('/')) return { ok: false, reason: 'must be an absolute http(s) URI or an absolute path' };
  const url = normaliseRequestUrl(target);
  if (!url.ok) return { ok: false, reason: url.reason };
  return { ok: true, path: url.path, header: origin + url.url };
}

const refused = (reason: string): DestinationReading => ({ ok: false, reason: `Destination header: ${reason}` });

/**
 * Whether a request reads everything under its path, so that the rules inside must allow it too
 * (rules.ts): a PROPFIND of Depth infinity (RFC 4918 §9.1: also when no Depth is sent, or one that is
 * neither 0 nor 1) answers with
 * the properties of every member, names and all, of every folder inside, on a server that allows it
 * (Apache mod_dav with `DavDepthInfinity On`, and others). A REPORT, whatever its Depth: on a
 * collection, Radicale answers a CalDAV `calendar-query` or `sync-collection` with the content of
 * every member even at Depth 0 (RFC 6578's sync-level is in the body), so no Depth keeps a REPORT
 * to its path. A SEARCH (RFC 5323) reads the scopes its body names, at any depth. A PROPFIND of
 * Depth 0 or 1 reads the path and the names and properties of its direct members, which the path's
 * own rule covers (a Depth-1 PROPFIND asking for the members' content is read from its body,
 * body-paths.ts).
 */
export function readsWholeTree(method: string | null, headers: IncomingHttpHeaders): boolean {
  if (method === 'REPORT' || method === 'SEARCH') return true;
  if (method !== 'PROPFIND') return false;
  return shallowDepth(headers) === null;
}

/**
 * The request's Depth when it is 0 or 1; null for any other, none included: SabreDAV reads any
 * other (`one`, `1, 1`, two headers joined) as no Depth at all, which is infinity for a PROPFIND.
 */
export function shallowDepth(headers: IncomingHttpHeaders): '0' | '1' | null {
  const depth = typeof headers.depth === 'string' ? headers.depth.trim() : null;
  return depth === '0' || depth === '1' ? depth : null;
}

/** `unusable`: a base path the gateway cannot read as the app does (escapes, two of them). */
export type BasePath = string | null | { unusable: string };

/**
 * The base path a WSGI app takes from X-Script-Name (any spelling: the server joins them) and cuts,
 * as sent, off the Destination and the decoded hrefs it reads (Radicale): only when the header
 * reaches the app, from a trusted proxy. Null when there is none; unusable unless one plain path.
 */
export function appBasePath(headers: IncomingHttpHeaders): BasePath {
  let found: BasePath = null;
  for (const name of Object.keys(headers)) {
    if (name.length !== 13 || normaliseHeaderName(name) !== 'x-script-name') continue;
    if (found !== null) return { unusable: 'X-Script-Name sent twice' };
    const value = headers[name];
    const base = (Array.isArray(value) ? value.join(',') : (value ?? '')).replace(/\/+$/, '');
    found = base === '' ? null : PLAIN_PATH.test(base) ? base : { unusable: 'X-Script-Name is not one plain path' };
  }
  return found;
}

/** Letters, digits, `-._~` and `/` only, from `/`: what reads the same decoded or not. */
const PLAIN_PATH = /^\/[A-Za-z0-9\-._~/]*$/;
