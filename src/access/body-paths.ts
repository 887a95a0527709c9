// What a WebDAV request's XML body names besides its path, read as it streams: the `href`s of a
// CalDAV or CardDAV `calendar-multiget` / `addressbook-multiget` REPORT (the app answers with the
// content of each, wherever it is: Radicale serves any member of the request's collection, even to
// a REPORT on another member, and SabreDAV any path under its base), of a SEARCH's scope (RFC 5323)
// and of a BIND or REBIND's source (RFC 5842); and whether a Depth-1 PROPFIND asks for its members'
// content (`calendar-data`, `address-data`: SabreDAV answers them as properties). The rules of
// every path named must allow the request too (rules.ts `named`). The scanner keeps only the text
// of `href` elements (bounded), never the body: bodies stream (SPEC 4).
// Every element whose local name is `href`, in any namespace or case, counts (a reading can only
// add a check). Where the servers' parsers could read a body otherwise, it is refused (400): a
// DOCTYPE (entities the app may expand), a charset or XML encoding other than UTF-8 (Radicale
// decodes by the Content-Type's charset, libxml2 by the declaration: `+ADw-` is `<` in UTF-7),
// bytes that are not UTF-8, an element inside an href (ElementTree's text stops at it), and a
// control character inside one (Python's and WHATWG's URL parsers delete tabs and newlines).
import type { IncomingHttpHeaders } from 'node:http';
import sax from 'sax';
import { readReference, shallowDepth, type BasePath } from './destination.js';
import { encodeOutsidePrintableAscii, hasControlChar, MAX_URL_LENGTH } from './paths.js';

/**
 * More distinct hrefs than this are not judged (413): each is looked up among the rules, up to
 * twice, about 5 µs an href with 50 or 500 rules (bench/href-match.mjs). Clients batch a multiget far
 * smaller (Evolution 100). A relative href is two paths, and the base a trusted proxy names
 * doubles them: no more than MAX_NAMED_PATHS are judged either.
 */
export const MAX_HREFS = 250;
const MAX_NAMED_PATHS = 2 * MAX_HREFS;

/** What a body names: the normalised paths of its hrefs, and whether it asks for its members' content. */
export type BodyPaths = { ok: true; named: string[] | null; readsMembers: boolean } | { ok: false; reason: string; tooLarge: boolean };

/**
 * Bodies larger than this are not read to the end where they would be judged (413): text costs the
 * event loop about 4 ms of CPU per MB to parse, comments about 35, elements up to about 110
 * (bench/body-scan.mjs). A multiget of the most hrefs judged is about 40 KB.
 */
export const MAX_SCANNED_XML_BYTES = 256 * 1024;
/** More elements than this are not read (413): a multiget of the most hrefs judged has about as many as hrefs. */
export const MAX_XML_ELEMENTS = 2_000;
/**
 * Deeper nesting, or more attributes on one element, is refused (400): the parser keeps every open
 * element and its attributes, so a body of nothing but `<a>` would hold tens of MB. CalDAV's
 * deepest filters nest about ten deep.
 */
const MAX_XML_DEPTH = 64;
const MAX_ATTRIBUTES = 64;
/** The parser builds attribute values a character at a time and keeps them while their elements are open: bounded in all. */
const MAX_ATTRIBUTE_BYTES = 16 * 1024;

/** The methods whose XML body names other resources by `href`. */
const HREF_METHODS: ReadonlySet<string> = new Set(['REPORT', 'SEARCH', 'BIND', 'REBIND']);
/** Properties that are a member's content, not its description (RFC 4791 §9.6, RFC 6352 §10.4). */
const CONTENT_PROPERTIES: ReadonlySet<string> = new Set(['calendar-data', 'address-data']);

/**
 * Whether a request's body may name other paths (a REPORT, SEARCH, BIND or REBIND) or its members'
 * content (a PROPFIND of Depth 1; one of Depth infinity reads the whole tree anyway, destination.ts).
 */
export function bodyMayNamePaths(method: string, headers: IncomingHttpHeaders): boolean {
  if (HREF_METHODS.has(method)) return true;
  return method === 'PROPFIND' && shallowDepth(headers) === '1';
}

