// What a POST's body names as its method, read as it streams: `_method` in a form (Rails'
// Rack::MethodOverride, Laravel, Symfony, Spring's HiddenHttpMethodFilter), in a multipart form
// (Laravel's PUT with a file), or at the top of a JSON object (Laravel's input). The scanner is fed
// the body chunk by chunk and keeps only what could be such a name or value (bounded), never the
// body: bodies stream (SPEC 4).
// Where the apps' parsers differ, every reading counts (a reading can only add a check): a form's
// pairs split at `&` and at `;` (older parsers, Perl's CGI.pm among them); every `name` parameter of
// a multipart part (Rack takes the first, PHP the last); a part's content as raw bytes whatever
// charset a header names (PHP and Rack ignore them; a general parser such as busboy would decode
// them, and read `DELETE` as something else); file parts included.
import { StringDecoder } from 'node:string_decoder';
import { methodsNamed, namesMethod, type OverridingBody } from './method-override.js';

/** A name longer than this, leading spaces aside, is not `_method` in any spelling an app reads (21, and an escape cut by a chunk). */
const MAX_NAME_BYTES = 32;
/** `_method` with every character percent-encoded. */
const MAX_ENCODED_METHOD_NAME = '_method'.length * 3;
/** A JSON key longer than this is not `_method` (`\u005f…`, every character escaped, is 42). */
const MAX_JSON_KEY_BYTES = 64;
/** A method name is short; a longer value names no method (apps neither trim nor cut it). */
const MAX_VALUE_BYTES = 64;
/** Part headers longer than this are not a browser's: such a body is not read (the caller refuses it). */
const MAX_PART_HEADER_BYTES = 16 * 1024;

/**
 * Whether a form's raw name (leading spaces gone) may decode to `_method` in a spelling PHP reads:
 * 7 to 21 characters (every one percent-encoded), starting with `_` or `.` or their escapes. Most
 * names fail this at once, and only the rest are decoded.
 */
const mayNameMethod = (raw: string) => raw.length >= 7 && raw.length <= MAX_ENCODED_METHOD_NAME && /^(?:[_.]|%5f|%2e)/i.test(raw);

export type BodyScan = { ok: true; methods: string[] | null } | { ok: false; reason: string };

export interface BodyMethodScanner {
  write(chunk: Buffer): void;
  /** Once the body has ended: the methods it names, or why it could not be read as its type. */
  end(): Promise<BodyScan>;
}

export function createBodyMethodScanner(type: OverridingBody, contentType: string): BodyMethodScanner {
  if (type === 'json') return jsonScanner();
  if (type === 'form') return formScanner();
  const boundary = multipartBoundary(contentType);
  return boundary === null ? failed('no multipart boundary') : multipartScanner(boundary);
}

function failed(reason: string): BodyMethodScanner {
  return { write() {}, end: () => Promise.resolve({ ok: false, reason }) };
}

/**
 * A form: pairs split at `&` (and `;`), `+` and percent-escapes decoded as every form parser does,
 * bytes as Latin-1 (a method name is ASCII). Only the pair being read is kept, its name without the
 * leading spaces PHP drops and cut at MAX_NAME_BYTES, its value at MAX_VALUE_BYTES.
 */
