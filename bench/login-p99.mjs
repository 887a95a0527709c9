// Proxied p99 while argon2id sign-ins run (issue 13 item 4): does a login burst raise the tail
// latency of proxied requests, and do GATEWAY_HASH_THREAD_NICE and GATEWAY_HASH_THREAD_IDLE keep it down?
//
// Starts (all on 127.0.0.1, stopped by PID at the end) Redis, nginx `return 200` as the upstream
// and one gateway per priority of the hashing threads (a nice value, `+idle` for SCHED_IDLE), same build (dist/, `npm run build` first), each with its demo
// user (no DATABASE_URL: one generated account, argon2id m=19 MiB t=2). Then, in interleaved
// rounds (the order of the gateways rotates each round):
//   - paced wrk (bench/targets/paced.lua: 32 connections, ~10 ms pause between requests) on a
//     proxied path with a valid session, alone;
//   - the same while real sign-ins (POST /_auth/login, right password) are sent open-loop at
//     LOGINS_PER_S, each timed to its answer.
// Before each pair it waits until the machine is idle (BENCH_IDLE_MIN of the CPU, 0.8; at most
// BENCH_IDLE_WAIT_S, 300 s), since other work may share it.
// Beside every window a probe process whose own pool threads have the same priority times
// dns.lookup('localhost') and fs.stat every 10 ms: the pool's other users, at that priority.
//
// With BENCH_LOGINS_TO=same,other each priority runs twice: sign-ins sent to the gateway under
// load (same), or to a second gateway on the same machine, Redis and secret (other), which
// separates what the sign-ins cost the loaded gateway's event loop from what they cost the machine.
//
//   npm run build && node bench/login-p99.mjs
//   BENCH_NICES=0,10,19,19+idle BENCH_ROUNDS=5 BENCH_DURATION=8s LOGINS_PER_S=20 node bench/login-p99.mjs
//   BENCH_NICES=19+idle BENCH_LOGINS_TO=same,other node bench/login-p99.mjs
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

// Before any server starts: without wrk the run would stop half-way and leave them running.
if (spawnSync('wrk', ['--version']).error) {
  console.error('wrk not found: install Debian\'s wrk (apt-get install -y wrk)');
  process.exit(1);
}

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const env = process.env;
/** Each a nice value, and `+idle` for SCHED_IDLE on top (GATEWAY_HASH_THREAD_IDLE=true, the default). */
const PRIORITIES = (env.BENCH_NICES ?? '0,19,19+idle').split(',').map((v) => ({ label: v, nice: Number(v.replace('+idle', '')), idle: v.endsWith('+idle') }));
const ROUNDS = Number(env.BENCH_ROUNDS ?? 5);
const DURATION = env.BENCH_DURATION ?? '8s';
const LOGINS_PER_S = Number(env.LOGINS_PER_S ?? 20);
const LOGINS_TO = (env.BENCH_LOGINS_TO ?? 'same').split(',');
if (LOGINS_TO.some((to) => to !== 'same' && to !== 'other')) throw new Error('BENCH_LOGINS_TO: same, other or both');
const IDLE_MIN = Number(env.BENCH_IDLE_MIN ?? 0.8);
const IDLE_WAIT_S = Number(env.BENCH_IDLE_WAIT_S ?? 300);
const SECRET = 'bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
const work = mkdtempSync(join(tmpdir(), 'sgw-login-p99-'));
const processes = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...args) => console.error('[login-p99]', ...args);
// A window whose wrk output could not be read counts as missing (NaN would break the sort).
const median = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const pct = (xs, p) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const f = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function start(name, command, args, extraEnv = {}) {
  const child = spawn(command, args, { env: { ...env, ...extraEnv }, stdio: ['ignore', 'ignore', 'pipe'] });
  const entry = { name, pid: child.pid, stderr: '' };
  child.stderr.on('data', (d) => (entry.stderr += d.toString()));
  processes.push(entry);
  return entry;
}

