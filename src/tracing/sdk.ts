// The OpenTelemetry SDK side of tracing, imported by index.ts's startTracing only. Spans are
// exported in batches as OTLP/HTTP (JSON, what the official exporter sends); the current request's
// span travels in an AsyncLocalStorage of our own, so no global OpenTelemetry state is installed and
// several gateways in one process (tests) each keep their own tracer.
import { AsyncLocalStorage } from 'node:async_hooks';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders, IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, defaultTextMapGetter, defaultTextMapSetter, trace, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator, setGlobalErrorHandler } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, detectResources, resourceAttributesEnvDetector, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type Sampler,
} from '@opentelemetry/sdk-trace';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_VERSION,
  ATTR_URL_FULL,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
} from '@opentelemetry/semantic-conventions';
import type { SamplerName, SpanAttributes, SpanHooks, SpanValue, TracingEvents, TracingOptions } from './types.js';

interface Current {
  context: Context;
  tracer: Tracer;
}

const current = new AsyncLocalStorage<Current>();
/**
 * Methods named as they are in span names and `http.request.method`; any other is `HTTP` and
 * `_OTHER` (OpenTelemetry's rule), so a client cannot make up span names.
 */
const KNOWN_METHODS = new Set([
  'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH',
  'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'REPORT', 'MKCALENDAR', 'SEARCH', 'ACL',
]);
const methodOf = (method: string | undefined): string | null => (method !== undefined && KNOWN_METHODS.has(method) ? method : null);
/** The gateway's own version (service.version), from its package.json beside dist/ or src/. */
const VERSION = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();
const propagator = new W3CTraceContextPropagator();
/** Upstream calls in flight, by request: started in one reply-from callback, ended in another. */
const upstreamSpans = new WeakMap<object, Span>();

export function createTracing(options: TracingOptions, events: TracingEvents): { traceRequests(listener: RequestListener): RequestListener; shutdown(): Promise<void> } {
  // The SDK reports failed exports here (one handler per process: the latest gateway's).
  setGlobalErrorHandler((err) => events.exportFailed?.(err));
  const provider = new TracerProvider({
    resource: resourceFor(options),
    sampler: samplerFor(options.sampler, options.samplerRatio),
    spanProcessors: [
      // Headers, timeout, compression and certificates: the exporter reads OTEL_EXPORTER_OTLP_* itself.
      new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: options.url }), scheduledDelayMillis: options.exportDelayMs }),
    ],
  });
  const tracer = provider.getTracer('session-gateway', VERSION);

  return {
    traceRequests(listener) {
      return (req: IncomingMessage, res: ServerResponse) => {
        const parent = propagator.extract(ROOT_CONTEXT, req.headers, defaultTextMapGetter);
        const url = req.url ?? '/';
        const query = url.indexOf('?');
        const method = methodOf(req.method);
        const span = tracer.startSpan(
          method ?? 'HTTP',
          {
            kind: SpanKind.SERVER,
            attributes: {
              [ATTR_HTTP_REQUEST_METHOD]: method ?? '_OTHER',
              // Never the query string: it may carry tokens.
              [ATTR_URL_PATH]: query === -1 ? url : url.slice(0, query),
              [ATTR_URL_SCHEME]: 'encrypted' in req.socket ? 'https' : 'http',
            },
          },
          parent,
        );
        res.once('close', () => {
          // A response cut before it was complete (client gone, timeout) ends its span all the same.
          span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, res.statusCode);
          if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
          if (!res.writableFinished) span.setAttribute(ATTR_ERROR_TYPE, 'response_incomplete');
          span.end();
        });
        current.run({ context: trace.setSpan(parent, span), tracer }, listener, req, res);
      };
    },
    async shutdown() {
      // The last batch, sent now; a collector that is down costs at most the export timeout.
      await provider.shutdown().catch((err: unknown) => events.exportFailed?.(err));
    },
  };
}