function formScanner(): BodyMethodScanner {
  const values: string[] = [];
  let name = '';
  let value = '';
  let inValue = false;
  /** Whether the current pair's value is kept: its name may be `_method`. */
  let keepValue = false;
  let nameTooLong = false;
  let valueTooLong = false;
  const LEADING_SPACES = /^(?:\+|%20| )+/;
  const SEPARATORS = /[&;=]/g;
  const closePair = () => {
    if (keepValue && !valueTooLong) {
      const [pair] = new URLSearchParams(`${name}=${value}`);
      if (pair !== undefined && namesMethod(pair[0])) values.push(pair[1]);
    }
    name = value = '';
    inValue = keepValue = nameTooLong = valueTooLong = false;
  };
  /** Text of the current name or value from `from` to `to` (only sliced when it is kept). */
  const take = (text: string, from: number, to: number) => {
    if (from === to) return;
    if (inValue) {
      if (!keepValue || valueTooLong) return;
      if (value.length + to - from > MAX_VALUE_BYTES) valueTooLong = true;
      else value += text.slice(from, to);
    } else if (!nameTooLong) {
      name += text.slice(from, to);
      // PHP drops leading spaces (`+`, `%20`, a bare space); an escape cut by the chunk's end is
      // finished by the next one.
      const first = name.charCodeAt(0);
      if (first === 0x2b || first === 0x25 || first === 0x20) name = name.replace(LEADING_SPACES, '');
      if (name.length > MAX_NAME_BYTES) nameTooLong = true;
    }
  };
  // The separators are found by a native search: a long value is skipped, not walked or copied.
  const feed = (text: string) => {
    let start = 0;
    SEPARATORS.lastIndex = 0;
    for (let found = SEPARATORS.exec(text); found !== null; found = SEPARATORS.exec(text)) {
      if (found[0] === '=' && inValue) continue; // part of the value
      take(text, start, found.index);
      start = found.index + 1;
      if (found[0] !== '=') closePair();
      else {
        inValue = true;
        keepValue = !nameTooLong && mayNameMethod(name);
      }
    }
    take(text, start, text.length);
  };
  return {
    write(chunk) {
      feed(chunk.toString('latin1'));
    },
    end() {
      closePair();
      return Promise.resolve({ ok: true, methods: methodsNamed(values) });
    },
  };
}

/** The boundary a multipart Content-Type names, or null. */
function multipartBoundary(contentType: string): string | null {
  const found = /;\s*boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return found?.[1] ?? found?.[2] ?? null;
}

/**
 * A multipart body: between every two delimiters a part, its headers up to the first empty line,
 * then its content. A part counts when any `name` (or `name*`) parameter of a Content-Disposition
 * header names `_method`; its content up to the line break before the next delimiter is the value.
 * Only the unread rest of the current chunk and a partial delimiter are kept between chunks.
 */
function multipartScanner(boundary: string): BodyMethodScanner {
  const delimiter = `--${boundary}`;
  const values: string[] = [];
  let pending = '';
  let state: 'preamble' | 'headers' | 'content' | 'epilogue' = 'preamble';
  let counts = false;
  let value = '';
  let failure: string | null = null;

  const content = (text: string) => {
    if (counts && value.length <= MAX_VALUE_BYTES + 2) value += text.slice(0, MAX_VALUE_BYTES + 3 - value.length);
  };
  const closePart = () => {
    if (state === 'content' && counts) {
      const text = value.replace(/\r?\n$/, '');
      if (text.length <= MAX_VALUE_BYTES) values.push(text);
    }
    counts = false;
    value = '';
  };
  const feed = () => {
    while (failure === null && state !== 'epilogue') {
      if (state === 'headers') {
        const end = /\r?\n\r?\n/.exec(pending);
        if (end === null) {
          if (pending.length > MAX_PART_HEADER_BYTES) failure = 'multipart part headers too large';
          return;
        }
        counts = partNamesMethod(pending.slice(0, end.index));
        pending = pending.slice(end.index + end[0].length);
        state = 'content';
        continue;
      }
      const at = pending.indexOf(delimiter);
      if (at === -1) {
        // All but what could be the start of a delimiter is content (or preamble).
        const keep = Math.max(0, pending.length - delimiter.length);
        if (state === 'content') content(pending.slice(0, keep));
        pending = pending.slice(keep);
        return;
      }
      if (state === 'content') content(pending.slice(0, at));
      closePart();
      const rest = pending.slice(at + delimiter.length);
      if (rest.length < 2) {
        // Whether this is the closing delimiter (`--`) is in the next chunk.
        pending = pending.slice(at);
        return;
      }
      pending = rest;
      state = rest.startsWith('--') ? 'epilogue' : 'headers';
    }
  };
  return {
    write(chunk) {
      if (failure !== null || state === 'epilogue') return;
      pending += chunk.toString('latin1');
      feed();
    },
    end() {
      if (failure === null) feed();
      if (failure === null && state !== 'epilogue') failure = 'the multipart body ends before its closing delimiter';
      return Promise.resolve(failure === null ? { ok: true, methods: methodsNamed(values) } : { ok: false, reason: failure });
    },
  };
}