async function stopAll() {
  for (const p of processes.reverse()) {
    try {
      process.kill(p.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  await sleep(500);
  for (const p of processes) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

async function waitHttp(url, ms = 15_000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try {
      await fetch(url);
      return;
    } catch {
      await sleep(100);
    }
  }
  throw new Error(`${url} did not answer`);
}

function parseLatency(text, p) {
  const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s)`, 'm').exec(text);
  if (!m) return NaN;
  return Number(m[1]) * { us: 0.001, ms: 1, s: 1000 }[m[2]];
}

/** Share of CPU time idle over the next second (/proc/stat, all cores). */
async function idleShare() {
  const read = () => readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const a = read();
  await sleep(1000);
  const b = read();
  const d = b.map((x, i) => x - a[i]);
  return (d[3] + d[4]) / d.reduce((x, y) => x + y, 0);
}

/**
 * The machine is shared: before each pair of windows wait (up to IDLE_WAIT_S) until it is
 * mostly idle, so another process's load burst does not land in one window of a pair only.
 */
async function waitIdle() {
  const until = Date.now() + IDLE_WAIT_S * 1000;
  let idle = await idleShare();
  while (idle < IDLE_MIN && Date.now() < until) idle = await idleShare();
  return idle;
}

/** Paced wrk on the gateway; p50/p99 in ms. */
function wrk(url, cookie, duration = DURATION) {
  const args = ['-t1', '-c32', `-d${duration}`, '--latency', '-H', `cookie: ${cookie}`, '-s', join(here, 'targets', 'paced.lua'), url];
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`wrk exited ${code}`));
      resolve({
        p50: parseLatency(out, 50),
        p99: parseLatency(out, 99),
        requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? 0),
        non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
      });
    });
  });
}

// The probe: a process whose pool threads get the variant's priority, timing the pool's other users.
const PROBE = `
import { lookup } from 'node:dns/promises';
import { stat } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
const { lowerPoolThreadPriority } = await import(process.argv[1]);
await lowerPoolThreadPriority(JSON.parse(process.argv[2]));
const dns = [], fs = [];
const until = performance.now() + Number(process.argv[3]);
while (performance.now() < until) {
  let t = performance.now(); await lookup('localhost'); dns.push(performance.now() - t);
  t = performance.now(); await stat('/'); fs.push(performance.now() - t);
  await new Promise((r) => setTimeout(r, 10));
}
process.stdout.write(JSON.stringify({ dns, fs }));
`;
function probe(priority, ms) {
  return new Promise((resolve) => {
    const child = spawn('node', ['--input-type=module', '-e', PROBE, join(root, 'dist', 'users', 'hash-threads.js'), JSON.stringify({ nice: priority.nice, idle: priority.idle }), String(ms)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('exit', () => resolve(JSON.parse(out || '{"dns":[],"fs":[]}')));
  });
}

/** Open-loop sign-ins at `perSecond` until `stop()`; resolves with latencies (ms) and statuses. */
function loginLoad(port, password, perSecond) {
  const latencies = [];
  const statuses = {};
  const pending = new Set();
  let n = 0;
  const send = async () => {
    // Each sign-in from its own client address (the gateway trusts 127.0.0.1 as a proxy here): 20
    // people signing in, not one address, which the gateway holds to 2 sign-ins in flight.
    n++;
    const client = `10.9.${(n >> 8) & 255}.${n & 255}`;
    const t0 = performance.now();
    try {
      const res = await fetch(`http://127.0.0.1:${port}/_auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': client }, body: JSON.stringify({ username: 'demo', password }) });
      await res.arrayBuffer();
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      if (res.status === 200) latencies.push(performance.now() - t0);
    } catch {
      statuses.error = (statuses.error ?? 0) + 1;
    }
  };
  const timer = setInterval(() => {
    const p = send();
    pending.add(p);
    void p.finally(() => pending.delete(p));
  }, 1000 / perSecond);
  return async () => {
    clearInterval(timer);
    await Promise.all(pending);
    return { latencies, statuses };
  };
}

