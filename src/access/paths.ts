/**
 * Request-target normalisation, public-path matching and post-login redirect
 * validation. Pure functions, no I/O.
 *
 * Security invariant: the path that is authorised is byte-for-byte the path
 * that is forwarded upstream. Anything we cannot put into one unambiguous
 * canonical form is rejected (the caller answers `400`), never "fixed up",
 * because a fix-up that the upstream interprets differently is exactly how
 * path-confusion bypasses happen.
 */

export type NormalisedUrl =
  | { ok: true; path: string; url: string /* path + original query string ('?…' kept verbatim) */ }
  | { ok: false; reason: string /* short, for logs and the 400 body */ };

type Failure = { ok: false; reason: string };

/** Upper bound on the raw request-target, checked before any work is done. */
export const MAX_URL_LENGTH = 8192;
/** Upper bound on a post-login `rd` redirect target. */
export const MAX_REDIRECT_LENGTH = 2048;

const SLASH = 0x2f;
const BACKSLASH = 0x5c;
const PERCENT = 0x25;

// Characters that may appear raw in a canonical path: RFC 3986 §3.3
// `pchar = unreserved / pct-encoded / sub-delims / ":" / "@"`, plus "/".
// `%` is handled separately (it starts a pct-encoded triplet).
const UNRESERVED_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~';
const PATH_RAW_CHARS = UNRESERVED_CHARS + "!$&'()*+,;=:@/";

const UNRESERVED = asciiTable(UNRESERVED_CHARS);
const PATH_RAW = asciiTable(PATH_RAW_CHARS);
const HEX_UPPER = Array.from({ length: 256 }, (_, b) => b.toString(16).toUpperCase().padStart(2, '0'));

// Fast-path guard, hoisted so it is compiled once. A path needs the slow path
// if it has any character outside the raw pchar set (this catches `%`, `\`,
// spaces, non-ASCII), a repeated slash, or a dot segment (optionally followed
// by `;`, see DOT_WITH_PARAMS below).
const NEEDS_SLOW_PATH = /[^A-Za-z0-9\-._~!$&'()*+,;=:@/]|\/\/|\/\.\.?(?:[/;]|$)/;
// Query and fragment are kept verbatim except that characters which cannot
// legally appear raw on an HTTP request line / in a Location header (space,
// non-ASCII) are percent-encoded. Node's parser already rejects those with a
// 400, so for real traffic the query really is verbatim.
const NEEDS_ENCODING_OUTSIDE_PATH = /[^!-~]/;
// A dot segment carrying path parameters (`..;jsessionid=x`, `..%3B`). RFC 3986
// treats it as an ordinary segment, but Tomcat/Jetty-style upstreams strip the
// parameters and then resolve the `..` — the classic `/public/..;/admin`
// bypass. We cannot forward it without the upstream seeing a different path.
const DOT_WITH_PARAMS = /^\.\.?(?:;|%3B)/;
// For redirect targets: any whitespace, control (C0, DEL, C1) or invisible
// format character (zero-width, bidi overrides) anywhere → reject.
const UNSAFE_REDIRECT_CHAR = /[\s\p{Cc}\p{Cf}]/u;

function asciiTable(chars: string): Uint8Array {
  const table = new Uint8Array(128);
  for (let i = 0; i < chars.length; i++) table[chars.charCodeAt(i)] = 1;
  return table;
}

function fail(reason: string): Failure {
  return { ok: false, reason };
}

function isFailure(value: string | readonly [string, number] | Failure): value is Failure {
  return typeof value === 'object' && 'ok' in value;
}

/** Raw control characters (0x00-0x1F, 0x7F). A loop rather than a regex: cheap, and eslint's no-control-regex stays on. */
export function hasControlChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30; // 0-9
  const lower = c | 0x20; // ASCII case fold; RFC 3986 §2.1: hex digits are case-insensitive
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10; // a-f
  return -1;
}

