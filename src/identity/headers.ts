// What the upstream receives (SPEC section 4), as pure functions tested with tables of cases.
// Built once at start-up: the set of names to strip and the injected names are fixed then.
import type { IncomingHttpHeaders } from 'node:http';
import type { Identity } from '../session/types.js';
import { lastEntry } from '../http.js';

export const DEFAULT_IDENTITY_HEADERS = ['x-forwarded-user', 'x-forwarded-email', 'x-forwarded-groups'] as const;
/** The header the gateway signs identity into (signed-identity.ts); spoofed copies are always stripped, even when signing is off. */
export const SIGNED_IDENTITY_HEADERS = ['x-gateway-identity'] as const;
/**
 * Headers that make apps and frameworks re-route or re-address a request (IIS/Symfony
 * `X-Original-URL`, Rails/Express/Spring method overrides, proxy-prefix and client-address
 * claims). SPEC section 4: believed only from a trusted proxy, removed from anyone else, in
 * every case and underscore (or dot) spelling.
 */
export const OVERRIDE_HEADERS = [
  'forwarded',
  'x-real-ip',
  'x-original-url',
  'x-rewrite-url',
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
  'x-forwarded-prefix',
  // WSGI apps behind a proxy (Radicale among them) take it as their base path, and cut it off the
  // paths a CalDAV body names.
  'x-script-name',
  'x-forwarded-port',
  'x-forwarded-server',
  'x-client-ip',
  'true-client-ip',
  'cf-connecting-ip',
] as const;

export interface HeaderNames {
  user: string;
  email: string;
  groups: string;
}

export interface ForwardingContext {
  identity: Identity | null;
  /** Address of the TCP peer (the load balancer, or the browser). */
  peerAddress: string;
  /** Whether the peer is in GATEWAY_TRUSTED_PROXIES. */
  peerTrusted: boolean;
  /** Protocol of the connection the gateway accepted. */
  protocol: string;
  /** The Host header the client sent. */
  host: string | undefined;
  requestId: string;
  /** The signed identity token for this request's session (GATEWAY_IDENTITY_JWT); absent: none. */
  signedIdentity?: string | null;
}

/**
 * Header names compared the way a legacy app would read them: case ignored, and every character
 * but a letter or digit read as `-`. CGI, WSGI and PHP turn `-` into `_` (so `X_Forwarded_User` is
 * `X-Forwarded-User` to them), and PHP also turns `.` into `_` when it fills `$_SERVER`
 * (`X-Forwarded.User`); any other token character is folded too, for whatever stack comes next.
 */
export function normaliseHeaderName(name: string): string {
  const lower = name.toLowerCase();
  // Most names are letters, digits and `-` only: no second string for them (hot path).
  return NOT_NAME_CHARACTER.test(lower) ? lower.replace(NOT_NAME_CHARACTERS, '-') : lower;
}

const NOT_NAME_CHARACTER = /[^a-z0-9-]/;
const NOT_NAME_CHARACTERS = /[^a-z0-9-]/g;

/**
 * Values made only of printable ASCII other than `%` (and `,` inside a group), and not starting or
 * ending with a space, travel as they are; anything else is percent-encoded as UTF-8 in full
 * (RFC 3986), so nothing raw reaches the app and decoding is never ambiguous (SPEC section 4).
 * Leading and trailing spaces are optional whitespace that every HTTP parser strips (RFC 9110
 * section 5.5): sent raw, `alice ` would arrive as `alice`, another account.
 */
export function encodeHeaderValue(value: string, alsoEncodeComma = false): string {
  if (value.charCodeAt(0) === 0x20 || value.charCodeAt(value.length - 1) === 0x20) return percentEncodeAll(value);
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code > 0x7e || code === 0x25 || (alsoEncodeComma && code === 0x2c)) {
      return percentEncodeAll(value);
    }
  }
  return value;
}

