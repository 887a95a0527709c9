// What a POST's body names as its method, read as it streams: `_method` in a form (Rails'
// Rack::MethodOverride, Laravel, Symfony, Spring's HiddenHttpMethodFilter), in a multipart form
// (Laravel's PUT with a file), or at the top of a JSON object (Laravel's input). The scanner is fed
// the body chunk by chunk and keeps only what could be such a value (bounded), never the body:
// bodies stream (SPEC 4). Forms and multipart through @fastify/busboy, JSON by a small scanner of
// the top-level keys.
import { StringDecoder } from 'node:string_decoder';
import { Busboy, type BusboyInstance } from '@fastify/busboy';
import { methodsNamed, namesMethod, type OverridingBody } from './method-override.js';

/** A name longer than this cannot be `_method` once PHP's leading spaces are dropped from any sane one. */
const MAX_NAME_BYTES = 16 * 1024;
/** A method name is short; a longer value is kept cut (it then names no method a rule can scope). */
const MAX_VALUE_BYTES = 64;

export type BodyScan = { ok: true; methods: string[] | null } | { ok: false; reason: string };

export interface BodyMethodScanner {
  write(chunk: Buffer): void;
  /** Once the body has ended: the methods it names, or why it could not be read as its type. */
  end(): Promise<BodyScan>;
}

export function createBodyMethodScanner(type: OverridingBody, contentType: string): BodyMethodScanner {
  return type === 'json' ? jsonScanner() : formScanner(contentType);
}

/** Forms and multipart forms: every field named `_method` (PHP's spellings too); file parts are files to every app. */
function formScanner(contentType: string): BodyMethodScanner {
  const values: string[] = [];
  let failure: string | null = null;
  let parser: BusboyInstance | null = null;
  try {
    parser = Busboy({
      headers: { 'content-type': contentType },
      limits: { fieldNameSize: MAX_NAME_BYTES, fieldSize: MAX_VALUE_BYTES },
      // A part is a file only when it has a filename: PHP and Rack read any other part as a field,
      // whatever its Content-Type (busboy's default would take application/octet-stream for a file).
      isPartAFile: (_name: string | undefined, _type: string | undefined, filename: string | undefined) => filename !== undefined,
    });
  } catch (err) {
    failure = (err as Error).message;
  }
  const finished = new Promise<void>((resolve) => {
    if (parser === null) return resolve();
    parser.on('field', (name: string, value: string, nameTruncated: boolean) => {
      if (!nameTruncated && namesMethod(name)) values.push(value);
    });
    parser.on('file', (_name: string, stream: NodeJS.ReadableStream) => stream.resume());
    parser.on('error', (err: unknown) => {
      failure ??= err instanceof Error ? err.message : String(err);
      resolve();
    });
    parser.on('finish', () => resolve());
  });
  return {
    write(chunk) {
      if (parser !== null && failure === null) parser.write(chunk);
    },
    async end() {
      if (parser !== null && failure === null) parser.end();
      await finished;
      return failure === null ? { ok: true, methods: methodsNamed(values) } : { ok: false, reason: failure };
    },
  };
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
    if (raw.length + part.length > (role === 'key' ? MAX_NAME_BYTES : MAX_VALUE_BYTES)) overflow = true;
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
