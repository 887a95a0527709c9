// Frameworks let a POST stand for another method, so HTML forms can update and delete: Laravel and
// Symfony read `_method` from the query string (and the form body), Spring's HiddenHttpMethodFilter
// reads the request parameter `_method` (query or body), and Rails, Express's method-override,
// ASP.NET Core and Symfony read an `X-HTTP-Method-Override` header. A rule scoped to DELETE would
// otherwise be walked around with `POST /orders/1?_method=DELETE`. Each such method is another
// reading of the request (rules.ts): the rules for it must allow the request too.
//
// Read here: the query string of a POST (every stack above reads only a POST's override), and, when
// they reach the app (from a GATEWAY_TRUSTED_PROXIES peer; anyone else's are removed, headers.ts),
// the override headers. A POST's form, multipart or JSON body is scanned as it streams, where it
// could change the decision (proxy/judged-body.ts); these functions say what counts there.
import type { IncomingHttpHeaders } from 'node:http';
import { normaliseHeaderName } from '../identity/headers.js';

/** The override headers, as normaliseHeaderName spells them (every `_` or `.` read as `-`). */
const OVERRIDE_METHOD_HEADERS: ReadonlySet<string> = new Set(['x-http-method-override', 'x-http-method', 'x-method-override']);
/** What an app could take for a method name once upper-cased (Symfony 7 accepts only letters). */
const METHOD_NAME = /^[A-Z][A-Z0-9_-]*$/;
const MAX_OVERRIDES = 8;

/**
 * The methods other than `method` an app may take this request for: null when there are none
 * (anything but a POST, or a POST that names no other method). `url` is the request-target (its
 * query is read); `headers` only when the client's override headers reach the app (a trusted peer).
 */
export function overrideMethods(method: string | null, url: string, headers: IncomingHttpHeaders | null): string[] | null {
  if (method !== 'POST') return null;
  const found = new Set<string>();
  const query = queryOf(url);
  if (query !== '') for (const value of queryOverrides(query)) addMethod(found, value);
  if (headers !== null) for (const value of headerOverrides(headers)) addMethod(found, value);
  found.delete(method);
  return found.size === 0 ? null : [...found];
}

/** The query of a request-target, without a fragment (which is never forwarded: paths.ts). */
function queryOf(url: string): string {
  const hash = url.indexOf('#');
  const target = hash === -1 ? url : url.slice(0, hash);
  const q = target.indexOf('?');
  return q === -1 ? '' : target.slice(q + 1);
}

/**
 * The values of every query parameter PHP or a Servlet container would name `_method`: PHP decodes
 * the name, drops leading spaces and turns `.` and spaces into `_` (`?.method=`, `?+_method=`);
 * compared without case, which only ever adds a reading.
 */
function queryOverrides(query: string): string[] {
  // Most queries name no method at all: no parsing for them (any `%` may encode one of its letters).
  if (!/method/i.test(query) && !query.includes('%')) return [];
  const values: string[] = [];
  for (const [name, value] of new URLSearchParams(query)) {
    if (namesMethod(name)) values.push(value);
  }
  return values;
}

/**
 * Whether a parameter is `_method` to some app: PHP drops leading spaces and reads `.` and spaces
 * as `_` (`.method`, ` _method`); compared without case, which only ever adds a reading.
 */
export function namesMethod(name: string): boolean {
  return name.trimStart().replace(/[. ]/g, '_').toLowerCase() === '_method';
}

/** The body types an app reads a `_method` from. */
export type OverridingBody = 'form' | 'multipart' | 'json';

/**
 * Which of them a POST's Content-Type is to some app, or null (any other method or type: nothing
 * to read). Rack reads a POST without a Content-Type as a form, and any `multipart/*` body;
 * Laravel reads as JSON any type containing `/json` or `+json`.
 */
export function overridingBodyType(method: string, contentType: string | undefined): OverridingBody | null {
  if (method !== 'POST') return null;
  if (contentType === undefined) return 'form';
  const type = (contentType.split(';', 1)[0] as string).trim().toLowerCase();
  if (type === 'application/x-www-form-urlencoded' || type === '') return 'form';
  if (type.startsWith('multipart/')) return 'multipart';
  if (contentType.includes('/json') || contentType.includes('+json')) return 'json';
  return null;
}

/** The methods other than POST these values name, as apps upper-case them; null when none. */
export function methodsNamed(values: readonly string[]): string[] | null {
  const found = new Set<string>();
  for (const value of values) addMethod(found, value);
  found.delete('POST');
  return found.size === 0 ? null : [...found];
}

/** Values of the override headers in any spelling (`X_HTTP_Method_Override`, `X-HTTP-Method.Override`). */
function headerOverrides(headers: IncomingHttpHeaders): string[] {
  const values: string[] = [];
  for (const name of Object.keys(headers)) {
    if (!OVERRIDE_METHOD_HEADERS.has(normaliseHeaderName(name))) continue;
    const value = headers[name];
    if (typeof value === 'string') values.push(value);
    else if (Array.isArray(value)) values.push(...value);
  }
  return values;
}

function addMethod(found: Set<string>, value: string): void {
  // Frameworks upper-case the value as it is; a header sent twice reaches Node joined with ", ".
  for (const part of value.split(',')) {
    const name = part.trim().toUpperCase();
    if (METHOD_NAME.test(name) && found.size < MAX_OVERRIDES) found.add(name);
  }
}