async function main() {
  const redisPort = await freePort();
  start('redis', 'redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', work]);
  const upPort = await freePort();
  chmodSync(work, 0o755);
  writeFileSync(
    join(work, 'nginx.conf'),
    `daemon off; worker_processes 1; pid ${work}/nginx.pid; error_log ${work}/nginx-error.log warn;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path ${work}; proxy_temp_path ${work}; fastcgi_temp_path ${work}; uwsgi_temp_path ${work}; scgi_temp_path ${work};
  server { listen 127.0.0.1:${upPort}; location / { return 200 "ok"; } } }`,
  );
  start('nginx', 'nginx', ['-c', join(work, 'nginx.conf'), '-p', work]);
  const upstream = `http://127.0.0.1:${upPort}`;
  await waitHttp(upstream);

  const startGateway = async (name, priority) => {
    const port = await freePort();
    const gw = start(name, 'node', [join(root, 'dist', 'cli.js'), 'serve'], {
      GATEWAY_HOST: '127.0.0.1', GATEWAY_PORT: String(port), GATEWAY_ADMIN_HOST: '127.0.0.1', GATEWAY_ADMIN_PORT: '0',
      GATEWAY_UPSTREAM: upstream, REDIS_URL: `redis://127.0.0.1:${redisPort}`, GATEWAY_SESSION_SECRET: SECRET, GATEWAY_COOKIE_SECURE: 'false',
      GATEWAY_HASH_THREAD_NICE: String(priority.nice), GATEWAY_HASH_THREAD_IDLE: String(priority.idle), GATEWAY_TRUSTED_PROXIES: '127.0.0.1', GATEWAY_LOGIN_MAX_ATTEMPTS: '1000000', GATEWAY_LOGIN_MAX_ATTEMPTS_PER_IP: '1000000',
    });
    await waitHttp(`http://127.0.0.1:${port}/_auth/login`);
    // Each gateway makes its own demo account (same name, its own password).
    const password = /password \(shown once\):\s+(\S+)/.exec(gw.stderr)?.[1];
    if (!password) throw new Error(`no demo password from ${name}`);
    return { port, gw, password };
  };
  const gateways = [];
  for (const priority of PRIORITIES) {
    for (const to of LOGINS_TO) {
      const g = { priority, to, label: LOGINS_TO.length > 1 ? `${priority.label}, sign-ins to ${to === 'same' ? 'it' : 'another replica'}` : priority.label, ...(await startGateway(`gateway-${priority.label}-${to}`, priority)) };
      const signIns = to === 'other' ? await startGateway(`gateway-${priority.label}-sign-ins`, priority) : g;
      g.loginPort = signIns.port;
      g.loginPassword = signIns.password;
      gateways.push(g);
    }
  }
  for (const g of gateways) {
    const res = await fetch(`http://127.0.0.1:${g.port}/_auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'demo', password: g.password }) });
    g.cookie = res.headers.getSetCookie().find((c) => c.startsWith('sgw_session='))?.split(';')[0];
    if (res.status !== 200 || !g.cookie) throw new Error(`login failed: ${res.status}`);
    g.rounds = [];
  }

  // Warm-up, not recorded: JIT, connection pools and the first hashes out of the way.
  for (const g of gateways) {
    const stop = loginLoad(g.loginPort, g.loginPassword, LOGINS_PER_S);
    await wrk(`http://127.0.0.1:${g.port}/`, g.cookie, '4s');
    await stop();
  }

  const windowMs = Number(/^(\d+)s$/.exec(DURATION)?.[1] ?? 8) * 1000;
  for (let round = 1; round <= ROUNDS; round++) {
    const order = gateways.map((_, i) => gateways[(i + round - 1) % gateways.length]);
    for (const g of order) {
      const url = `http://127.0.0.1:${g.port}/`;
      const idle = await waitIdle();
      const probeQuiet = probe(g.priority, windowMs - 500);
      const quiet = await wrk(url, g.cookie);
      const quietProbe = await probeQuiet;
      const stop = loginLoad(g.loginPort, g.loginPassword, LOGINS_PER_S);
      const probeBusy = probe(g.priority, windowMs - 500);
      const busy = await wrk(url, g.cookie);
      const logins = await stop();
      const busyProbe = await probeBusy;
      const r = { quiet, busy, logins, quietProbe, busyProbe, ratio: busy.p99 / quiet.p99, idle };
      g.rounds.push(r);
      log(`round ${round} ${g.label}: p99 ${f(quiet.p99)} → ${f(busy.p99)} ms (×${f(r.ratio)}), logins ${logins.latencies.length} p50 ${f(pct(logins.latencies, 50), 0)} p99 ${f(pct(logins.latencies, 99), 0)} ms ${JSON.stringify(logins.statuses)}, non2xx ${quiet.non2xx}/${busy.non2xx}, idle before ${(idle * 100).toFixed(0)} %, load ${loadavg()[0].toFixed(1)}`);
    }
  }

  const out = [];
  out.push(`Machine: ${cpus().length} × ${cpus()[0].model}, Node ${process.version}, ${execFileSync('uname', ['-sr']).toString().trim()}; ${ROUNDS} rounds, ${DURATION} windows, ${LOGINS_PER_S} sign-ins/s (open loop)`);
  out.push('');
  out.push('| hashing threads (nice, +idle: SCHED_IDLE) | proxied p99 alone (median) | with sign-ins (median) | ratio, median of rounds | per-round ratios | sign-in p50 / p99 ms (all rounds) | sign-ins answered | dns.lookup p99 alone / with (ms) | fs.stat p99 alone / with (ms) |');
  out.push('| ---: | ---: | ---: | ---: | --- | ---: | --- | ---: | ---: |');
  for (const g of gateways) {
    const all = g.rounds.flatMap((r) => r.logins.latencies);
    const statuses = {};
    for (const r of g.rounds) for (const [k, v] of Object.entries(r.logins.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
    const probeP99 = (key, which) => median(g.rounds.map((r) => pct(r[which][key], 99)));
    out.push(`| ${g.label} | ${f(median(g.rounds.map((r) => r.quiet.p99)))} ms | ${f(median(g.rounds.map((r) => r.busy.p99)))} ms | **${f(median(g.rounds.map((r) => r.ratio)))}** | ${g.rounds.map((r) => f(r.ratio)).join(', ')} | ${f(pct(all, 50), 0)} / ${f(pct(all, 99), 0)} | ${Object.entries(statuses).map(([k, v]) => `${v} × ${k}`).join(', ')} | ${f(probeP99('dns', 'quietProbe'))} / ${f(probeP99('dns', 'busyProbe'))} | ${f(probeP99('fs', 'quietProbe'))} / ${f(probeP99('fs', 'busyProbe'))} |`);
  }
  console.log(out.join('\n'));
}

// Ctrl-C or a kill still stops everything this script started.
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => void stopAll().then(() => process.exit(130)));

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(stopAll);