/** The byte encoded by the `%XX` triplet starting at `percentIndex`, or -1 if it is malformed. */
function decodeTriplet(s: string, percentIndex: number): number {
  const hi = hexValue(s.charCodeAt(percentIndex + 1)); // NaN past the end → -1
  const lo = hexValue(s.charCodeAt(percentIndex + 2));
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/**
 * Percent-encode the code point at `index` as UTF-8 (RFC 3986 §2.5).
 * Returns the encoded text and the number of UTF-16 code units consumed.
 */
function encodeCodePointAt(s: string, index: number): [text: string, width: number] | Failure {
  const cp = s.codePointAt(index) ?? 0;
  // A well-formed surrogate pair yields cp > 0xFFFF; a lone surrogate has no UTF-8 form.
  if (cp >= 0xd800 && cp <= 0xdfff) return fail('invalid unicode');
  return [encodeURIComponent(String.fromCodePoint(cp)), cp > 0xffff ? 2 : 1];
}

/** Percent-encode everything outside printable ASCII (used for query and fragment). */
export function encodeOutsidePrintableAscii(s: string): string | Failure {
  if (!NEEDS_ENCODING_OUTSIDE_PATH.test(s)) return s;
  let out = '';
  for (let i = 0; i < s.length; ) {
    const c = s.charCodeAt(i);
    if (c > 0x20 && c < 0x7f) {
      out += s[i];
      i++;
      continue;
    }
    const encoded = encodeCodePointAt(s, i);
    if (isFailure(encoded)) return encoded;
    out += encoded[0];
    i += encoded[1];
  }
  return out;
}

/**
 * Percent-encoding normalisation of a path (RFC 3986 §6.2.2.1 and §6.2.2.2):
 * decode unreserved characters, upper-case the hex of every other triplet,
 * and encode raw characters that are not allowed in a path. Rejects encodings
 * that would change the path's structure if an upstream decoded them.
 */
function normalisePercentEncoding(path: string): string | Failure {
  let out = '';
  for (let i = 0; i < path.length; ) {
    const c = path.charCodeAt(i);
    if (c === PERCENT) {
      const byte = decodeTriplet(path, i);
      if (byte < 0) return fail('malformed percent-encoding');
      // An encoded separator would be one segment to us and two to an upstream
      // that decodes before routing, so it can never be authorised safely.
      if (byte === SLASH) return fail('encoded slash');
      if (byte === BACKSLASH) return fail('encoded backslash');
      if (byte === 0) return fail('encoded NUL');
      out += byte < 0x80 && UNRESERVED[byte] === 1 ? String.fromCharCode(byte) : '%' + HEX_UPPER[byte];
      i += 3;
    } else if (c === BACKSLASH) {
      // Not a URI character; Windows/IIS-style upstreams treat it as "/".
      return fail('backslash');
    } else if (c < 0x80 && PATH_RAW[c] === 1) {
      out += path[i];
      i++;
    } else {
      // Raw space, `"<>[]^`{|}` or non-ASCII: not legal raw in a path
      // (RFC 3986 §3.3), so encode it (UTF-8) to get one canonical form.
      const encoded = encodeCodePointAt(path, i);
      if (isFailure(encoded)) return encoded;
      out += encoded[0];
      i += encoded[1];
    }
  }
  return out;
}

/**
 * Collapse repeated slashes, then remove dot segments as in RFC 3986 §5.2.4,
 * except that a `..` above the root is rejected instead of being dropped:
 * clamping would silently authorise a different path from the one the client
 * asked for. The trailing slash is kept, and a final `.`/`..` leaves one
 * (§5.2.4 steps 2B/2C: `/a/b/.` → `/a/b/`, `/a/b/..` → `/a/`).
 * Input must start with "/".
 */
function removeDotSegments(path: string): string | Failure {
  const segments = path.split('/');
  const output: string[] = [];
  for (const segment of segments) {
    if (segment === '' || segment === '.') continue; // '' = repeated slash (or the leading one)
    if (segment === '..') {
      if (output.pop() === undefined) return fail('path escapes root');
      continue;
    }
    if (DOT_WITH_PARAMS.test(segment)) return fail('dot segment with parameters');
    output.push(segment);
  }
  if (output.length === 0) return '/';
  const last = segments[segments.length - 1];
  const trailingSlash = last === '' || last === '.' || last === '..';
  return '/' + output.join('/') + (trailingSlash ? '/' : '');
}

function normalisePath(path: string): string | Failure {
  // Order matters (RFC 3986 §6.2.2): decode first so `%2e%2e` is seen as `..`.
  const encoded = normalisePercentEncoding(path);
  return isFailure(encoded) ? encoded : removeDotSegments(encoded);
}

/**
 * Normalise an HTTP request-target (origin-form, RFC 9112 §3.2.1) for
 * authorisation and forwarding. The returned `url` is what must be sent
 * upstream; `path` is what must be authorised.
 */
export function normaliseRequestUrl(rawUrl: string): NormalisedUrl {
  if (rawUrl.length > MAX_URL_LENGTH) return fail('url too long');
  // Only origin-form: `*` (asterisk-form) and `http://…` (absolute-form) are not proxied.
  if (rawUrl.charCodeAt(0) !== SLASH) return fail('not origin-form');
  // Raw controls (incl. NUL, CR, LF) are rejected anywhere, query included:
  // they must never reach the upstream request line.
  if (hasControlChar(rawUrl)) return fail('control character');

  // Browsers never send a fragment; drop it (RFC 3986 §3.5) before splitting
  // the query, since a `?` inside a fragment does not start a query.
  const hash = rawUrl.indexOf('#');
  const target = hash < 0 ? rawUrl : rawUrl.slice(0, hash);
  const q = target.indexOf('?');
  const rawPath = q < 0 ? target : target.slice(0, q);
  const rawQuery = q < 0 ? '' : target.slice(q);

  const path = NEEDS_SLOW_PATH.test(rawPath) ? normalisePath(rawPath) : rawPath;
  if (isFailure(path)) return path;
  const query = encodeOutsidePrintableAscii(rawQuery);
  if (isFailure(query)) return query;

  // Fast path: nothing changed, reuse the input string.
  const url = path === rawPath && query === rawQuery ? target : path + query;
  return { ok: true, path, url };
}

/**
 * The path as a Servlet container maps it (SPEC 4): path parameters (`;…` up to the end of each
 * segment) removed, then the empty segments this leaves collapsed and dot segments resolved
 * (Tomcat and Jetty treat `..;x` as `..`). Rules, public paths and logout paths are matched
 * against this reading as well as the path itself, so a parameter never widens access:
 * `/admin;x/secret` is `/admin/secret`, `/;x/admin` is `/admin`, `/admin;` is `/admin`.
 * An encoded `%3B` counts as a separator here too: containers leave it in the segment, but a
 * framework that decodes before stripping would not, and a reading can only add a check.
 * Expects a path from `normaliseRequestUrl` (`%3B` upper-case); returns it unchanged (same
 * string, no allocation) when it holds no parameter. A `..` above the root stays at the root.
 */
export function withoutPathParameters(path: string): string {
  if (path.indexOf(';') === -1 && path.indexOf('%3B') === -1) return path;
  const output: string[] = [];
  const segments = path.split('/');
  for (const segment of segments) {
    const name = segment.slice(0, parameterStart(segment));
    if (name === '' || name === '.') continue;
    if (name === '..') output.pop();
    else output.push(name);
  }
  if (output.length === 0) return '/';
  const last = segments[segments.length - 1] as string;
  const lastName = last.slice(0, parameterStart(last));
  // `/admin;x/` keeps its trailing slash; `/admin;` is the segment `admin` (Jetty: `/admin`).
  const trailingSlash = last === '' || lastName === '.' || lastName === '..';
  return '/' + output.join('/') + (trailingSlash ? '/' : '');
}

/**
 * The path as a PHP front controller routes it (SPEC 4): for `/index.php/admin` the web server runs
 * `index.php` with `/admin` as its path info (Apache's AcceptPathInfo, nginx's
 * fastcgi_split_path_info), and frameworks (Laravel, Symfony, CodeIgniter, Slim) route that exactly
 * like `/admin`. So the first segment ending in `.php` (any case) with more path after it is
 * removed: `/index.php/admin` is `/admin`, `/app/index.php/admin/x` is `/app/admin/x`, as the
 * site's own URLs spell them. A rule or logout path matching this reading applies too (rules.ts,
 * gate.ts); it can only add a check. Returns the path itself (no allocation) when it holds no such segment.
 */
export function withoutScriptName(path: string): string {
  if (path.indexOf('.') === -1) return path;
  const found = SCRIPT_SEGMENT.exec(path);
  if (found === null) return path;
  // Keep the `/` that ended the script's segment: it starts the path info.
  return path.slice(0, found.index) + path.slice(found.index + found[0].length - 1);
}

const SCRIPT_SEGMENT = /\/[^/]*\.php\//i;

/**
 * The path as a router that takes a format suffix maps it (SPEC 4): Rails routes `/admin.json` as
 * `/admin` (every route ends in an optional `(.:format)`), and Spring MVC before 5.3 without Spring
 * Boot matches `/admin.*` for a mapping of `/admin` (suffix pattern matching, on by default there).
 * So the last segment loses everything from its first `.` on, when a name is left before it:
 * `/admin.json` is `/admin`, `/users/1.xml/` is `/users/1`; `/.well-known` and `/a/.hidden` are kept.
 * Returns the path itself (no allocation) when its last segment has no such suffix.
 */
export function withoutFormatSuffix(path: string): string {
  const end = path.endsWith('/') ? path.length - 1 : path.length;
  const segmentStart = path.lastIndexOf('/', end - 1) + 1;
  const dot = path.indexOf('.', segmentStart);
  if (dot <= segmentStart || dot >= end) return path;
  return path.slice(0, dot);
}

/**
 * The path as Windows resolves it (SPEC 4): the file system drops the dots and spaces that end a
 * name, and reads what follows a `:` as a stream of it (`::$DATA`, `::$INDEX_ALLOCATION`), so IIS
 * and any app on Windows that serves files by path serve `/admin./x`, `/admin%20/x` and
 * `/admin::$INDEX_ALLOCATION/x` from the folder `admin`. Each segment loses those tails (a segment
 * left empty is dropped). Returns the path itself (no allocation) when no segment has one.
 */
export function withoutWindowsNameTails(path: string): string {
  // A name ends in a dot or space only before a `/` or at the end; a stream needs a `:`.
  const tails = path.indexOf(':') !== -1 || path.indexOf('./') !== -1 || path.indexOf('%20/') !== -1 || path.endsWith('.') || path.endsWith('%20');
  if (!tails) return path;
  const segments = path.split('/');
  let changed = false;
  const output: string[] = [];
  for (const segment of segments) {
    const name = windowsName(segment);
    if (name !== segment) changed = true;
    if (name !== '' || segment === '') output.push(name);
  }
  if (!changed) return path;
  const joined = output.join('/');
  return joined.startsWith('/') ? joined : `/${joined}`;
}

/** A segment as a Windows file name: up to its first `:`, without trailing dots and (encoded) spaces. */
function windowsName(segment: string): string {
  const colon = segment.indexOf(':');
  let name = colon === -1 ? segment : segment.slice(0, colon);
  for (;;) {
    if (name.endsWith('.')) name = name.slice(0, -1);
    else if (name.endsWith('%20')) name = name.slice(0, -3);
    else return name;
  }
}

/**
 * The path as a JSF application renders it (SPEC 4): its FacesServlet is mapped to `/faces/*` as
 * well as to `*.xhtml` (or `*.jsf`), and renders the view its path info names, so
 * `/faces/admin/users.xhtml` is the page `/admin/users.xhtml`. The first `faces` segment is
 * removed (a context path may come before it); a Servlet mapping is case-sensitive, and so is this.
 * Returns the path itself (no allocation) when it has no such segment.
 */
export function withoutFacesPrefix(path: string): string {
  const at = path.indexOf(FACES_SEGMENT);
  return at === -1 ? path : path.slice(0, at) + path.slice(at + FACES_SEGMENT.length - 1);
}

const FACES_SEGMENT = '/faces/';

/** A path an app may route a request by, besides the path itself. */
export interface PathReading {
  readonly path: string;
  /** Only the rules written for it count, not the default: a reading only some stacks make. */
  readonly explicitOnly: boolean;
}

const NO_OTHER_READINGS: readonly PathReading[] = Object.freeze([]);

/**
 * Every other path an app may route `path` as (SPEC 4): a Servlet container's (path parameters
 * removed), a PHP front controller's (script name removed), a format-suffix router's (of the
 * Servlet reading, which Spring makes first), Windows' (names without trailing dots, spaces and
 * streams, of the Servlet reading), a JSF application's (without a `/faces` prefix). Rules, public
 * paths and logout paths are matched against each (rules.ts, gate.ts), so a reading can only add a
 * check. The same empty array, without allocation, for a path that is read only as itself (most
 * requests).
 */
export function otherReadings(path: string): readonly PathReading[] {
  // Every reading needs a `.`, a `;`, a `:`, a `%` (of `%3B` or `%20`) or a `/faces/` segment:
  // most paths have none. Kept this small so that it is inlined where the decision is made.
  if (path.indexOf('.') === -1 && path.indexOf(';') === -1 && path.indexOf('%') === -1 && path.indexOf(':') === -1 && path.indexOf(FACES_SEGMENT) === -1) return NO_OTHER_READINGS;
  return readingsOf(path);
}

function readingsOf(path: string): readonly PathReading[] {
  const servlet = withoutPathParameters(path);
  const script = withoutScriptName(path);
  const format = withoutFormatSuffix(servlet);
  const windows = withoutWindowsNameTails(servlet);
  const faces = withoutFacesPrefix(servlet);
  if (servlet === path && script === path && format === path && windows === path && faces === path) return NO_OTHER_READINGS;
  const readings: PathReading[] = [];
  /** Each path once, in this order: a reading the path itself or an earlier one already makes adds nothing. */
  const add = (reading: string, explicitOnly: boolean) => {
    if (reading !== path && !readings.some((earlier) => earlier.path === reading)) readings.push({ path: reading, explicitOnly });
  };
  add(servlet, false);
  // The front controller's, the format router's, Windows' and JSF's readings add the rules written
  // for them, not the default: a site whose URLs carry the script (`/index.php/Main_Page`) keeps a
  // public `/index.php` public, and `/styles.css` stays public beside a rule-less `/styles`.
  add(script, true);
  add(format, true);
  add(windows, true);
  add(faces, true);
  return readings;
}

/**
 * The path a query-string router reads (SPEC 4): CodeIgniter, when nothing follows the base or
 * the script, routes `/app/?/admin/x` and `/app/index.php?/admin/x` as `/app/admin/x`, the query
 * up to a second `?` taken as the path. Null when the query does not start with `/`; a failure
 * when that path cannot be normalised (the caller answers 400: it cannot be authorised). Reading it
 * for any path (not only a base) only ever adds a check.
 */
export function queryRoutedPath(url: string): NormalisedUrl | null {
  const q = url.indexOf('?');
  if (q === -1 || url.charCodeAt(q + 1) !== SLASH) return null;
  const end = url.indexOf('?', q + 1);
  const routed = url.slice(q + 1, end === -1 ? undefined : end);
  const base = url.slice(0, q).replace(TRAILING_SCRIPT, '').replace(/\/+$/, '');
  return normaliseRequestUrl(base + routed);
}

const TRAILING_SCRIPT = /\/[^/]*\.php$/i;

const PATH_PARAMETERS = /;[^/]*/g;

/**
 * The path as logs may show it: path parameters can carry credentials (a Servlet app's
 * `;jsessionid=…`), and are kept out of logs like query strings. No work without a `;`.
 */
export function pathForLog(path: string): string {
  return path.indexOf(';') === -1 ? path : path.replace(PATH_PARAMETERS, ';[Redacted]');
}

/** Where a segment's parameters start: its first `;` or `%3B`, else its length. */
function parameterStart(segment: string): number {
  const semicolon = segment.indexOf(';');
  const encoded = segment.indexOf('%3B');
  if (semicolon === -1) return encoded === -1 ? segment.length : encoded;
  return encoded === -1 ? semicolon : Math.min(semicolon, encoded);
}

/**
 * Normalise a configured prefix to its segment "base" (no trailing slash;
 * `''` for the root). Throws, naming the prefix, if it is unusable.
 */
export function prefixBase(prefix: unknown): string {
  const bad = (why: string): Error => new Error(`invalid public path prefix ${JSON.stringify(prefix)}: ${why}`);
  if (typeof prefix !== 'string' || prefix.charCodeAt(0) !== SLASH) throw bad('must start with "/"');
  if (prefix.includes('?') || prefix.includes('#')) throw bad('must not contain "?" or "#"');
  const normalised = normaliseRequestUrl(prefix);
  if (!normalised.ok) throw bad(normalised.reason);
  const path = normalised.path;
  return path.endsWith('/') ? path.slice(0, -1) : path;
}

/**
 * Build a case-sensitive, segment-boundary prefix matcher. `/public` matches
 * `/public`, `/public/` and `/public/x` but not `/publicity`; `/static/`
 * also matches `/static`; `/` matches everything. The argument of the
 * returned function must be a `path` produced by `normaliseRequestUrl`.
 */
export function createPathMatcher(prefixes: readonly string[]): (path: string) => boolean {
  const bases = [...new Set(prefixes.map(prefixBase))]; // validates every prefix up front
  if (bases.includes('')) return () => true;
  if (bases.length === 0) return () => false;
  const withSlash = bases.map((base) => base + '/');
  return (path) => {
    for (let i = 0; i < bases.length; i++) {
      if (path === bases[i] || path.startsWith(withSlash[i] as string)) return true;
    }
    return false;
  };
}

/**
 * Validate a post-login `rd` redirect target. Only same-origin relative
 * references with an absolute path are accepted (RFC 3986 §4.2); `//host`
 * (network-path reference) and `/\host` (which browsers, per the WHATWG URL
 * standard, treat as `//host`) are not. Returns the normalised target
 * (path + query + fragment), or `fallback` for anything else.
 */
export function safeRedirectTarget(rd: unknown, fallback = '/'): string {
  if (typeof rd !== 'string' || rd.length === 0 || rd.length > MAX_REDIRECT_LENGTH) return fallback;
  if (rd.charCodeAt(0) !== SLASH) return fallback;
  const second = rd.charCodeAt(1);
  if (second === SLASH || second === BACKSLASH) return fallback;
  // Browsers strip tab/CR/LF and map `\` to `/` while parsing, so either could
  // turn a harmless-looking target into `//evil`: reject, never trim.
  if (rd.includes('\\') || UNSAFE_REDIRECT_CHAR.test(rd)) return fallback;

  const hash = rd.indexOf('#');
  const normalised = normaliseRequestUrl(hash < 0 ? rd : rd.slice(0, hash));
  if (!normalised.ok) return fallback;
  if (hash < 0) return normalised.url;
  // The fragment is client-side only; keep it, encoded so the Location header stays ASCII.
  const fragment = encodeOutsidePrintableAscii(rd.slice(hash));
  return isFailure(fragment) ? fallback : normalised.url + fragment;
}
