// What tracing costs per request, in process (no network but the export itself, steadier than a
// load test on a shared machine). A "request" is what the gateway's hot path does with tracing:
// the server span around the listener, the session check span with its two attributes, the
// upstream client span with its traceparent injected into the forwarded headers. Spans are batched
// and exported over OTLP/HTTP to a receiver in a child process (its CPU is not counted; the
// exporter's serialisation and sending are). Rounds alternate off and on; CPU from process.cpuUsage.
//
//   npm run build && node bench/tracing-cost.mjs          # TRACING_COST_ROUNDS=7 TRACING_COST_REQUESTS=20000
//   TRACING_COST_SAMPLER=parentbased_traceidratio TRACING_COST_RATIO=0.1 node bench/tracing-cost.mjs
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { endUpstream, startTracing, tagSpan, traced, traceUpstream } from '../dist/tracing/index.js';

const ROUNDS = Number(process.env.TRACING_COST_ROUNDS ?? 7);
const REQUESTS = Number(process.env.TRACING_COST_REQUESTS ?? 20_000);
const CONCURRENCY = 50;
const SAMPLER = process.env.TRACING_COST_SAMPLER ?? 'parentbased_always_on';
const RATIO = Number(process.env.TRACING_COST_RATIO ?? 1);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

// The receiver: a child process that reads every export and answers 200.
const sink = spawn(process.execPath, ['-e', `
  const s = require('node:http').createServer((q, r) => { q.resume(); q.on('end', () => r.writeHead(200).end('{}')); });
  s.listen(0, '127.0.0.1', () => console.log(s.address().port));
`], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise((resolve) => sink.stdout.once('data', (d) => resolve(Number(String(d).trim()))));

const UPSTREAM = new URL('http://127.0.0.1:8080');
/** One request's worth of the gateway's traced calls. */
const handler = async (req, res) => {
  await traced('session check', async () => {
    tagSpan('gateway.session.cache', 'hit');
    tagSpan('gateway.session.outcome', 'valid');
  });
  const headers = { host: 'app.example.com', 'x-forwarded-user': 'alice', accept: '*/*' };
  traceUpstream(req, headers, 'GET', UPSTREAM, '/reports/1');
  endUpstream(req, 200);
  res.statusCode = 200;
  res.writableFinished = true;
  res.emit('close');
};

async function run(listener) {
  let next = 0;
  const worker = async () => {
    while (next < REQUESTS) {
      next += 1;
      const req = { method: 'GET', url: '/reports/1?x=1', headers: { host: 'app.example.com', cookie: 'sgw_session=abc' }, socket: {} };
      const res = new EventEmitter();
      await listener(req, res);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

/** Off: the listener as the gateway installs it without tracing (the hooks are one null check). */
async function roundOff() {
  const before = cpuUs();
  await run(handler);
  return (cpuUs() - before) / REQUESTS;
}

/** On: every request sampled (by default), exported in batches, flushed at the end. */
async function roundOn() {
  const tracing = await startTracing({ url: `http://127.0.0.1:${port}/v1/traces`, serviceName: 'bench', sampler: SAMPLER, samplerRatio: RATIO, exportDelayMs: 5_000 });
  const listener = tracing.traceRequests(handler);
  const before = cpuUs();
  await run(listener);
  await tracing.shutdown();
  return (cpuUs() - before) / REQUESTS;
}

// The null check alone: traced(name, fn) against fn() with tracing off.
async function nullCheck() {
  const fn = async () => 1;
  const n = 2_000_000;
  let t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn();
  const bare = Number(process.hrtime.bigint() - t0) / n;
  t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await traced('x', fn);
  const wrapped = Number(process.hrtime.bigint() - t0) / n;
  return { bare, wrapped };
}

await roundOff();
await roundOn(); // warm-up: JIT, the exporter's connection
const off = [];
const on = [];
for (let r = 0; r < ROUNDS; r++) {
  off.push(await roundOff());
  on.push(await roundOn());
  console.error(`[tracing-cost] round ${r + 1}: off ${off.at(-1).toFixed(1)} µs, on ${on.at(-1).toFixed(1)} µs`);
}
const checks = [];
for (let r = 0; r < 5; r++) checks.push(await nullCheck());
const diffs = on.map((x, i) => x - off[i]);
console.log(`${REQUESTS} requests per round, ${CONCURRENCY} in flight, ${ROUNDS} rounds (off and on alternating), sampler ${SAMPLER} (${RATIO}), Node ${process.version}.

| CPU µs per request | median | ${off.map((_, i) => `r${i + 1}`).join(' | ')} |
| --- | ---: | ${off.map(() => '---:').join(' | ')} |
| off (the hooks' null checks) | ${median(off).toFixed(1)} | ${off.map((x) => x.toFixed(1)).join(' | ')} |
| on (3 spans: server, session check, upstream) | ${median(on).toFixed(1)} | ${on.map((x) => x.toFixed(1)).join(' | ')} |
| on − off | ${median(diffs).toFixed(1)} | ${diffs.map((x) => x.toFixed(1)).join(' | ')} |

Null check: \`await traced(name, fn)\` ${median(checks.map((c) => c.wrapped)).toFixed(1)} ns against \`await fn()\` ${median(checks.map((c) => c.bare)).toFixed(1)} ns per call (median of 5 × 2,000,000).`);
sink.kill();
