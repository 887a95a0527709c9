// Soak test (not part of npm test): mixed traffic — logins, authenticated requests, logouts —
// against one gateway for SOAK_DURATION (default 10m), sampling the gateway's RSS, event-loop
// delay and open handles from its own /metrics every SOAK_SAMPLE (default 30s). Everything runs on
// 127.0.0.1 and every process it starts is stopped by PID at the end.
//   npm ci && npm run build && node bench/soak.mjs            (needs redis-server)
import { spawn } from 'node:child_process';
import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const DURATION_S = parseDuration(process.env.SOAK_DURATION ?? '10m');
const SAMPLE_S = parseDuration(process.env.SOAK_SAMPLE ?? '30s');
const USERS = Number(process.env.SOAK_USERS ?? 16);
const REQUESTS_PER_SESSION = Number(process.env.SOAK_REQUESTS_PER_SESSION ?? 200);
const children = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function parseDuration(text) {
  const m = /^(\d+)(s|m)?$/.exec(text);
  if (!m) throw new Error(`bad duration ${text}`);
  return Number(m[1]) * (m[2] === 'm' ? 60 : 1);
}

function freePort() {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function start(command, args, env, captureStderr = false) {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', captureStderr ? 'pipe' : 'inherit'] });
  const entry = { child, stderr: '' };
  if (captureStderr) child.stderr.on('data', (d) => (entry.stderr += d));
  children.push(child);
  return entry;
}

// Up to a minute: a loaded CI box starts Node slowly.
async function waitHttp(url) {
  for (let i = 0; i < 600; i++) {
    try {
      await fetch(url);
      return;
    } catch {
      await sleep(100);
    }
  }
  throw new Error(`${url} did not answer`);
}

async function metricsSample(adminUrl) {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const value = (name) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([\\d.e+-]+)$`, 'm').exec(text)?.[1] ?? NaN);
  return {
    rssMb: value('process_resident_memory_bytes') / 2 ** 20,
    heapMb: value('nodejs_heap_size_used_bytes') / 2 ** 20,
    lagP99Ms: value('nodejs_eventloop_lag_p99_seconds') * 1000,
    handles: value('nodejs_active_handles_total'),
    cacheEntries: value('gateway_session_cache_entries'),
  };
}

/**
 * A JSON sign-in from `localAddress`: each virtual user signs in from its own loopback address, as
 * real users do from their own, so the per-address limit on sign-ins in flight (2) is not the
 * whole soak's limit. Returns the status and the session cookie.
 */
function signIn(base, password, localAddress) {
  const body = JSON.stringify({ username: 'demo', password });
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}/_auth/login`, { method: 'POST', localAddress, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => {
        const cookie = (res.headers['set-cookie'] ?? []).find((c) => c.startsWith('sgw_session='))?.split(';')[0];
        resolve({ status: res.statusCode, cookie });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function virtualUser(base, password, until, counts, localAddress) {
  while (Date.now() < until) {
    const login = await signIn(base, password, localAddress);
    counts[login.status] = (counts[login.status] ?? 0) + 1;
    const cookie = login.cookie;
    if (!cookie) continue;
    for (let i = 0; i < REQUESTS_PER_SESSION && Date.now() < until; i++) {
      const res = await fetch(`${base}/page/${i}`, { headers: { cookie, accept: 'application/json' } });
      await res.arrayBuffer();
      counts[res.status] = (counts[res.status] ?? 0) + 1;
    }
    const out = await fetch(`${base}/_auth/logout`, { method: 'POST', headers: { cookie }, redirect: 'manual' });
    await out.arrayBuffer();
    counts.logout = (counts.logout ?? 0) + 1;
  }
}

async function main() {
  const redisPort = await freePort();
  start('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
  const upstream = createHttpServer((req, res) => res.end('ok')).listen(0, '127.0.0.1');
  await new Promise((r) => upstream.once('listening', r));
  const [port, adminPort] = [await freePort(), await freePort()];
  const gw = start('node', [join(root, 'dist', 'cli.js'), 'serve'], {
    GATEWAY_HOST: '127.0.0.1', GATEWAY_PORT: String(port), GATEWAY_ADMIN_HOST: '127.0.0.1', GATEWAY_ADMIN_PORT: String(adminPort),
    GATEWAY_UPSTREAM: `http://127.0.0.1:${upstream.address().port}`, REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    GATEWAY_SESSION_SECRET: 'soak-secret-0123456789-abcdefghijklmnopqrstuvwxyz', GATEWAY_COOKIE_SECURE: 'false',
    GATEWAY_LOGIN_MAX_ATTEMPTS: '1000000', GATEWAY_ACCESS_LOG: 'false',
  }, true);
  const base = `http://127.0.0.1:${port}`;
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  await waitHttp(`${adminUrl}/healthz`);
  const password = /password \(shown once\):\s+(\S+)/.exec(gw.stderr)?.[1];
  const until = Date.now() + DURATION_S * 1000;
  const counts = {};
  const samples = [];
  const sampler = (async () => {
    for (let t = 0; Date.now() < until; t += SAMPLE_S) {
      samples.push({ t, ...(await metricsSample(adminUrl)) });
      await sleep(SAMPLE_S * 1000);
    }
    samples.push({ t: DURATION_S, ...(await metricsSample(adminUrl)) });
  })();
  await Promise.all(Array.from({ length: USERS }, (_, i) => virtualUser(base, password, until, counts, `127.0.1.${i + 1}`)));
  await sampler;
  const rows = samples.map((s) => `| ${s.t} | ${s.rssMb.toFixed(1)} | ${s.heapMb.toFixed(1)} | ${s.lagP99Ms.toFixed(1)} | ${s.handles} | ${s.cacheEntries} |`);
  console.log(`# Soak: ${DURATION_S} s, ${USERS} users looping login → ${REQUESTS_PER_SESSION} requests → logout\n`);
  console.log(`Responses: ${JSON.stringify(counts)}\n`);
  console.log('| t (s) | RSS MB | heap used MB | event-loop lag p99 ms | active handles | cached sessions |');
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: |');
  console.log(rows.join('\n'));
  upstream.close();
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const child of children) child.kill('SIGTERM');
    setTimeout(() => process.exit(), 500);
  });