export const spanHooks: SpanHooks = {
  span<T>(name: string, fn: () => Promise<T>, attributes: SpanAttributes | undefined, client: boolean): Promise<T> {
    const here = current.getStore();
    // Outside a traced request (start-up checks, background work): no span, no trace of its own.
    if (here === undefined) return fn();
    const span = here.tracer.startSpan(name, { kind: client ? SpanKind.CLIENT : SpanKind.INTERNAL, ...(attributes ? { attributes } : {}) }, here.context);
    let pending: Promise<T>;
    try {
      pending = current.run({ context: trace.setSpan(here.context, span), tracer: here.tracer }, fn);
    } catch (err) {
      pending = Promise.reject(err);
    }
    return pending.then(
      (value) => {
        span.end();
        return value;
      },
      (err: unknown) => {
        fail(span, err);
        span.end();
        throw err;
      },
    );
  },

  tag(key: string, value: SpanValue): void {
    const here = current.getStore();
    if (here !== undefined) trace.getSpan(here.context)?.setAttribute(key, value);
  },

  upstreamStart(key: object, headers: IncomingHttpHeaders, method: string, upstream: URL, path: string): void {
    const here = current.getStore();
    if (here === undefined) return;
    // The client's own trace headers never reach the app as they came: ours replace them.
    delete headers.traceparent;
    delete headers.tracestate;
    const known = methodOf(method);
    const span = here.tracer.startSpan(
      known ?? 'HTTP',
      {
        kind: SpanKind.CLIENT,
        attributes: {
          [ATTR_HTTP_REQUEST_METHOD]: known ?? '_OTHER',
          [ATTR_SERVER_ADDRESS]: upstream.hostname,
          [ATTR_SERVER_PORT]: Number(upstream.port) || (upstream.protocol === 'https:' ? 443 : 80),
          [ATTR_URL_FULL]: `${upstream.origin}${path}`,
        },
      },
      here.context,
    );
    upstreamSpans.get(key)?.end();
    upstreamSpans.set(key, span);
    propagator.inject(trace.setSpan(here.context, span), headers, defaultTextMapSetter);
  },

  upstreamEnd(key: object, status: number | null, error: unknown): void {
    const span = upstreamSpans.get(key);
    if (span === undefined) return;
    upstreamSpans.delete(key);
    if (status !== null) {
      span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
      if (status >= 400) {
        span.setStatus({ code: SpanStatusCode.ERROR });
        span.setAttribute(ATTR_ERROR_TYPE, String(status));
      }
    }
    if (error !== undefined) fail(span, error);
    span.end();
  },
};

/**
 * Marks a span failed with the error's code (its cause's first: the proxy wraps the socket's error)
 * or class; never its message (it may hold user input).
 */
function fail(span: Span, err: unknown): void {
  const codeOf = (e: unknown): string | null => {
    const code = (e as { code?: unknown } | null)?.code;
    return typeof code === 'string' && code !== '' ? code : null;
  };
  const type = codeOf((err as { cause?: unknown } | null)?.cause) ?? codeOf(err) ?? (err instanceof Error ? err.name : 'error');
  span.setAttribute(ATTR_ERROR_TYPE, type);
  span.setStatus({ code: SpanStatusCode.ERROR });
}

function resourceFor(options: TracingOptions) {
  // OTEL_SERVICE_NAME wins over service.name in OTEL_RESOURCE_ATTRIBUTES, which wins over ours.
  const named = options.serviceName === null ? {} : { [ATTR_SERVICE_NAME]: options.serviceName };
  return defaultResource()
    .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: 'session-gateway', [ATTR_SERVICE_VERSION]: VERSION }))
    .merge(detectResources({ detectors: [resourceAttributesEnvDetector] }))
    .merge(resourceFromAttributes(named));
}

function samplerFor(name: SamplerName, ratio: number): Sampler {
  switch (name) {
    case 'always_on': return new AlwaysOnSampler();
    case 'always_off': return new AlwaysOffSampler();
    case 'traceidratio': return new TraceIdRatioBasedSampler(ratio);
    case 'parentbased_always_on': return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off': return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio': return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
  }
}
