// Benchmark orchestrator (bench/run.sh calls it). Everything listens on 127.0.0.1, every process
// it starts is stopped by PID at the end, and every load run is bounded in time.
//
// Targets, measured side by side in interleaved rounds (medians reported):
//   a  nginx `return 200` (the upstream, directly)
//   b  nginx plain proxy_pass to it (no auth)
//   c  session-gateway, default config (access log on), valid session
//   d  session-gateway with the local cache disabled (one Redis GET per request)
//   e  express + express-session + connect-redis + http-proxy-middleware, session required
//   f  session-gateway with authentication off (GATEWAY_PUBLIC_PATHS=/)
//   g  stock fastify + @fastify/http-proxy, no auth, no logging
//   h  nginx auth_request → session-gateway /_auth/verify, protecting a static nginx location
//   i  nginx auth_request → a naive verifier (node:http, one Redis GET per request), same location
//   j  stock fastify + @fastify/http-proxy + fastify's own pino logger, one line per request
//   k  fastify + @fastify/cookie + @fastify/http-proxy + one Redis GET per request (naive peer)
//   l  session-gateway, default config but GATEWAY_ACCESS_LOG=false
//   z  session-gateway built from another checkout (BENCH_BASELINE_CLI=/path/to/dist/cli.js), default
//      config: before/after of a change in the same interleaved run. Absent without the variable.
//
// BENCH_TARGETS=a,h,i measures only those targets (and skips the paced, revocation and
// sessions-in-Redis sections, which need c and d).
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';

// Before any server starts: without wrk the run would stop half-way and leave them running.
if (spawnSync('wrk', ['--version']).error) {
  console.error('wrk not found: install Debian\'s wrk (apt-get install -y wrk)');
  process.exit(1);
}

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const env = process.env;
const ROUNDS = Number(env.BENCH_ROUNDS ?? 3);
const DURATION = env.BENCH_DURATION ?? '5s';
// Long enough for every target's JIT to settle: a fresh gateway (more code than a bare proxy) spends
// its first 10–15 s under load at up to 1.6× its steady CPU per request, a bare proxy at 1.4×.
const WARMUP = env.BENCH_WARMUP ?? '15s';
const CONNECTIONS = Number(env.BENCH_CONNECTIONS ?? 32);
const SESSIONS = Number(env.BENCH_SESSIONS ?? 1_000_000);
const SECRET = 'bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
const BASELINE_CLI = env.BENCH_BASELINE_CLI ?? null;
const ONLY = env.BENCH_TARGETS ? new Set(env.BENCH_TARGETS.split(',').map((k) => k.trim())) : null;
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
const work = mkdtempSync(join(tmpdir(), 'sgw-bench-'));
const processes = [];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const log = (...args) => console.error('[bench]', ...args);

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

function start(name, command, args, extraEnv = {}, { captureStderr = false } = {}) {
  const child = spawn(command, args, {
    env: { ...env, ...extraEnv },
    stdio: ['ignore', 'ignore', captureStderr ? 'pipe' : 'inherit'],
  });
  const entry = { name, child, pid: child.pid, stderr: '' };
  if (captureStderr) child.stderr.on('data', (d) => (entry.stderr += d.toString()));
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

function cpuTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

function rssMb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024;
}

/** Peak resident memory while the load runs (start-up work such as hashing the demo password excluded). */
function sampleRss(pid) {
  let peak = 0;
  const timer = setInterval(() => (peak = Math.max(peak, rssMb(pid))), 200);
  return () => {
    clearInterval(timer);
    return Math.max(peak, rssMb(pid));
  };
}

function parseLatency(text, pct) {
  const m = new RegExp(`^\\s+${pct}%\\s+([\\d.]+)(us|ms|s)`, 'm').exec(text);
  if (!m) return NaN;
  const unit = { us: 1, ms: 1_000, s: 1_000_000 }[m[2]];
  return Number(m[1]) * unit;
}

function wrk(url, headers, { duration = DURATION, script } = {}) {
  const args = ['-t1', `-c${CONNECTIONS}`, `-d${duration}`, '--latency'];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  if (script) args.push('-s', script);
  args.push(url);
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`wrk exited ${code}`));
      const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
      const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
      resolve({ rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0), p50: parseLatency(out, 50), p99: parseLatency(out, 99), requests, non2xx });
    });
  });
}

