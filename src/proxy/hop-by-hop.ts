// Hop-by-hop headers (RFC 9110 §7.6.1) describe one connection, not the message: the client's
// connection to the gateway, or the gateway's to the app. Forwarding them confuses the next hop —
// undici refuses `Keep-Alive`, `Upgrade`, `Expect` and `Transfer-Encoding` outright (a 502), and the
// app's `Connection: keep-alive` would keep a client's socket open after it asked for `close`.
// SPEC §4: dropped in both directions, and from the WebSocket handshake the gateway sends upstream
// (websocket-handshake.ts reads the same names).
import type { IncomingHttpHeaders } from 'node:http';

type Headers = IncomingHttpHeaders | Record<string, string | string[] | number | undefined>;

/** Always connection-specific, whatever `Connection` lists (lower case, as Node and undici key them). */
const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  // Answered by the gateway itself (Node sends `100 Continue`); the app's connection is the
  // gateway's, and undici does not support it.
  'expect',
] as const;

const HOP_BY_HOP_NAMES: ReadonlySet<string> = new Set(HOP_BY_HOP);

const PLAIN_CONNECTION = /^\s*(?:keep-alive|close)\s*$/i;

/**
 * The names in `headers` that must not be forwarded: every hop-by-hop header and every header the
 * `Connection` header names. For a rewriter that copies what may travel rather than deleting.
 */
export function hopByHopNames(headers: Headers): ReadonlySet<string> {
  const connection = headers.connection;
  // Almost every message says just `keep-alive` or `close`, or nothing: the fixed set then.
  if (connection === undefined || PLAIN_CONNECTION.test(String(connection))) return HOP_BY_HOP_NAMES;
  return new Set([...HOP_BY_HOP, ...connectionOptions(connection)]);
}

/**
 * A copy of `headers` without any hop-by-hop header or header the `Connection` header names
 * (RFC 9110 §7.6.1: "a proxy MUST remove any header fields listed in Connection"). A copy rather
 * than deletes: a delete turns the object into a slow dictionary-mode one, on every response.
 */
export function withoutHopByHop<T extends Headers>(headers: T): T {
  const leaveOut = hopByHopNames(headers);
  const copy: Record<string, unknown> = {};
  for (const name of Object.keys(headers)) if (!leaveOut.has(name)) copy[name] = headers[name];
  return copy as T;
}

/** The comma-separated tokens of `Connection`, lower-cased (header names are case-insensitive). */
export function connectionOptions(value: string | string[] | number): string[] {
  const names: string[] = [];
  for (const line of Array.isArray(value) ? value : [String(value)]) {
    for (const token of line.split(',')) {
      const name = token.trim().toLowerCase();
      if (name !== '') names.push(name);
    }
  }
  return names;
}
