// A real user's sign-in latency while a few addresses flood the login — a measuring aid, not a test
// (test/regressions/hash-queue-flood.test.ts asserts the outcomes without timing).
//
// It starts nothing: point it at a gateway that is already running on a loopback address (the flood
// comes from 127.0.0.2 … 127.0.0.<1+FLOOD_ADDRESSES>, which are all this host on Linux).
//
//   GATEWAY_URL=http://127.0.0.1:8000 USER_NAME=alice USER_PASSWORD=… node bench/login-flood.mjs
//
// Environment:
//   GATEWAY_URL        base URL of the running gateway (required, loopback)
//   USER_NAME, USER_PASSWORD  a real account that signs in over and over from 127.0.0.1 (required)
//   FLOOD_ADDRESSES    flooding addresses (default 4), FLOOD_PARALLEL attempts per address (default 50)
//   FLOOD_MODE         `burst` (default): each real sign-in is sent together with one burst of
//                      FLOOD_ADDRESSES × FLOOD_PARALLEL attempts, and the next round starts when all
//                      have been answered (the shape reported in issue 17); `sustained`: that many
//                      attempts stay in flight, each answer replaced by the next, while the real
//                      sign-ins run one after the other
//   LOGINS             real sign-ins measured, one after the other (default 60), WARMUP first (default 3)
//   AUTH_PREFIX        GATEWAY_AUTH_PREFIX of that gateway (default /_auth)
//
// For the worst case start the gateway with GATEWAY_LOGIN_MAX_ATTEMPTS=1000000 and
// GATEWAY_LOGIN_MAX_ATTEMPTS_PER_IP=1000000: otherwise the throttle answers the flood with 429
// after 50 attempts per address and there is little left to measure. Run it twice, with
// FLOOD_ADDRESSES=0 first, for the baseline.
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { URL } from 'node:url';

const env = process.env;
const out = (line) => process.stdout.write(`${line}\n`);
const fail = (message) => {
  process.stderr.write(`login-flood: ${message}\n`);
  process.exit(2);
};

const base = env.GATEWAY_URL;
if (!base || !env.USER_NAME || !env.USER_PASSWORD) fail('set GATEWAY_URL, USER_NAME and USER_PASSWORD (see the top of this file)');
const intEnv = (name, fallback) => {
  const value = Number(env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 0) fail(`${name} must be a non-negative integer`);
  return value;
};
const floodAddresses = intEnv('FLOOD_ADDRESSES', 4);
const floodParallel = intEnv('FLOOD_PARALLEL', 50);
const logins = intEnv('LOGINS', 60);
const warmup = intEnv('WARMUP', 3);
const mode = env.FLOOD_MODE ?? 'burst';
if (mode !== 'burst' && mode !== 'sustained') fail('FLOOD_MODE must be burst or sustained');
const loginUrl = new URL(`${(env.AUTH_PREFIX ?? '/_auth').replace(/\/$/, '')}/login`, base);

/** One JSON login from `localAddress`; resolves with the status and the milliseconds it took. */
function attempt(localAddress, body) {
  const payload = JSON.stringify(body);
  return new Promise((resolve) => {
    const started = performance.now();
    const req = request(
      loginUrl,
      { method: 'POST', agent: false, localAddress, headers: { 'content-type': 'application/json', accept: 'application/json', 'content-length': Buffer.byteLength(payload) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started }));
        res.on('error', () => resolve({ status: 0, ms: performance.now() - started }));
      },
    );
    req.on('error', () => resolve({ status: 0, ms: performance.now() - started }));
    req.end(payload);
  });
}

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];

const floodStatuses = new Map();
const count = (map, status) => map.set(status, (map.get(status) ?? 0) + 1);
const floodAttempt = (address) => attempt(address, { username: `flood-${randomBytes(6).toString('hex')}`, password: 'wrong' });
const realLogin = () => attempt('127.0.0.1', { username: env.USER_NAME, password: env.USER_PASSWORD });
const addresses = Array.from({ length: floodAddresses }, (_, a) => `127.0.0.${2 + a}`);

let flooding = true;
async function floodWorker(address) {
  while (flooding) {
    const { status } = await floodAttempt(address);
    count(floodStatuses, status);
    // A refusal comes back at once; without a pause the worker would only measure its own loop.
    if (status === 503 || status === 429) await new Promise((r) => setTimeout(r, 5));
  }
}
const workers = [];
if (mode === 'sustained') {
  for (const address of addresses) for (let p = 0; p < floodParallel; p++) workers.push(floodWorker(address));
  // Let the flood reach its steady state before measuring.
  if (workers.length > 0) await new Promise((r) => setTimeout(r, 1_000));
}

const samples = [];
const realStatuses = new Map();
for (let i = 0; i < warmup + logins; i++) {
  const burst = mode === 'burst' ? addresses.flatMap((address) => Array.from({ length: floodParallel }, () => floodAttempt(address))) : [];
  const { status, ms } = await realLogin();
  for (const answer of await Promise.all(burst)) count(floodStatuses, answer.status);
  if (i < warmup) continue;
  samples.push(ms);
  count(realStatuses, status);
}
flooding = false;
await Promise.all(workers);

samples.sort((a, b) => a - b);
out(`login flood (${mode}): ${floodAddresses} address(es) × ${floodParallel} attempts against ${loginUrl}; ${logins} real sign-ins from 127.0.0.1`);
out(`real sign-ins: statuses ${JSON.stringify(Object.fromEntries(realStatuses))}; p50 ${quantile(samples, 0.5).toFixed(0)} ms, p90 ${quantile(samples, 0.9).toFixed(0)} ms, p99 ${quantile(samples, 0.99).toFixed(0)} ms, max ${samples[samples.length - 1].toFixed(0)} ms`);
if (floodAddresses > 0) out(`flood answers: ${JSON.stringify(Object.fromEntries(floodStatuses))}`);
