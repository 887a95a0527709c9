// What else an app may act on besides a request's path and method, read as the app will read it,
// for the gate's other readings (rules.ts): a WebDAV Destination (destination.ts), a path in the
// query (CodeIgniter, paths.ts), the methods a POST names (method-override.ts), a read of the whole
// tree (PROPFIND Depth infinity, destination.ts), and the URL a trusted proxy's X-Original-URL names
// (rewritten-url.ts). One function for both doors that name a request: the proxy (its own request)
// and forward-auth (the request the proxy in front names).
import type { IncomingHttpHeaders } from 'node:http';
import type { AccessRequest } from './gate.js';
import { appBasePath, readsWholeTree, requestDestination } from './destination.js';
import { overrideMethods } from './method-override.js';
import { queryRoutedPath } from './paths.js';
import { rewrittenPaths } from './rewritten-url.js';

export interface RequestShape {
  /** Upper case; null when not known (forward-auth without a method header). */
  method: string | null;
  /** The request-target: path and query. */
  url: string;
  headers: IncomingHttpHeaders;
  /**
   * Whether the client's re-routing headers reach the app: from a trusted proxy at the proxy door
   * (anyone else's are removed there); never in forward-auth (the shipped proxy configs remove them).
   */
  reroutingHeadersReachApp: boolean;
}

/** The other readings, each present only when the request has it. */
export type Readings = Pick<AccessRequest, 'destination' | 'routed' | 'methods' | 'wholeTree' | 'rewritten' | 'named'>;

export type ReadingsResult =
  /** `destinationHeader`: the normalised Destination to forward (the one authorised), or null. */
  | { ok: true; readings: Readings; destinationHeader: string | null }
  /** `destination`: a Destination that names no one path; `path`: another path that cannot be normalised. */
  | { ok: false; kind: 'destination' | 'path'; reason: string };

/** Most requests have none of them: one shared answer, nothing allocated. */
const NONE: ReadingsResult = Object.freeze({ ok: true, readings: Object.freeze({}), destinationHeader: null });

export function requestReadings(shape: RequestShape): ReadingsResult {
  const { method, url, headers } = shape;
  // Created at the first reading found: most requests allocate nothing here.
  let readings: Readings | null = null;
  const destination = requestDestination(method, headers);
  if (destination !== null) {
    if (!destination.ok) return { ok: false, kind: 'destination', reason: destination.reason };
    (readings ??= {}).destination = destination.path;
    // A WSGI app behind the trusted proxy (Radicale) cuts its base path off the Destination: that is a path it writes to too.
    if (shape.reroutingHeadersReachApp) {
      const base = appBasePath(headers);
      if (base !== null && typeof base === 'object') return { ok: false, kind: 'destination', reason: base.unusable };
      if (base !== null && destination.path.startsWith(`${base}/`)) readings.named = [destination.path.slice(base.length)];
    }
  }
  const routed = queryRoutedPath(url);
  if (routed !== null) {
    if (!routed.ok) return { ok: false, kind: 'path', reason: `the path in the query: ${routed.reason}` };
    (readings ??= {}).routed = routed.path;
  }
  const methods = overrideMethods(method, url, shape.reroutingHeadersReachApp ? headers : null);
  if (methods !== null) (readings ??= {}).methods = methods;
  if (readsWholeTree(method, headers)) (readings ??= {}).wholeTree = true;
  if (shape.reroutingHeadersReachApp) {
    const rewritten = rewrittenPaths(headers);
    if (!rewritten.ok) return { ok: false, kind: 'path', reason: `a URL the app would route by: ${rewritten.reason}` };
    if (rewritten.paths.length > 0) (readings ??= {}).rewritten = rewritten.paths;
  }
  if (readings === null) return NONE;
  return { ok: true, readings, destinationHeader: destination?.ok === true ? destination.header : null };
}
