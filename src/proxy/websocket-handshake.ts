// The client's side of a WebSocket opening handshake (RFC 6455 section 4.2.1), checked before
// the upstream is contacted, and the headers of the handshake the gateway sends upstream.
// Pure functions, tested with tables of cases.
import type { IncomingHttpHeaders } from 'node:http';
import { hopByHopNames } from './hop-by-hop.js';

export type HandshakeCheck = { ok: true; protocols: string[] } | { ok: false; status: 400 | 405 | 426; reason: string };

/** 16 random bytes in base64 (RFC 6455 section 4.1). */
const WEBSOCKET_KEY = /^[+/0-9A-Za-z]{22}==$/;
/** RFC 7230 token: what a subprotocol name must be (RFC 6455 section 4.1). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** The only version in use since 2011; a client asking for another is told which we speak. */
export const WEBSOCKET_VERSION = '13';

/** The client's handshake with the gateway; the gateway makes its own with the upstream. */
const HANDSHAKE = ['sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol', 'sec-websocket-accept'];
/** Beside the hop-by-hop headers (hop-by-hop.ts, the same list as every HTTP request's). */
const NOT_FORWARDED = new Set([...HANDSHAKE, 'content-length', 'host']);

export function isWebSocketUpgrade(headers: IncomingHttpHeaders): boolean {
  return (headers.upgrade ?? '').toLowerCase() === 'websocket';
}

/**
 * At least as strict as the `ws` server's own checks, so a handshake that passes here is never
 * refused by `ws` after the upstream has already been contacted.
 */
export function checkHandshake(method: string, headers: IncomingHttpHeaders): HandshakeCheck {
  if (method !== 'GET') return { ok: false, status: 405, reason: 'a WebSocket handshake must be a GET' };
  if (!isWebSocketUpgrade(headers)) return { ok: false, status: 400, reason: 'invalid Upgrade header' };
  const key = headers['sec-websocket-key'];
  if (key === undefined || !WEBSOCKET_KEY.test(key)) return { ok: false, status: 400, reason: 'missing or invalid Sec-WebSocket-Key' };
  if (headers['sec-websocket-version'] !== WEBSOCKET_VERSION) {
    return { ok: false, status: 426, reason: `unsupported Sec-WebSocket-Version (this gateway speaks ${WEBSOCKET_VERSION})` };
  }
  const offered = headers['sec-websocket-protocol'];
  if (offered === undefined) return { ok: true, protocols: [] };
  const protocols = parseProtocols(offered);
  return protocols ? { ok: true, protocols } : { ok: false, status: 400, reason: 'invalid Sec-WebSocket-Protocol' };
}

/** `chat, superchat` → ['chat', 'superchat']; null for an empty, malformed or duplicated name. */
export function parseProtocols(value: string): string[] | null {
  const names = value.split(',').map((name) => name.trim());
  if (names.some((name) => !TOKEN.test(name))) return null;
  return new Set(names).size === names.length ? names : null;
}

/**
 * The end-to-end headers of the client's request, for the upstream handshake: hop-by-hop headers,
 * those the client's Connection header names, and the client's own handshake headers are left
 * out (the `ws` client writes its own). Identity is handled afterwards by the same rewriter as
 * every HTTP request.
 */
export function endToEndHeaders(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const hopByHop = hopByHopNames(headers);
  const copy: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || NOT_FORWARDED.has(name) || hopByHop.has(name)) continue;
    copy[name] = value;
  }
  return copy;
}

/** A request that carries a body cannot be handled once Node has handed its socket over. */
export function hasBody(headers: IncomingHttpHeaders, head: Buffer): boolean {
  if (head.length > 0 || headers['transfer-encoding'] !== undefined) return true;
  const length = headers['content-length'];
  return length !== undefined && length !== '0';
}