export interface BodyPathScanner {
  /** False once the body is known to be refused (unreadable, or too large): no need to read on. */
  write(chunk: Buffer): boolean;
  /** Once the body has ended: the paths it names, or why it could not be read. */
  end(): Promise<BodyPaths>;
}

export interface BodyPathOptions {
  /** The request's Content-Type, for its charset. */
  contentType: string | undefined;
  /** The request's normalised path: a relative href (a SEARCH scope) is resolved against it. */
  requestPath: string;
  /** A base path the app cuts off the hrefs (X-Script-Name from a trusted proxy), or null; unusable: refused. */
  basePath: BasePath;
}

/** Thrown from the parser's handlers to stop it once the body is refused. */
const STOP = Symbol('stop parsing');

const localName = (name: string): string => name.slice(name.indexOf(':') + 1).toLowerCase();
const UTF8 = /^(?:utf-?8|us-ascii|ascii)$/i;
/** One charset parameter, alone: Radicale takes whatever follows the first `charset=` anywhere in the header. */
const CHARSET = /;\s*charset\s*=\s*"?([^";\s]*)"?\s*(?:;|$)/i;
const XML_ENCODING = /\bencoding\s*=\s*["']([^"']*)["']/;

export function createBodyPathScanner(options: BodyPathOptions): BodyPathScanner {
  const parser = sax.parser(true);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const hrefs = new Set<string>();
  let inHref = false;
  let href = '';
  let depth = 0;
  let elements = 0;
  let attributes = 0;
  let attributeBytes = 0;
  let readsMembers = false;
  let bytes = 0;
  let failure: { reason: string; tooLarge: boolean } | null = null;
  const fail = (reason: string, tooLarge = false) => {
    failure ??= { reason, tooLarge };
  };
  /** Fails, and stops the parser at once (the rest of the chunk is not parsed: feed catches this). */
  const refuse = (reason: string, tooLarge = false): never => {
    fail(reason, tooLarge);
    throw STOP;
  };
  const contentType = options.contentType ?? '';
  if (/charset/i.test(contentType)) {
    const charset = CHARSET.exec(contentType)?.[1];
    if (charset === undefined || contentType.toLowerCase().split('charset').length > 2 || !UTF8.test(charset)) fail(`Content-Type ${JSON.stringify(contentType.slice(0, 100))}: only a UTF-8 charset is read`);
  }
  if (typeof options.basePath === 'object' && options.basePath !== null) fail(options.basePath.unusable);

  parser.onopentagstart = () => {
    attributes = 0;
    if (inHref) refuse('an element inside an href');
    if (++depth > MAX_XML_DEPTH) refuse(`nested deeper than ${MAX_XML_DEPTH}`);
    if (++elements > MAX_XML_ELEMENTS) refuse(`more than ${MAX_XML_ELEMENTS} elements`, true);
  };
  parser.onattribute = ({ name, value }) => {
    if (++attributes > MAX_ATTRIBUTES) refuse(`more than ${MAX_ATTRIBUTES} attributes on one element`);
    attributeBytes += name.length + value.length;
    if (attributeBytes > MAX_ATTRIBUTE_BYTES) refuse(`more than ${MAX_ATTRIBUTE_BYTES} bytes of attributes`);
  };
  parser.onopentag = ({ name }) => {
    const local = localName(name);
    if (local === 'href') {
      inHref = true;
      href = '';
    } else if (CONTENT_PROPERTIES.has(local)) readsMembers = true;
  };
  parser.onclosetag = () => {
    depth--;
    if (!inHref) return;
    inHref = false;
    hrefs.add(href);
    if (hrefs.size > MAX_HREFS) refuse(`more than ${MAX_HREFS} hrefs`, true);
  };
  parser.ontext = parser.oncdata = (text) => {
    if (!inHref) return;
    href += text;
    if (href.length > MAX_URL_LENGTH) refuse('an href is too long');
  };
  parser.onprocessinginstruction = ({ name, body }) => {
    const encoding = name.toLowerCase() === 'xml' ? XML_ENCODING.exec(body)?.[1] : undefined;
    if (encoding !== undefined && !UTF8.test(encoding)) refuse(`encoding ${encoding}: only UTF-8 is read`);
  };
  parser.ondoctype = () => refuse('a DOCTYPE is not read (it could declare entities)');
  parser.onerror = (err) => refuse(`not XML (${err.message.split('\n')[0] ?? ''})`);

  /** Decodes strictly (bytes that are not UTF-8 fail) and parses; once failed, the parser is not fed again. */
  const feed = (chunk: Buffer | null) => {
    if (failure !== null) return;
    let text: string;
    try {
      text = chunk === null ? decoder.decode() : decoder.decode(chunk, { stream: true });
    } catch {
      return fail('not UTF-8');
    }
    try {
      if (text !== '') parser.write(text);
    } catch (err) {
      // (Anything else the parser throws is a body it cannot read, never a crash of the request.)
      if (err !== STOP) fail(`not XML (${String(err).slice(0, 100)})`);
    }
  };

  return {
    write(chunk) {
      bytes += chunk.length;
      if (bytes > MAX_SCANNED_XML_BYTES) fail(`larger than ${MAX_SCANNED_XML_BYTES} bytes`, true);
      feed(chunk);
      return failure === null;
    },
    end() {
      feed(null);
      try {
        if (failure === null && bytes > 0) parser.close();
      } catch (err) {
        if (err !== STOP) fail(`not XML (${String(err).slice(0, 100)})`);
      }
      return Promise.resolve(failure === null ? pathsOf(hrefs, readsMembers, options) : { ok: false, ...failure });
    },
  };
}

