// Tracing with OpenTelemetry (SPEC section 8): one trace per request, off unless an OTLP endpoint
// is configured. This file loads nothing from OpenTelemetry; the SDK (sdk.ts) is imported only by
// startTracing, so with tracing off each hook below costs one null check and nothing else.
import type { IncomingHttpHeaders } from 'node:http';

export * from './types.js';
import type { SpanAttributes, SpanHooks, SpanValue, Tracing, TracingEvents, TracingOptions } from './types.js';

let hooks: SpanHooks | null = null;
let running = 0;

/** Loads the SDK and starts exporting; only called when an endpoint is configured. */
export async function startTracing(options: TracingOptions, events: TracingEvents = {}): Promise<Tracing> {
  const sdk = await import('./sdk.js');
  const tracing = sdk.createTracing(options, events);
  hooks = sdk.spanHooks;
  running += 1;
  let stopped = false;
  return {
    traceRequests: (listener) => tracing.traceRequests(listener),
    async shutdown() {
      if (stopped) return;
      stopped = true;
      if (--running === 0) hooks = null;
      await tracing.shutdown();
    },
  };
}

/** `fn` inside a child span of the current request's span (none outside a traced request). */
export function traced<T>(name: string, fn: () => Promise<T>, attributes?: SpanAttributes): Promise<T> {
  return hooks === null ? fn() : hooks.span(name, fn, attributes, false);
}

/**
 * `traced` for work that may answer at once, `fn(a, b)`: without tracing, a synchronous answer stays
 * one, and nothing is allocated (no promise, no closure: it is on every request's path).
 */
export function tracedAwaitable<A, B, T>(name: string, fn: (a: A, b: B) => T | Promise<T>, a: A, b: B): T | Promise<T> {
  return hooks === null ? fn(a, b) : hooks.span(name, async () => fn(a, b), undefined, false);
}

// Attribute names are OpenTelemetry's semantic conventions (database spans), spelt out here so
// that this file imports nothing from OpenTelemetry.
const REDIS = 'redis';
const POSTGRES = 'postgresql';
const dbAttributes = new Map<string, SpanAttributes>();
const dbSpanAttributes = (system: string, operation: string): SpanAttributes => {
  const key = `${system} ${operation}`;
  let attributes = dbAttributes.get(key);
  if (attributes === undefined) dbAttributes.set(key, (attributes = { 'db.system.name': system, 'db.operation.name': operation }));
  return attributes;
};

/** A Redis call (span `redis <what>`; `command` is the Redis command, or BATCH for several). */
export function redisCall<T>(what: string, command: string, fn: () => Promise<T>): Promise<T> {
  return hooks === null ? fn() : hooks.span(`redis ${what}`, fn, dbSpanAttributes(REDIS, command), true);
}

/** A PostgreSQL query (span `postgresql <what>`), with its SQL verb as the operation; never its parameters. */
export function postgresCall<T>(what: string, sql: string, fn: () => Promise<T>): Promise<T> {
  if (hooks === null) return fn();
  const verb = /^\s*(\w+)/.exec(sql)?.[1]?.toUpperCase() ?? 'QUERY';
  return hooks.span(`postgresql ${what}`, fn, dbSpanAttributes(POSTGRES, verb), true);
}

/** An attribute on the innermost span of the current request (e.g. the session cache's hit or miss). */
export function tagSpan(key: string, value: SpanValue): void {
  if (hooks !== null) hooks.tag(key, value);
}

/**
 * The upstream call starts: a client span, whose W3C `traceparent` (and `tracestate`) replace what
 * the client sent in the headers forwarded to the app. `key` is the request, to end it by.
 */
export function traceUpstream(key: object, headers: IncomingHttpHeaders, method: string, upstream: URL, path: string): IncomingHttpHeaders {
  if (hooks !== null) hooks.upstreamStart(key, headers, method, upstream, path);
  return headers;
}

/** The app answered (`status`) or failed (`error`, no status). */
export function endUpstream(key: object, status: number | null, error?: unknown): void {
  if (hooks !== null) hooks.upstreamEnd(key, status, error);
}
