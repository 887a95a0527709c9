// What a WebDAV request's XML body names besides its path, read as it streams: the `href`s of a
// CalDAV or CardDAV `calendar-multiget` / `addressbook-multiget` REPORT (the app answers with the
// content of each, wherever it is: Radicale serves any member of the request's collection, even to
// a REPORT on another member, and SabreDAV any path under its base), of a SEARCH's scope (RFC 5323)
// and of a BIND or REBIND's source (RFC 5842); and whether a Depth-1 PROPFIND asks for its members'
// content (`calendar-data`, `address-data`: SabreDAV answers them as properties). The rules of
// every path named must allow the request too (rules.ts `named`). The scanner keeps only the text
// of `href` elements (bounded), never the body: bodies stream (SPEC 4).
// Every element whose local name is `href`, in any namespace or case, counts (a reading can only
// add a check). A DOCTYPE is refused: it could declare entities the app expands and the scan does not.
import type { IncomingHttpHeaders } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import sax from 'sax';
import { readReference } from './destination.js';
import { encodeOutsidePrintableAscii, MAX_URL_LENGTH } from './paths.js';

/** What a body names: the normalised paths of its hrefs, and whether it asks for its members' content. */
export type BodyPaths = { ok: true; named: string[] | null; readsMembers: boolean } | { ok: false; reason: string; tooLarge: boolean };

/**
 * Bodies larger than this are not read to the end where they would be judged (413): a dense XML
 * body costs the event loop about 30 ms of CPU per MB to parse (bench/body-scan.mjs), and a
 * CalDAV multiget of 10,000 events is about 750 KB, and clients batch theirs far smaller.
 */
export const MAX_SCANNED_XML_BYTES = 1024 * 1024;

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
  if (method !== 'PROPFIND') return false;
  const depth = headers.depth;
  return typeof depth === 'string' && depth.trim() === '1';
}

export interface BodyPathScanner {
  /** False once the body is known to be refused (unreadable, or too large): no need to read on. */
  write(chunk: Buffer): boolean;
  /** Once the body has ended: the paths it names, or why it could not be read. */
  end(): Promise<BodyPaths>;
}

const localName = (name: string): string => name.slice(name.indexOf(':') + 1).toLowerCase();

export function createBodyPathScanner(): BodyPathScanner {
  const parser = sax.parser(true);
  const decoder = new StringDecoder('utf8');
  const hrefs = new Set<string>();
  let inHref = 0;
  let href = '';
  let readsMembers = false;
  let bytes = 0;
  let failure: { reason: string; tooLarge: boolean } | null = null;
  const fail = (reason: string, tooLarge = false) => {
    failure ??= { reason, tooLarge };
  };

  parser.onopentag = ({ name }) => {
    const local = localName(name);
    if (local === 'href') {
      if (inHref++ === 0) href = '';
    } else if (CONTENT_PROPERTIES.has(local)) readsMembers = true;
  };
  parser.onclosetag = (name) => {
    if (localName(name) === 'href' && --inHref === 0) hrefs.add(href.trim());
  };
  parser.ontext = parser.oncdata = (text) => {
    if (inHref === 0) return;
    href += text;
    if (href.length > MAX_URL_LENGTH) fail('an href is too long');
  };
  parser.ondoctype = () => fail('a DOCTYPE is not read (it could declare entities)');
  parser.onerror = (err) => fail(`not XML (${err.message.split('\n')[0] ?? ''})`);

  /** The parser throws once it has failed: nothing more is written to it. */
  const feed = (text: string) => {
    if (failure === null && text !== '') parser.write(text);
  };

  return {
    write(chunk) {
      bytes += chunk.length;
      if (bytes > MAX_SCANNED_XML_BYTES) fail(`larger than ${MAX_SCANNED_XML_BYTES} bytes`, true);
      feed(decoder.write(chunk));
      return failure === null;
    },
    end() {
      feed(decoder.end());
      if (failure === null && bytes > 0) parser.close();
      return Promise.resolve(failure === null ? pathsOf(hrefs, readsMembers) : { ok: false, ...failure });
    },
  };
}

/** The hrefs read as the app reads them: an absolute path or http(s) URI, normalised (destination.ts). */
function pathsOf(hrefs: ReadonlySet<string>, readsMembers: boolean): BodyPaths {
  if (hrefs.size === 0) return { ok: true, named: null, readsMembers };
  const named = new Set<string>();
  for (const href of hrefs) {
    // A raw space or non-ASCII letter in a name is what its percent-encoding is to the app.
    const encoded = encodeOutsidePrintableAscii(href);
    const reference = typeof encoded === 'string' ? readReference(encoded) : encoded;
    if (!reference.ok) return { ok: false, reason: `href ${JSON.stringify(href.slice(0, 100))}: ${reference.reason}`, tooLarge: false };
    named.add(reference.path);
  }
  return { ok: true, named: [...named], readsMembers };
}