/** Whether any `name` parameter of a part's Content-Disposition names `_method` (quoted, bare or RFC 2231). */
function partNamesMethod(headers: string): boolean {
  for (const line of headers.split(/\r?\n/)) {
    if (!/^content-disposition\s*:/i.test(line)) continue;
    for (const [, quoted, bare] of line.matchAll(/(?:^|[;\s])name\*?\s*=\s*(?:"((?:\\.|[^"\\])*)"|([^;\s]*))/gi)) {
      const raw = quoted !== undefined ? quoted.replace(/\\(.)/g, '$1') : (bare ?? '');
      // `name*=utf-8''%5Fmethod` (RFC 2231), and any percent-encoding, read decoded too.
      const extended = raw.replace(/^[\w-]*'[\w-]*'/, '');
      if (namesMethod(raw) || namesMethod(extended) || namesMethod(percentDecoded(extended))) return true;
    }
  }
  return false;
}

function percentDecoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * A JSON body: the string values of the top-level object's keys that name `_method` (escapes
 * decoded, so `"\u005fmethod"` counts). Anything but an object names nothing. Strings that cannot
 * matter are skipped with a native search, not walked character by character.
 */
function jsonScanner(): BodyMethodScanner {
  const decoder = new StringDecoder('utf8');
  const values: string[] = [];
  let started = false;
  let finished = false;
  let depth = 0;
  let inString = false;
  let escaped = false;
  /** What the string being read is, at the top level; null: a string that cannot matter. */
  let role: 'key' | 'value' | null = null;
  let raw = '';
  let overflow = false;
  let expectKey = false;
  let afterColon = false;
  let keyNamesMethod = false;
  const STRUCTURE = /["{}[\],:]|[^\s"{}[\],:]/g;
  const STRING_END = /["\\]/g;

  const closeString = () => {
    const text = overflow ? null : decodeJsonString(raw);
    if (role === 'key') {
      keyNamesMethod = text !== null && namesMethod(text);
      expectKey = false;
    } else if (role === 'value' && text !== null) values.push(text);
    role = null;
  };

  const scan = (text: string) => {
    let i = 0;
    while (!finished && i < text.length) {
      if (inString) {
        if (escaped) {
          escaped = false;
          keep(text[i] as string);
          i++;
          continue;
        }
        STRING_END.lastIndex = i;
        const found = STRING_END.exec(text);
        const stop = found === null ? text.length : found.index;
        keep(text.slice(i, stop));
        if (found === null) return;
        i = stop + 1;
        if (found[0] === '\\') {
          escaped = true;
          keep('\\');
        } else {
          inString = false;
          closeString();
        }
        continue;
      }
      STRUCTURE.lastIndex = i;
      const found = STRUCTURE.exec(text);
      if (found === null) return;
      const c = found[0];
      i = found.index + 1;
      if (!started) {
        started = true;
        if (c !== '{') finished = true;
        depth = 1;
        expectKey = true;
        continue;
      }
      if (c === '"') {
        inString = true;
        raw = '';
        overflow = false;
        role = depth !== 1 ? null : expectKey ? 'key' : afterColon && keyNamesMethod ? 'value' : null;
        afterColon = false;
        continue;
      }
      if (depth === 1 && c === ':') {
        afterColon = true;
        continue;
      }
      if (depth === 1 && c === ',') {
        expectKey = true;
        keyNamesMethod = false;
        continue;
      }
      afterColon = false;
      if (c === '{' || c === '[') depth++;
      else if (c === '}' || c === ']') finished = --depth === 0;
    }
  };

  const keep = (part: string) => {
    if (role === null || overflow) return;
    if (raw.length + part.length > (role === 'key' ? MAX_JSON_KEY_BYTES : MAX_VALUE_BYTES)) overflow = true;
    else raw += part;
  };

  return {
    write(chunk) {
      if (!finished) scan(decoder.write(chunk));
    },
    end() {
      if (!finished) scan(decoder.end());
      return Promise.resolve({ ok: true, methods: methodsNamed(values) });
    },
  };
}

/** A JSON string's content (between its quotes) decoded, or null when it is not valid JSON. */
function decodeJsonString(raw: string): string | null {
  try {
    return JSON.parse(`"${raw}"`) as string;
  } catch {
    return null;
  }
}