function percentEncodeAll(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/** Whether two group lists are the same, in the same order (what the groups header would carry). */
export function sameGroups(a: readonly string[], b: readonly string[]): boolean {
  return a === b || (a.length === b.length && a.every((group, i) => group === b[i]));
}

/** Whether two identities would put the same identity headers on a request. */
export function sameForwardedIdentity(a: Identity, b: Identity): boolean {
  return a.user === b.user && a.email === b.email && sameGroups(a.groups, b.groups);
}

export function encodeGroups(groups: readonly string[]): string {
  return groups.map((g) => encodeHeaderValue(g, true)).join(',');
}

/** Removes the named cookies from a Cookie header, keeping the app's own cookies byte for byte. */
export function removeCookies(header: string, names: ReadonlySet<string>): string {
  const kept: string[] = [];
  for (const part of header.split(';')) {
    const trimmed = part.trim();
    if (trimmed === '') continue;
    const eq = trimmed.indexOf('=');
    const name = eq === -1 ? trimmed : trimmed.slice(0, eq).trim();
    if (!names.has(name)) kept.push(trimmed);
  }
  return kept.join('; ');
}

const FORWARDED_TRIO = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host'] as const;
const FORWARDED_TRIO_NAMES: ReadonlySet<string> = new Set(FORWARDED_TRIO);

/**
 * The headers to send upstream, built from the client's. `leaveOut`: names (lower case, as Node keys
 * them) that must not travel at all, such as the hop-by-hop ones. Returns a new object: deleting
 * from the client's would turn it into a slow dictionary-mode object on every request.
 */
export type RequestHeaderRewriter = (headers: IncomingHttpHeaders, ctx: ForwardingContext, leaveOut?: ReadonlySet<string>) => IncomingHttpHeaders;

export function createRequestHeaderRewriter(options: {
  names: HeaderNames;
  cookieNames: readonly string[];
  preserveHost: boolean;
}): RequestHeaderRewriter {
  const { names } = options;
  const stripped = new Set(
    [...DEFAULT_IDENTITY_HEADERS, ...SIGNED_IDENTITY_HEADERS, names.user, names.email, names.groups].map(normaliseHeaderName),
  );
  // The X-Forwarded-* trio is replaced for untrusted peers anyway (setForwardedHeaders); listing it
  // here also removes its underscore and dot spellings, which CGI-style apps and PHP would merge with ours.
  const overrides: ReadonlySet<string> = new Set([...OVERRIDE_HEADERS, ...FORWARDED_TRIO]);
  const cookieNames = new Set(options.cookieNames);
  const cookieNameList = [...cookieNames];
  const userHeader = names.user.toLowerCase();
  const emailHeader = names.email.toLowerCase();
  const groupsHeader = names.groups.toLowerCase();

  return (headers, ctx, leaveOut) => {
    const out: IncomingHttpHeaders = {};
    copyClientHeaders(headers, out, stripped, ctx.peerTrusted ? null : overrides, leaveOut ?? null);
    const cookie = headers.cookie;
    if (cookie !== undefined && leaveOut?.has('cookie') !== true) {
      const kept = withoutOwnCookies(cookie, cookieNames, cookieNameList);
      if (kept !== '') out.cookie = kept;
    }
    setForwardedHeaders(headers, out, ctx, leaveOut ?? null);
    // reply-from has already set Host to the upstream's; legacy apps build URLs from the client's.
    if (options.preserveHost && ctx.host) out.host = ctx.host;
    out['x-request-id'] = ctx.requestId;
    if (ctx.identity) {
      out[userHeader] = encodeHeaderValue(ctx.identity.user);
      if (ctx.identity.email) out[emailHeader] = encodeHeaderValue(ctx.identity.email);
      if (ctx.identity.groups.length > 0) out[groupsHeader] = encodeGroups(ctx.identity.groups);
      if (ctx.signedIdentity) out[SIGNED_IDENTITY_HEADERS[0]] = ctx.signedIdentity;
    }
    return out;
  };
}

/**
 * One walk over the client's headers, copying what may travel: identity names never; override
 * names unless the peer is a trusted proxy (`overrides` null then), compared case- and
 * `_`-insensitively; nor the X-Forwarded-* trio (set afterwards), the Cookie header (copied without
 * the gateway's cookies afterwards) or anything in `leaveOut`.
 */
function copyClientHeaders(headers: IncomingHttpHeaders, out: IncomingHttpHeaders, stripped: ReadonlySet<string>, overrides: ReadonlySet<string> | null, leaveOut: ReadonlySet<string> | null): void {
  // Own names only (Object.keys, not for…in): nothing inherited can ever travel upstream.
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (value === undefined || name === 'cookie' || FORWARDED_TRIO_NAMES.has(name) || leaveOut?.has(name) === true) continue;
    const normalised = normaliseHeaderName(name);
    if (stripped.has(normalised) || (overrides !== null && overrides.has(normalised))) continue;
    out[name] = value;
  }
}

/** The Cookie header without the gateway's own cookies, the app's byte for byte ('' if none is left). */
function withoutOwnCookies(cookie: string, cookieNames: ReadonlySet<string>, nameList: readonly string[]): string {
  // Leave the header byte for byte when none of our cookies can be in it.
  if (!nameList.some((name) => cookie.includes(name))) return cookie;
  return removeCookies(cookie, cookieNames);
}

/**
 * From a trusted proxy, X-Forwarded-For is appended to, and the Proto/Host it sent are kept (they
 * describe the client's view, which is what apps build URLs from). From anyone else, all three
 * are replaced with what the gateway saw itself, so a client cannot forge them.
 */
function setForwardedHeaders(headers: IncomingHttpHeaders, out: IncomingHttpHeaders, ctx: ForwardingContext, leaveOut: ReadonlySet<string> | null): void {
  const sentFor = sentClaim(headers, 'x-forwarded-for', leaveOut);
  out['x-forwarded-for'] = ctx.peerTrusted && sentFor ? `${sentFor}, ${ctx.peerAddress}` : ctx.peerAddress;
  const sentProto = sentClaim(headers, 'x-forwarded-proto', leaveOut);
  out['x-forwarded-proto'] = ctx.peerTrusted && sentProto ? sentProto : ctx.protocol;
  // A list from a trusted proxy: only its last entry (the one the proxy in front wrote) is what the
  // gateway checked (http.ts requestHost); an app reading the first would get an unchecked one.
  const sentHost = sentClaim(headers, 'x-forwarded-host', leaveOut);
  const host = ctx.peerTrusted && sentHost ? lastEntry(sentHost) : ctx.host;
  if (host) out['x-forwarded-host'] = host;
  // The other spellings of the same claims (RFC 7239 Forwarded, nginx's X-Real-IP, …) were
  // left out with the override headers in copyClientHeaders unless the peer is trusted. Apps
  // written for nginx read the client address from X-Real-IP: it is set to what the gateway saw.
  if (!ctx.peerTrusted) out['x-real-ip'] = ctx.peerAddress;
}

/** What the client sent for one of the trio, as one string; nothing when it must not travel (`leaveOut`). */
function sentClaim(headers: IncomingHttpHeaders, name: (typeof FORWARDED_TRIO)[number], leaveOut: ReadonlySet<string> | null): string | undefined {
  return leaveOut?.has(name) === true ? undefined : single(headers[name]);
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}
