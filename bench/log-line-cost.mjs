// What one access-log line costs, taken apart: CPU per line (process.cpuUsage(), every thread, so
// an asynchronous destination's thread-pool writes count) for the steps the gateway's line goes
// through, beside fastify's own per-request logger. Each step is measured in many short
// repetitions, interleaved, and the minimum and median are reported: on a busy shared machine the
// minimum is the nearest to the step's own cost. Standard output must be /dev/null (or a file):
//
//   npm run build && node bench/log-line-cost.mjs > /dev/null
//   LINE_COST_BASELINE=/path/to/other/dist node bench/log-line-cost.mjs > /dev/null   # before/after
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Fastify from 'fastify';
import pino from 'pino';

const here = dirname(fileURLToPath(import.meta.url));
const LINES = Number(process.env.LINE_COST_LINES ?? 20_000);
const REPS = Number(process.env.LINE_COST_REPS ?? 15);
const current = await import(pathToFileURL(join(here, '..', 'dist', 'logger.js')).href);
const baselineDir = process.env.LINE_COST_BASELINE ? resolve(process.env.LINE_COST_BASELINE) : null;
const baseline = baselineDir ? await import(pathToFileURL(join(baselineDir, 'logger.js')).href) : null;

const fields = (i) => ({ method: 'GET', path: '/app/page', status: 200, ms: 1.2, user: 'alice@corp', ip: '127.0.0.1', i });
const noop = { write: () => undefined };
const asyncStdout = () => pino.destination({ dest: 1, sync: false });
const syncStdout = () => pino.destination({ dest: 1, sync: true });
const fastifyLog = Fastify({ logger: true }).log; // fastify's own pino: default stdout destination, req/res/err serializers
// The gateway's options before this change: pino's isoTime; after: the same bytes, formatted once per ms.
const oldOptions = { ...current.loggerOptions('info'), timestamp: pino.stdTimeFunctions.isoTime };

const steps = [
  ['fastify: child({reqId}, {}) + info, async stdout (stock fastify, one line)', () => {
    const log = fastifyLog;
    return (i) => log.child({ reqId: `req-${i}` }, {}).info(fields(i), 'request');
  }],
  ['gateway before: child({reqId}, {}) only', () => {
    const log = pino(oldOptions, noop);
    return (i) => log.child({ reqId: `req-${i}` }, {});
  }],
  ['gateway before: child + info, to a no-op stream (format only)', () => {
    const log = pino(oldOptions, noop);
    return (i) => log.child({ reqId: `req-${i}` }, {}).info(fields(i), 'request');
  }],
  ['gateway before: child + info, isoTime → cached, no-op stream', () => {
    const log = pino(current.loggerOptions('info'), noop);
    return (i) => log.child({ reqId: `req-${i}` }, {}).info(fields(i), 'request');
  }],
  ['gateway before: child + info, redaction off, no-op stream', () => {
    const log = pino({ ...oldOptions, redact: undefined }, noop);
    return (i) => log.child({ reqId: `req-${i}` }, {}).info(fields(i), 'request');
  }],
  ['gateway before: child + info, async stdout (as deployed before)', () => {
    const log = baseline ? baseline.createLogger('info') : pino(oldOptions, asyncStdout());
    return (i) => log.child({ reqId: `req-${i}` }, {}).info(fields(i), 'request');
  }],
  ['gateway before: child + info, sync stdout', () => {
    const log = pino(oldOptions, syncStdout());
    return (i) => log.child({ reqId: `req-${i}` }, {}).info(fields(i), 'request');
  }],
  ['gateway after: request logger + access(), no-op stream (format only)', () => {
    const log = current.createLogger('info', noop);
    return (i) => current.requestLoggerFactory(log, { reqId: `req-${i}` }, {}).access({ reqId: `req-${i}`, ...fields(i) });
  }],
  ['gateway after: request logger + access(), sync stdout (as deployed now)', () => {
    const log = current.createLogger('info');
    return (i) => current.requestLoggerFactory(log, { reqId: `req-${i}` }, {}).access({ reqId: `req-${i}`, ...fields(i) });
  }],
  ['write(2) alone: one 200-byte line to stdout, sync', () => {
    const dest = syncStdout();
    const line = `${'x'.repeat(199)}\n`;
    return () => dest.write(line);
  }],
];

const prepared = steps.map(([name, make]) => ({ name, run: make(), samples: [] }));
const pause = () => new Promise((r) => setImmediate(r));
for (let rep = 0; rep < REPS; rep++) {
  for (const step of prepared) {
    const t0 = process.cpuUsage();
    for (let i = 0; i < LINES; i++) {
      step.run(i);
      // Give an asynchronous destination its turn, as the event loop does between requests.
      if (i % 32 === 31) await pause();
    }
    await new Promise((r) => setTimeout(r, 20));
    const used = process.cpuUsage(t0);
    step.samples.push((used.user + used.system) / LINES);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const out = [`| step (${LINES} lines × ${REPS} reps, interleaved) | min µs/line | median µs/line |`, '| --- | ---: | ---: |'];
for (const s of prepared) out.push(`| ${s.name} | ${Math.min(...s.samples).toFixed(2)} | ${median(s.samples).toFixed(2)} |`);
process.stderr.write(`${out.join('\n')}\n`);
