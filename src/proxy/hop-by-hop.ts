// Hop-by-hop headers (RFC 9110 §7.6.1) describe one connection, not the message: the client's
// connection to the gateway, or the gateway's to the app. Forwarding them confuses the next hop —
// undici refuses `Keep-Alive`, `Upgrade`, `Expect` and `Transfer-Encoding` outright (a 502), and the
// app's `Connection: keep-alive` would keep a client's socket open after it asked for `close`.
// SPEC §4: dropped in both directions. WebSocket handshakes never pass here (websocket.ts).
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

const PLAIN_CONNECTION = /^\s*(?:keep-alive|close)\s*$/i;

/**
 * Removes, in place, every hop-by-hop header and every header the `Connection` header names
 * (RFC 9110 §7.6.1: "a proxy MUST remove any header fields listed in Connection"). Called before
 * the gateway adds its own headers, so `Connection: x-forwarded-for` cannot strip what it sends.
 */
export function dropHopByHopHeaders<T extends Headers>(headers: T): T {
  const connection = headers.connection;
  // Almost every response says just `keep-alive` or `close`: nothing to parse for those.
  if (connection !== undefined && !PLAIN_CONNECTION.test(String(connection))) {
    for (const name of connectionOptions(connection)) delete headers[name];
  }
  for (const name of HOP_BY_HOP) if (headers[name] !== undefined) delete headers[name];
  return headers;
}

/** The comma-separated tokens of `Connection`, lower-cased (header names are case-insensitive). */
function connectionOptions(value: string | string[] | number): string[] {
  const names: string[] = [];
  for (const line of Array.isArray(value) ? value : [String(value)]) {
    for (const token of line.split(',')) {
      const name = token.trim().toLowerCase();
      if (name !== '') names.push(name);
    }
  }
  return names;
}