/** What an href names, as the apps read it: its path normalised, and without the base path the app cuts off. */
function pathsOf(hrefs: ReadonlySet<string>, readsMembers: boolean, options: BodyPathOptions): BodyPaths {
  if (hrefs.size === 0) return { ok: true, named: null, readsMembers };
  const named = new Set<string>();
  const base = typeof options.basePath === 'string' ? options.basePath : null;
  for (const raw of hrefs) {
    const read = readHref(raw, options.requestPath);
    if (!read.ok) return { ok: false, reason: `href ${JSON.stringify(raw.slice(0, 100))}: ${read.reason}`, tooLarge: false };
    for (const path of read.paths) {
      named.add(path);
      if (base !== null && path.startsWith(`${base}/`)) named.add(path.slice(base.length));
    }
    if (named.size > MAX_NAMED_PATHS) return { ok: false, reason: `more than ${MAX_NAMED_PATHS} paths named`, tooLarge: true };
  }
  return { ok: true, named: [...named], readsMembers };
}

/**
 * An href trimmed: an absolute path or http(s) URI, or a relative reference, read both ways the
 * servers do: against the request's path (SabreDAV, RFC 3986 §5.2) and from the root (Radicale).
 */
function readHref(raw: string, requestPath: string): { ok: true; paths: string[] } | { ok: false; reason: string } {
  const href = raw.trim();
  // Left after trimming, a control character is one URL parsers delete (tabs, newlines) or the app reads some other way.
  if (hasControlChar(href)) return { ok: false, reason: 'a control character' };
  // A raw space or non-ASCII letter in a name is what its percent-encoding is to the app.
  const encoded = encodeOutsidePrintableAscii(href);
  if (typeof encoded !== 'string') return encoded;
  if (encoded.startsWith('/') || SCHEME.test(encoded)) {
    const read = readReference(encoded);
    return read.ok ? { ok: true, paths: [read.path] } : read;
  }
  const paths: string[] = [];
  for (const base of [`http://h${requestPath}`, 'http://h/']) {
    const resolved = URL.parse(encoded, base);
    const read = resolved === null ? { ok: false as const, reason: 'not a URI reference' } : readReference(resolved.pathname);
    if (!read.ok) return read;
    paths.push(read.path);
  }
  return { ok: true, paths };
}

const SCHEME = /^[a-z][a-z0-9+.-]*:/i;
