// The shapes tracing's two halves share: index.ts (the hooks the call sites use, no SDK) and
// sdk.ts (the OpenTelemetry side, loaded only when configured). Here, so neither imports the other's
// module for its types.
import type { IncomingHttpHeaders, RequestListener } from 'node:http';

export const SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;
export type SamplerName = (typeof SAMPLERS)[number];

export interface TracingOptions {
  /** The full OTLP/HTTP traces URL (`…/v1/traces`). */
  url: string;
  /** OTEL_SERVICE_NAME; null: `service.name` from OTEL_RESOURCE_ATTRIBUTES, else `session-gateway`. */
  serviceName: string | null;
  sampler: SamplerName;
  /** The ratio of the `traceidratio` samplers, 0 … 1. */
  samplerRatio: number;
  /** OTEL_BSP_SCHEDULE_DELAY: how long finished spans wait to be sent in one batch (5 s). */
  exportDelayMs: number;
}

export type SpanValue = string | number | boolean;
export type SpanAttributes = Readonly<Record<string, SpanValue>>;

/** One gateway's tracer: wraps its listener, and ends with it. */
export interface Tracing {
  /** The proxy listener with one server span per request around it. */
  traceRequests(listener: RequestListener): RequestListener;
  /** Sends what is left and stops. */
  shutdown(): Promise<void>;
}

/** What the call sites use; implemented by sdk.ts, present only while some Tracing runs. */
export interface SpanHooks {
  span<T>(name: string, fn: () => Promise<T>, attributes: SpanAttributes | undefined, client: boolean): Promise<T>;
  tag(key: string, value: SpanValue): void;
  upstreamStart(key: object, headers: IncomingHttpHeaders, method: string, upstream: URL, path: string): void;
  upstreamEnd(key: object, status: number | null, error: unknown): void;
}

export interface TracingEvents {
  /** An export failed (collector down, refused, timed out); the spans of that batch are dropped. */
  exportFailed?(err: unknown): void;
}
