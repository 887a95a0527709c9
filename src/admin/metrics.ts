// One Prometheus registry with every metric the gateway exports (SPEC section 6). Labels are
// bounded: methods are folded to a fixed set and statuses to classes, never raw paths or users.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { BoundHistogram, countedOnRead, type HistogramSeries } from './bound-metrics.js';

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const STATUS_CLASSES = ['1xx', '1xx', '2xx', '3xx', '4xx', '5xx'] as const;
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const STORE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 2.5];

export function statusClass(status: number): string {
  return STATUS_CLASSES[statusClassIndex(status)] as string;
}

/** Where a status's class is in STATUS_CLASSES: anything outside 0–599 counts as 5xx. */
function statusClassIndex(status: number): number {
  const index = Math.floor(status / 100);
  return index >= 0 && index < STATUS_CLASSES.length ? index : STATUS_CLASSES.length - 1;
}

export function methodLabel(method: string): string {
  return KNOWN_METHODS.has(method) ? method : 'OTHER';
}

export type Metrics = ReturnType<typeof createMetrics>;

/** Series bound once per status class, kept by the class's index: nothing built per observation. */
type ByStatusClass = (HistogramSeries | undefined)[];

/**
 * Returns an observer for one histogram with (method, status_class) labels that binds each label
 * pair once and reuses it (bound-metrics.ts: no label hashing, no object or key per request).
 */
export function requestObserver(histogram: BoundHistogram<'method' | 'status_class'>): (method: string, status: number, seconds: number) => void {
  const byMethod = new Map<string, ByStatusClass>();
  return (method, status, seconds) => {
    const m = methodLabel(method);
    let byClass = byMethod.get(m);
    if (byClass === undefined) byMethod.set(m, (byClass = []));
    const index = statusClassIndex(status);
    (byClass[index] ??= histogram.series(m, STATUS_CLASSES[index] as string)).observe(seconds);
  };
}

/** The same for a histogram with a status_class label alone (the upstream's answers). */
export function statusObserver(histogram: BoundHistogram<'status_class'>): (status: number, seconds: number) => void {
  const byClass: ByStatusClass = [];
  return (status, seconds) => {
    const index = statusClassIndex(status);
    (byClass[index] ??= histogram.series(STATUS_CLASSES[index] as string)).observe(seconds);
  };
}

export function createMetrics(options: { collectDefaults?: boolean } = {}) {
  const registry = new Registry();
  if (options.collectDefaults !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    // Counted on every request: bound series (bound-metrics.ts) handed to prom-client when scraped.
    sessionCacheRequests: countedOnRead({
      name: 'gateway_session_cache_requests_total',
      help: 'Session lookups answered by the in-process cache (hit) or passed to the store (miss).',
      labelNames: ['result'] as const,
      registers,
    }),
    sessionValidations: countedOnRead({
      name: 'gateway_session_validations_total',
      help: 'Session cookie validations by outcome.',
      labelNames: ['outcome'] as const,
      registers,
    }),
    // Observed on every request: recorded without prom-client's per-call work (bound-metrics.ts).
    requestDuration: new BoundHistogram({
      name: 'gateway_request_duration_seconds',
      help: 'Time from request to response, gateway routes included.',
      labelNames: ['method', 'status_class'] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    upstreamDuration: new BoundHistogram({
      name: 'gateway_upstream_request_duration_seconds',
      help: 'Time the upstream application took to answer with headers.',
      labelNames: ['status_class'] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    logins: new Counter({
      name: 'gateway_logins_total',
      help: 'Login attempts by outcome.',
      labelNames: ['outcome'] as const,
      registers,
    }),
    storeErrors: new Counter({
      name: 'gateway_store_errors_total',
      help: 'Failed operations against the session store (redis) or the user store (postgres).',
      labelNames: ['store'] as const,
      registers,
    }),
    storeOperationDuration: new Histogram({
      name: 'gateway_store_operation_duration_seconds',
      help: 'Latency of session lookups in Redis and user lookups in PostgreSQL.',
      labelNames: ['store', 'operation'] as const,
      buckets: STORE_BUCKETS,
      registers,
    }),
    sessionCacheEntries: new Gauge({
      name: 'gateway_session_cache_entries',
      help: 'Sessions currently held in the in-process cache.',
      registers,
    }),
    sessionCacheInvalidations: new Counter({
      name: 'gateway_session_cache_invalidations_total',
      help: 'Invalidations received: one session (session) or a full flush after the channel dropped (reset).',
      labelNames: ['kind'] as const,
      registers,
    }),
    mfaVerifications: new Counter({
      name: 'gateway_mfa_verifications_total',
      help: 'Second-step codes checked (sign-in, step-up and enrolment), by method (totp, webauthn, recovery) and outcome (success, failure, replayed, throttled, error).',
      labelNames: ['method', 'outcome'] as const,
      registers,
    }),
    websocketConnections: new Gauge({
      name: 'gateway_websocket_connections',
      help: 'Proxied WebSockets currently open.',
      registers,
    }),
    tokenValidations: new Counter({
      name: 'gateway_token_validations_total',
      help: 'API token checks (Bearer, or a token as the Basic password) by outcome: valid, invalid, expired, revoked, disabled (user unknown or disabled).',
      labelNames: ['outcome'] as const,
      registers,
    }),
    configReloads: new Counter({
      name: 'gateway_config_reloads_total',
      help: 'SIGHUP reloads of what lives in files: applied (success) or refused with the old configuration kept (failure).',
      labelNames: ['outcome'] as const,
      registers,
    }),
    websocketCloses: new Counter({
      name: 'gateway_websocket_closes_total',
      help: 'Proxied WebSockets closed, by reason: client, upstream, session_ended, store_unavailable, shutdown, unresponsive, protocol_error.',
      labelNames: ['reason'] as const,
      registers,
    }),
  };
}
