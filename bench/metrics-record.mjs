// CPU of recording one proxied request's metrics: two latency observations (request, upstream) and
// two counter increments (session cache hit, validation outcome), with prom-client's own children
// bound by .labels() against the gateway's bound series (src/admin/bound-metrics.ts). In process,
// interleaved, median of 9 rounds of METRICS_RECORD_N requests each.
//
//   npm run build && node bench/metrics-record.mjs      # METRICS_RECORD_N=1000000
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const { Counter, Histogram, Registry } = await import(pathToFileURL(join(root, 'node_modules/prom-client/index.js')).href);
const { BoundHistogram, countedOnRead } = await import(pathToFileURL(join(root, 'dist/admin/bound-metrics.js')).href);
const N = Number(process.env.METRICS_RECORD_N ?? 1_000_000);
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

function stock() {
  const registers = [new Registry()];
  const request = new Histogram({ name: 'r', help: 'r', labelNames: ['method', 'status_class'], buckets: BUCKETS, registers });
  const upstream = new Histogram({ name: 'u', help: 'u', labelNames: ['status_class'], buckets: BUCKETS, registers });
  const cache = new Counter({ name: 'c', help: 'c', labelNames: ['result'], registers });
  const outcome = new Counter({ name: 'o', help: 'o', labelNames: ['outcome'], registers });
  return { request: request.labels('GET', '2xx'), upstream: upstream.labels('2xx'), hit: cache.labels('hit'), valid: outcome.labels('valid'), registry: registers[0] };
}

function bound() {
  const registers = [new Registry()];
  const request = new BoundHistogram({ name: 'r', help: 'r', labelNames: ['method', 'status_class'], buckets: BUCKETS, registers });
  const upstream = new BoundHistogram({ name: 'u', help: 'u', labelNames: ['status_class'], buckets: BUCKETS, registers });
  const cache = countedOnRead({ name: 'c', help: 'c', labelNames: ['result'], registers });
  const outcome = countedOnRead({ name: 'o', help: 'o', labelNames: ['outcome'], registers });
  return { request: request.series('GET', '2xx'), upstream: upstream.series('2xx'), hit: cache.series('hit'), valid: outcome.series('valid'), registry: registers[0] };
}

/** ns per request: what the proxied path records for one request, latencies spread over the buckets. */
function time(m) {
  const started = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    m.hit.inc();
    m.valid.inc();
    m.upstream.observe((i % 997) / 20_000);
    m.request.observe((i % 997) / 19_000);
  }
  return Number(process.hrtime.bigint() - started) / N;
}

const kinds = { 'prom-client, children bound with .labels()': stock(), 'bound series (bound-metrics.ts)': bound() };
const times = Object.fromEntries(Object.keys(kinds).map((k) => [k, []]));
for (let round = 0; round < 10; round++) {
  for (const [kind, m] of Object.entries(kinds)) {
    const ns = time(m);
    if (round > 0) times[kind].push(ns); // the first round warms up
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const [kind, xs] of Object.entries(times)) console.log(`${kind}: ${median(xs).toFixed(0)} ns per request (rounds ${xs.map((x) => x.toFixed(0)).join(', ')})`);
const [a, b] = Object.values(times).map(median);
console.log(`ratio ${(b / a).toFixed(3)}; saved ${(a - b).toFixed(0)} ns per request`);
// Both scrape the same counts (test/unit/bound-metrics.test.ts checks the exposition itself).
const counts = await Promise.all(Object.values(kinds).map(async (m) => (await m.registry.metrics()).match(/^r_count\{.*\} (\d+)$/m)?.[1]));
if (counts[0] !== counts[1]) throw new Error(`the two recorded different counts: ${counts.join(' vs ')}`);