async function redisCalls(redis) {
  const info = await redis.info('commandstats');
  let total = 0;
  for (const [, name, calls] of info.matchAll(/cmdstat_(\w+):calls=(\d+)/g)) if (name !== 'info') total += Number(calls);
  return total;
}

async function main() {
  // --- services --------------------------------------------------------------------------
  const redisPort = await freePort();
  start('redis', 'redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', work]);
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  const redis = new Redis(redisUrl, { lazyConnect: true });
  for (let i = 0; i < 50; i++) {
    try {
      await redis.connect();
      break;
    } catch {
      await sleep(100);
    }
  }

  const [upPort, nginxProxyPort] = [await freePort(), await freePort()];
  const ports = { c: await freePort(), c2: await freePort(), d: await freePort(), e: await freePort(), f: await freePort(), g: await freePort(), h: await freePort(), i: await freePort(), j: await freePort(), k: await freePort(), l: await freePort(), ...(BASELINE_CLI ? { z: await freePort() } : {}) };
  const [nginxAuthGatewayPort, nginxAuthNaivePort] = [await freePort(), await freePort()];
  mkdirSync(join(work, 'nginx'), { recursive: true });
  mkdirSync(join(work, 'www'), { recursive: true });
  writeFileSync(join(work, 'www', 'index.html'), 'ok');
  // nginx workers run as `nobody` when started as root: they must be able to read the static file.
  chmodSync(work, 0o755);
  chmodSync(join(work, 'www'), 0o755);
  chmodSync(join(work, 'www', 'index.html'), 0o644);
  // Forward-auth (h, i): the same server block in front of each verifier. A static file, not
  // `return`: `return` answers in the rewrite phase, before auth_request (access phase) runs. wrk
  // asks for /index.html itself: `/` would be redirected internally and authorised twice.
  const authServer = (port, upstream) => `server { listen 127.0.0.1:${port}; root ${work}/www;
    location = /_verify { internal; proxy_pass http://${upstream}/_auth/verify; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_pass_request_body off; proxy_set_header Content-Length ""; proxy_set_header X-Original-URI $request_uri; proxy_set_header X-Original-Method $request_method; }
    location / { auth_request /_verify; auth_request_set $sgw_user $upstream_http_x_forwarded_user; auth_request_set $sgw_email $upstream_http_x_forwarded_email;
      auth_request_set $sgw_groups $upstream_http_x_forwarded_groups; auth_request_set $sgw_login $upstream_http_location; error_page 401 =302 $sgw_login;
      add_header X-User $sgw_user; } }`;
  writeFileSync(
    join(work, 'nginx.conf'),
    `daemon off; worker_processes 1; pid ${work}/nginx.pid; error_log ${work}/nginx-error.log warn;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path ${work}/nginx; proxy_temp_path ${work}/nginx;
  fastcgi_temp_path ${work}/nginx; uwsgi_temp_path ${work}/nginx; scgi_temp_path ${work}/nginx;
  upstream app { server 127.0.0.1:${upPort}; keepalive 64; }
  server { listen 127.0.0.1:${upPort}; location / { return 200 "ok"; } }
  server { listen 127.0.0.1:${nginxProxyPort}; location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; } }
  upstream verify_gateway { server 127.0.0.1:${ports.h}; keepalive 64; }
  upstream verify_naive { server 127.0.0.1:${ports.i}; keepalive 64; }
  ${authServer(nginxAuthGatewayPort, 'verify_gateway')}
  ${authServer(nginxAuthNaivePort, 'verify_naive')}
}`,
  );
  start('nginx', 'nginx', ['-c', join(work, 'nginx.conf'), '-p', work]);
  const upstream = `http://127.0.0.1:${upPort}`;
  await waitHttp(upstream);

  // --- targets ---------------------------------------------------------------------------
  const gatewayEnv = (port, extra = {}) => ({
    GATEWAY_HOST: '127.0.0.1', GATEWAY_PORT: String(port), GATEWAY_ADMIN_HOST: '127.0.0.1', GATEWAY_ADMIN_PORT: '0',
    GATEWAY_UPSTREAM: upstream, REDIS_URL: redisUrl, GATEWAY_SESSION_SECRET: SECRET, GATEWAY_COOKIE_SECURE: 'false', ...extra,
  });
  const cli = join(root, 'dist', 'cli.js');
  const gw = {
    c: start('gateway', 'node', [cli, 'serve'], gatewayEnv(ports.c), { captureStderr: true }),
    c2: start('gateway-replica', 'node', [cli, 'serve'], gatewayEnv(ports.c2), { captureStderr: true }),
    d: start('gateway-nocache', 'node', [cli, 'serve'], gatewayEnv(ports.d, { GATEWAY_SESSION_CACHE_SIZE: '0' }), { captureStderr: true }),
    f: start('gateway-noauth', 'node', [cli, 'serve'], gatewayEnv(ports.f, { GATEWAY_PUBLIC_PATHS: '/' }), { captureStderr: true }),
    // Forward-auth as deployed: nginx is a trusted proxy, so its X-Original-URI is read and normalised.
    h: start('gateway-verify', 'node', [cli, 'serve'], gatewayEnv(ports.h, { GATEWAY_TRUSTED_PROXIES: '127.0.0.1' }), { captureStderr: true }),
    l: start('gateway-nolog', 'node', [cli, 'serve'], gatewayEnv(ports.l, { GATEWAY_ACCESS_LOG: 'false' }), { captureStderr: true }),
    ...(BASELINE_CLI ? { z: start('gateway-baseline', 'node', [BASELINE_CLI, 'serve'], gatewayEnv(ports.z), { captureStderr: true }) } : {}),
  };
  const e = start('express-stack', 'node', [join(here, 'targets', 'express-stack.mjs')], { PORT: String(ports.e), UPSTREAM: upstream, REDIS_URL: redisUrl });
  const g = start('bare-proxy', 'node', [join(here, 'targets', 'bare-proxy.mjs')], { PORT: String(ports.g), UPSTREAM: upstream });
  const j = start('fastify-pino-line', 'node', [join(here, 'targets', 'fastify-pino-line.mjs')], { PORT: String(ports.j), UPSTREAM: upstream });
  const k = start('naive-redis-proxy', 'node', [join(here, 'targets', 'naive-redis-proxy.mjs')], { PORT: String(ports.k), UPSTREAM: upstream, REDIS_URL: redisUrl });
  const naive = start('naive-verifier', 'node', [join(here, 'targets', 'naive-verifier.mjs')], { PORT: String(ports.i), REDIS_URL: redisUrl });
  for (const port of Object.values(ports)) await waitHttp(`http://127.0.0.1:${port}/_auth/login`).catch(() => waitHttp(`http://127.0.0.1:${port}/`));

  // The gateways run without DATABASE_URL: each has one generated user; c's is used for logins.
  const password = /password \(shown once\):\s+(\S+)/.exec(gw.c.stderr)?.[1];
  const login = async (port = ports.c) => {
    const res = await fetch(`http://127.0.0.1:${port}/_auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'demo', password }) });
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('sgw_session='));
    if (res.status !== 200 || !cookie) throw new Error(`login failed: ${res.status}`);
    return cookie.split(';')[0];
  };
  const gatewayCookie = await login();
  const expressLogin = await fetch(`http://127.0.0.1:${ports.e}/login`, { method: 'POST' });
  const expressCookie = expressLogin.headers.getSetCookie()[0].split(';')[0];
  // The naive verifier finds the same cookie value under its own key, with the identity as JSON.
  await redis.set(`naive:${gatewayCookie.slice(gatewayCookie.indexOf('=') + 1)}`, JSON.stringify({ user: 'demo', email: 'demo@example.com', groups: ['staff', 'ops'] }));

  const targets = [
    { key: 'a', label: 'nginx return 200 (upstream, direct)', url: upstream, headers: {} },
    { key: 'b', label: 'nginx proxy_pass (no auth)', url: `http://127.0.0.1:${nginxProxyPort}/`, headers: {} },
    { key: 'c', label: 'session-gateway (default, valid session)', url: `http://127.0.0.1:${ports.c}/`, headers: { cookie: gatewayCookie }, pid: gw.c.pid },
    { key: 'd', label: 'session-gateway, local cache off', url: `http://127.0.0.1:${ports.d}/`, headers: { cookie: gatewayCookie }, pid: gw.d.pid },
    { key: 'e', label: 'express-session + connect-redis + hpm', url: `http://127.0.0.1:${ports.e}/`, headers: { cookie: expressCookie }, pid: e.pid },
    { key: 'f', label: 'session-gateway, auth off', url: `http://127.0.0.1:${ports.f}/`, headers: {}, pid: gw.f.pid },
    { key: 'g', label: 'fastify + @fastify/http-proxy (floor)', url: `http://127.0.0.1:${ports.g}/`, headers: {}, pid: g.pid },
    { key: 'h', label: 'nginx auth_request → gateway /_auth/verify', url: `http://127.0.0.1:${nginxAuthGatewayPort}/index.html`, headers: { cookie: gatewayCookie }, pid: gw.h.pid },
    { key: 'i', label: 'nginx auth_request → naive verifier (1 Redis GET/req)', url: `http://127.0.0.1:${nginxAuthNaivePort}/index.html`, headers: { cookie: gatewayCookie }, pid: naive.pid },
    { key: 'j', label: 'fastify + http-proxy + one pino line/req (fastify logger)', url: `http://127.0.0.1:${ports.j}/`, headers: {}, pid: j.pid },
    { key: 'k', label: 'fastify + cookie + http-proxy + 1 Redis GET/req (naive peer)', url: `http://127.0.0.1:${ports.k}/`, headers: { cookie: gatewayCookie }, pid: k.pid },
    { key: 'l', label: 'session-gateway, GATEWAY_ACCESS_LOG=false', url: `http://127.0.0.1:${ports.l}/`, headers: { cookie: gatewayCookie }, pid: gw.l.pid },
    ...(gw.z ? [{ key: 'z', label: 'session-gateway, baseline build (BENCH_BASELINE_CLI)', url: `http://127.0.0.1:${ports.z}/`, headers: { cookie: gatewayCookie }, pid: gw.z.pid }] : []),
  ].filter((t) => ONLY === null || ONLY.has(t.key));
  for (const t of targets.filter((x) => x.key === 'h' || x.key === 'i')) {
    const res = await fetch(t.url, { headers: t.headers, redirect: 'manual' });
    if (res.status !== 200 || res.headers.get('x-user') !== 'demo') throw new Error(`${t.key}: forward-auth setup broken (${res.status}, user ${res.headers.get('x-user')})`);
  }

  if (targets.length === 0) throw new Error(`BENCH_TARGETS=${env.BENCH_TARGETS}: no such target (a … l, z)`);
  // Warm-up: JIT, connection pools, the session cache.
  for (const t of targets) await wrk(t.url, t.headers, { duration: WARMUP });

  // --- throughput rounds -----------------------------------------------------------------
  const samples = Object.fromEntries(targets.map((t) => [t.key, []]));
  for (let round = 1; round <= ROUNDS; round++) {
    // Each round starts one target further on: no target always runs first (after the warm-up, or
    // the previous round's last) or always after the same neighbour.
    const shift = (round - 1) % targets.length;
    for (const t of [...targets.slice(shift), ...targets.slice(0, shift)]) {
      const ticks0 = t.pid ? cpuTicks(t.pid) : 0;
      const calls0 = await redisCalls(redis);
      const stopRss = t.pid ? sampleRss(t.pid) : () => NaN;
      const r = await wrk(t.url, t.headers);
      const peakRss = stopRss();
      const calls1 = await redisCalls(redis);
      const cpuUs = t.pid ? ((cpuTicks(t.pid) - ticks0) / CLK_TCK / r.requests) * 1e6 : NaN;
      samples[t.key].push({ ...r, cpuUs, peakRss, redisPerReq: (calls1 - calls0 - 2) / r.requests });
      log(`round ${round} ${t.key}: ${r.rps.toFixed(0)} req/s p99 ${r.p99}us cpu ${cpuUs.toFixed(1)}us non2xx ${r.non2xx}`);
    }
  }
  const summary = Object.fromEntries(
    targets.map((t) => [
      t.key,
      {
        ...t,
        rps: median(samples[t.key].map((s) => s.rps)),
        p50: median(samples[t.key].map((s) => s.p50)),
        p99: median(samples[t.key].map((s) => s.p99)),
        cpuUs: median(samples[t.key].map((s) => s.cpuUs)),
        redisPerReq: Math.max(0, median(samples[t.key].map((s) => s.redisPerReq))),
        non2xx: samples[t.key].reduce((n, s) => n + s.non2xx, 0),
        rssMb: Math.max(...samples[t.key].map((s) => s.peakRss)),
      },
    ]),
  );

  // The sections below measure c and d only: they run no rounds when BENCH_TARGETS picks a subset.
  const FULL = ONLY === null;
  const SECTION_ROUNDS = FULL ? ROUNDS : 0;

  // --- paced latency, with and without logins running -------------------------------------
  const paced = join(here, 'targets', 'paced.lua');
  const pacedSamples = { c: [], d: [], cLogins: [] };
  let loginsDone = 0;
  for (let round = 1; round <= SECTION_ROUNDS; round++) {
    pacedSamples.c.push((await wrk(targets[2].url, targets[2].headers, { script: paced })).p99);
    pacedSamples.d.push((await wrk(targets[3].url, targets[3].headers, { script: paced })).p99);
    // 20 logins per second beside the paced load: argon2 runs in the thread pool, not on the loop.
    let running = true;
    const loginLoop = (async () => {
      while (running) {
        const t0 = Date.now();
        await login().then(() => loginsDone++, () => undefined);
        await sleep(Math.max(0, 50 - (Date.now() - t0)));
      }
    })();
    pacedSamples.cLogins.push((await wrk(targets[2].url, targets[2].headers, { script: paced })).p99);
    running = false;
    await loginLoop;
  }

  // --- revocation delay across replicas --------------------------------------------------
  const delays = [];
  for (let i = 0; i < (FULL ? 20 : 0); i++) {
    const cookie = await login();
    await fetch(`http://127.0.0.1:${ports.c2}/`, { headers: { cookie } }); // warm the replica's cache
    const t0 = performance.now();
    await fetch(`http://127.0.0.1:${ports.c}/_auth/logout`, { method: 'POST', headers: { cookie }, redirect: 'manual' });
    const tLogout = performance.now();
    for (;;) {
      const res = await fetch(`http://127.0.0.1:${ports.c2}/`, { headers: { cookie, accept: 'application/json' } });
      await res.arrayBuffer();
      if (res.status === 401) break;
      if (performance.now() - t0 > 2_000) break;
    }
    delays.push(performance.now() - tLogout);
  }

  // --- cost flat in the number of sessions -----------------------------------------------
  const { createRedisSessionStore } = await import(join(root, 'dist', 'session', 'redis-store.js'));
  const filler = new Redis(redisUrl, { enableAutoPipelining: true });
  const store = createRedisSessionStore(filler, { prefix: 'sgw:' });
  await sleep(200);
  const memory = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))[1]);
  const mem0 = await memory();
  const now = Date.now();
  const BATCH = 5_000;
  // Two sessions per user (a laptop and a phone), so the per-user index is shared the way it is in practice.
  const USERS = Math.ceil(SESSIONS / 2);
  for (let done = 0; done < (FULL ? SESSIONS : 0); done += BATCH) {
    const batch = [];
    for (let i = done; i < Math.min(SESSIONS, done + BATCH); i++) {
      const idHash = Buffer.from(`bench-session-${i}`).toString('base64url').padEnd(43, 'x').slice(0, 43);
      batch.push(
        store.create(
          idHash,
          { user: `user${i % USERS}@corp`, email: `user${i % USERS}@example.com`, groups: ['staff', 'engineering', 'vpn-users'], createdAt: now, expiresAt: now + 12 * 3_600_000, touchedAt: now },
          30 * 60_000,
        ),
      );
    }
    await Promise.all(batch);
  }
  const mem1 = await memory();
  const bytesPerSession = FULL ? (mem1 - mem0) / SESSIONS : NaN;
  const flat = { c: [], d: [] };
  for (let round = 1; round <= SECTION_ROUNDS; round++) {
    flat.c.push((await wrk(targets[2].url, targets[2].headers)).rps);
    flat.d.push((await wrk(targets[3].url, targets[3].headers)).rps);
  }
  await store.close();
  filler.disconnect();

  // --- report ----------------------------------------------------------------------------
  const missing = { rps: NaN, cpuUs: NaN, redisPerReq: NaN, rssMb: NaN };
  // BENCH_TARGETS may leave out (a): its ratios are then n/a, not a crash after the whole run.
  const a = summary.a ?? missing;
  const fmt = (n, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
  const rows = targets.map((t) => {
    const s = summary[t.key];
    return `| ${t.key} | ${t.label} | ${fmt(s.rps)} | ${fmt(s.rps / a.rps, 2)} | ${fmt(s.p50 / 1000, 2)} | ${fmt(s.p99 / 1000, 2)} | ${fmt(s.cpuUs, 1)} | ${fmt(s.redisPerReq, 3)} | ${fmt(s.rssMb, 0)} | ${s.non2xx} |`;
  });
  const [c, d, f, gg, ee, h, i, jj, kk, ll] = ['c', 'd', 'f', 'g', 'e', 'h', 'i', 'j', 'k', 'l'].map((k) => summary[k] ?? missing);
  // Per round, beside the medians: on a shared machine one round's neighbours differ from the next's.
  const perRound = targets
    .filter((t) => t.pid)
    .map((t) => `| ${t.key} | ${samples[t.key].map((x) => `${fmt(x.rps)} / ${fmt(x.cpuUs, 1)}`).join(' | ')} |`);
  const ratioRounds = (num, den) =>
    samples[num] && samples[den] ? samples[num].map((x, r) => `${fmt(x.rps / samples[den][r].rps, 2)} / ${fmt(x.cpuUs / samples[den][r].cpuUs, 2)}`).join(' | ') : null;
  const ratioRows = [['c', 'g'], ['c', 'j'], ['c', 'k'], ['c', 'e'], ['c', 'l'], ['l', 'g'], ['j', 'g'], ['c', 'z']]
    .map(([n, dd]) => [n, dd, ratioRounds(n, dd)])
    .filter(([, , r]) => r !== null)
    .map(([n, dd, r]) => `| ${n}/${dd} | ${r} |`);
  const roundHeads = samples[targets[0].key].map((_, r) => `round ${r + 1}`);
  // Access-log cost: what one line adds per request, the gateway's (c − l) against fastify's own (j − g).
  const logCost = c.cpuUs - ll.cpuUs, pinoCost = jj.cpuUs - gg.cpuUs;
  // A goal whose targets were not measured in this run is left out.
  const goal = (name, value, target, ok) => (value.includes('n/a') ? null : `| ${name} | ${value} | ${target} | ${ok ? 'met' : 'NOT met'} |`);
  const pc = median(pacedSamples.c), pd = median(pacedSamples.d), pl = median(pacedSamples.cLogins);
  const report = `# Benchmark run ${new Date().toISOString()}

Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, wrk -t1 -c${CONNECTIONS} -d${DURATION}, ${ROUNDS} interleaved rounds, medians.

| | target | req/s | × (a) | p50 ms | p99 ms | proxy CPU µs/req | Redis cmds/req | peak RSS under load MB | non-2xx |
| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${rows.join('\n')}

Per round, req/s / proxy CPU µs per request:

| | ${roundHeads.join(' | ')} |
| --- | ${roundHeads.map(() => '---:').join(' | ')} |
${perRound.join('\n')}

Ratios per round, req/s ratio / CPU-per-request ratio:

| | ${roundHeads.join(' | ')} |
| --- | ${roundHeads.map(() => '---:').join(' | ')} |
${ratioRows.join('\n')}
${FULL ? `
Paced load (each connection pauses 10 ms between requests), p99 medians: gateway ${fmt(pc / 1000, 2)} ms, cache off ${fmt(pd / 1000, 2)} ms, gateway while 20 logins/s run ${fmt(pl / 1000, 2)} ms (${loginsDone} logins done).

Revocation across replicas (logout on one gateway until another with a warm cache answers 401, 20 trials): median ${fmt(median(delays), 2)} ms, max ${fmt(Math.max(...delays), 2)} ms.

Sessions in Redis: ${SESSIONS.toLocaleString('en')} sessions (user, email, three groups; two sessions per user) + per-user index used ${fmt(bytesPerSession, 0)} bytes each. Throughput with them loaded: gateway ${fmt(median(flat.c))} req/s (vs ${fmt(c.rps)} with a handful), cache off ${fmt(median(flat.d))} req/s (vs ${fmt(d.rps)}).
` : ''}
| goal | measured | target | |
| --- | --- | --- | --- |
${[
  goal('throughput vs auth off (c/f)', fmt(c.rps / f.rps, 2), '≥ 0.95', c.rps / f.rps >= 0.95),
  goal('proxy CPU vs auth off (c/f)', fmt(c.cpuUs / f.cpuUs, 2), '≤ 1.05', c.cpuUs / f.cpuUs <= 1.05),
  goal('throughput vs bare fastify proxy (c/g)', fmt(c.rps / gg.rps, 2), '≥ 0.9', c.rps / gg.rps >= 0.9),
  goal('throughput vs fastify + one pino line (c/j)', fmt(c.rps / jj.rps, 2), '≥ 1.0', c.rps / jj.rps >= 1.0),
  goal('proxy CPU vs fastify + one pino line (c/j)', fmt(c.cpuUs / jj.cpuUs, 2), '≤ 1.0', c.cpuUs / jj.cpuUs <= 1.0),
  goal('throughput vs naive Redis-GET proxy (c/k)', fmt(c.rps / kk.rps, 2), '≥ 1.1', c.rps / kk.rps >= 1.1),
  goal('access-log cost vs pino line cost ((c−l)/(j−g), µs)', `${fmt(logCost, 1)} / ${fmt(pinoCost, 1)} = ${fmt(logCost / pinoCost, 2)}`, '≤ 1.3', logCost / pinoCost <= 1.3),
  goal('throughput vs cache off (c/d)', fmt(c.rps / d.rps, 2), '≥ 1.15', c.rps / d.rps >= 1.15),
  goal('throughput vs express-session stack (c/e)', fmt(c.rps / ee.rps, 2), '≥ 3.5', c.rps / ee.rps >= 3.5),
  goal('Redis commands per request (c)', fmt(c.redisPerReq, 4), '≤ 0.01', c.redisPerReq <= 0.01),
  goal('paced p99 vs cache off', `${fmt(pc / 1000, 2)} / ${fmt(pd / 1000, 2)} ms`, '≤ 1.0', pc <= pd),
  goal('peak RSS vs bare proxy (c/g)', fmt(c.rssMb / gg.rssMb, 2), '≤ 1.1', c.rssMb / gg.rssMb <= 1.1),
  goal('Redis bytes per session', fmt(bytesPerSession, 0), '≤ 400', bytesPerSession <= 400),
  goal('paced p99 with 20 logins/s vs without', fmt(pl / pc, 2), '≤ 1.2', pl / pc <= 1.2),
  goal('forward-auth throughput vs naive verifier (h/i)', fmt(h.rps / i.rps, 2), '≥ 1.0', h.rps / i.rps >= 1.0),
  goal('Redis commands per forward-auth request (h)', fmt(h.redisPerReq, 4), '≤ 0.01', h.redisPerReq <= 0.01),
  goal('verifier CPU per request vs naive (h/i)', fmt(h.cpuUs / i.cpuUs, 2), 'for information', true),
]
  .filter(Boolean)
  .join('\n')}
`;
  mkdirSync(join(here, 'out'), { recursive: true });
  const file = join(here, 'out', `run-${Date.now()}.md`);
  writeFileSync(file, report);
  console.log(report);
  log(`written to ${file}`);
  await redis.quit();
}

const hardStop = setTimeout(() => {
  log('time limit reached, stopping');
  stopAll().then(() => process.exit(1));
}, Number(env.BENCH_TIME_LIMIT_MS ?? 30 * 60_000));
hardStop.unref();

main()
  .then(async () => {
    await stopAll();
    process.exit(0);
  })
  .catch(async (err) => {
    console.error(err);
    await stopAll();
    process.exit(1);
  });
