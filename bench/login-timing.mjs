// Login timing by failure class — a measuring aid for a person, not a test.
//
// The gateway answers an unknown user, a wrong password and a disabled account with the same 401
// and the same body (test/regressions/user-enumeration.test.ts pins that). Whether they also take
// the same TIME depends on hardware, load and the stored hashes, so it is measured here and judged
// by a person: the medians of the classes should be within noise of each other.
//
// It starts nothing: point it at a gateway that is already running.
//
//   GATEWAY_URL=http://127.0.0.1:8000 \
//   KNOWN_USER=alice DISABLED_USER=dora \
//   node bench/login-timing.mjs
//
// Environment:
//   GATEWAY_URL        base URL of the running gateway (required)
//   KNOWN_USER         an existing, enabled account; it is sent wrong passwords (required)
//   DISABLED_USER      an existing, disabled account (required)
//   DISABLED_PASSWORD  that account's real password, to time "disabled + right password" too (optional)
//   ATTEMPTS           attempts per class (default 30), WARMUP attempts first, not counted (default 3)
//   AUTH_PREFIX        GATEWAY_AUTH_PREFIX of that gateway (default /_auth)
//
// Every attempt is a failed login, so the gateway's throttle WILL trip (5 per user and 50 per IP in
// 15 minutes by default): run it against a test or staging gateway started with, e.g.,
// GATEWAY_LOGIN_MAX_ATTEMPTS=100000 GATEWAY_LOGIN_MAX_ATTEMPTS_PER_IP=100000, and never against
// production accounts (the known user would be locked out). The script stops at the first 429.
// Unknown users get a fresh random name per attempt. Classes are interleaved round-robin and
// requests are sequential, one connection each, so drift and load affect every class alike.
import { Buffer } from 'node:buffer';
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { URL } from 'node:url';

const env = process.env;
const out = (line) => process.stdout.write(`${line}\n`);
const fail = (message) => {
  process.stderr.write(`login-timing: ${message}\n`);
  process.exit(2);
};

const base = env.GATEWAY_URL;
const known = env.KNOWN_USER;
const disabled = env.DISABLED_USER;
if (!base || !known || !disabled) fail('set GATEWAY_URL, KNOWN_USER and DISABLED_USER (see the top of this file)');
const attempts = Number(env.ATTEMPTS ?? 30);
const warmup = Number(env.WARMUP ?? 3);
if (!Number.isInteger(attempts) || attempts < 1 || !Number.isInteger(warmup) || warmup < 0) fail('ATTEMPTS must be a positive integer, WARMUP a non-negative one');
const loginUrl = new URL(`${(env.AUTH_PREFIX ?? '/_auth').replace(/\/$/, '')}/login`, base);

const guess = () => `wrong-${randomBytes(9).toString('base64url')}`;
const classes = [
  { name: 'unknown user', body: () => ({ username: `nouser-${randomBytes(6).toString('hex')}`, password: guess() }) },
  { name: 'wrong password', body: () => ({ username: known, password: guess() }) },
  { name: 'disabled user', body: () => ({ username: disabled, password: guess() }) },
];
if (env.DISABLED_PASSWORD) classes.push({ name: 'disabled, right pw', body: () => ({ username: disabled, password: env.DISABLED_PASSWORD }) });

/** One JSON login; resolves with the status and the milliseconds until the whole answer arrived. */
function attempt(body) {
  const payload = JSON.stringify(body);
  const send = loginUrl.protocol === 'https:' ? httpsRequest : request;
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = send(
      loginUrl,
      { method: 'POST', agent: false, headers: { 'content-type': 'application/json', accept: 'application/json', 'content-length': Buffer.byteLength(payload) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

const samples = new Map(classes.map((c) => [c.name, []]));
const statuses = new Map(classes.map((c) => [c.name, new Set()]));
for (let round = 0; round < warmup + attempts; round++) {
  for (const c of classes) {
    const { status, ms } = await attempt(c.body()).catch((err) => fail(`${loginUrl}: ${err.message}`));
    if (status === 429) fail(`throttled (429) during "${c.name}": raise GATEWAY_LOGIN_MAX_ATTEMPTS and _PER_IP on this gateway, or wait for the window to end`);
    if (status >= 500) fail(`"${c.name}" answered ${status}: is the gateway healthy?`);
    if (round >= warmup) {
      samples.get(c.name).push(ms);
      statuses.get(c.name).add(status);
    }
  }
}

out(`login timing: ${attempts} attempts per class (+${warmup} warm-up) against ${loginUrl}`);
out('');
out(`${'class'.padEnd(20)} ${'status'.padEnd(8)} ${'median ms'.padStart(10)} ${'p90 ms'.padStart(10)} ${'min ms'.padStart(10)} ${'max ms'.padStart(10)}`);
const medians = [];
for (const c of classes) {
  const sorted = [...samples.get(c.name)].sort((a, b) => a - b);
  const median = quantile(sorted, 0.5);
  medians.push(median);
  const cells = [median, quantile(sorted, 0.9), sorted[0], sorted[sorted.length - 1]].map((v) => v.toFixed(1).padStart(10));
  out(`${c.name.padEnd(20)} ${[...statuses.get(c.name)].join(',').padEnd(8)} ${cells.join(' ')}`);
}
const spread = Math.max(...medians) - Math.min(...medians);
out('');
out(`largest difference between class medians: ${spread.toFixed(1)} ms (${((spread / Math.min(...medians)) * 100).toFixed(1)}% of the fastest)`);
out('Every status should be 401. Compare the spread with the p90-median gap of each class: a spread well');
out('inside that noise means the classes cannot be told apart by timing; a consistent gap means they can.');
