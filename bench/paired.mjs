// CPU per proxied request of several targets measured at the same time: every target gets its own
// wrk, all started together at the same moderate pace (each connection pauses 10 ms between
// requests), so whatever else the machine runs weighs on all of them alike and each handles about
// the same requests per second (the same batching per wake-up). CPU comes from /proc (utime +
// stime of the target process, every thread) over the run, divided by the requests it answered.
// On a shared, busy machine the per-round ratios from this are far steadier than req/s. Peak RSS
// is each round's own high-water mark (reset before the round, read after it).
//
//   npm run build && node bench/paired.mjs
//   PAIRED_BASELINE_CLI=/path/to/other/dist/cli.js PAIRED_ROUNDS=7 PAIRED_DURATION=8s node bench/paired.mjs
//   PAIRED_STDOUT=pipe PAIRED_PACED=false PAIRED_CONNECTIONS=32 node bench/paired.mjs  # logs into a pipe, saturated
//   PAIRED_TARGETS=c,t,z PAIRED_BASELINE_CLI=… node bench/paired.mjs     # tracing off vs baseline, and on
//
// Targets: g (stock fastify + http-proxy, no log), j (same + fastify's own pino line), c (the
// gateway, default config), l (the gateway, GATEWAY_ACCESS_LOG=false), z (a baseline build, with
// PAIRED_BASELINE_CLI), t (the gateway with tracing on: every request sampled and exported over
// OTLP/HTTP to a sink in this process; only when PAIRED_TARGETS names it), b (the gateway with
// GATEWAY_LOG_BATCH=true; only when PAIRED_TARGETS names it), s (the gateway with V8's young
// generation capped at stock fastify's size, `node --max-semi-space-size=8`; only when named), k (the
// gateway with GATEWAY_RELEASE_STARTUP_MEMORY=false; only when named). Needs wrk, nginx and
// redis-server (as run.sh).
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Before any server starts: without wrk the run would stop half-way and leave them running.
if (spawnSync('wrk', ['--version']).error) {
  console.error('wrk not found: install Debian\'s wrk (apt-get install -y wrk)');
  process.exit(1);
}

const here = dirname(fileURLToPath(import.meta.url));
const env = process.env;
const ROUNDS = Number(env.PAIRED_ROUNDS ?? 5);
const DURATION = env.PAIRED_DURATION ?? '8s';
const CONNECTIONS = Number(env.PAIRED_CONNECTIONS ?? 8);
const BASELINE = env.PAIRED_BASELINE_CLI ?? null;
/** PAIRED_PACED=false: no pause, each wrk as fast as its target answers (saturated, all at once). */
const PACED = env.PAIRED_PACED !== 'false';
/**
 * PAIRED_STDOUT=pipe: each target's standard output is a pipe this process drains, as a container
 * runtime or a log shipper reads it (a write(2) to a pipe costs more than one to /dev/null).
 */
const STDOUT_PIPE = env.PAIRED_STDOUT === 'pipe';
const SECRET = 'bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
const work = mkdtempSync(join(tmpdir(), 'sgw-paired-'));
const children = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const freePort = () =>
  new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
const start = (command, args, extraEnv = {}, stderr = 'ignore') => {
  const child = spawn(command, args, { env: { ...env, ...extraEnv }, stdio: ['ignore', STDOUT_PIPE ? 'pipe' : 'ignore', stderr] });
  child.stdout?.resume();
  children.push(child);
  return child;
};
const ticks = (pid) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
};
/**
 * Peak RSS of the round alone: Linux resets a process's high-water mark (VmHWM) to its current RSS
 * when "5" is written to its clear_refs, so the sign-in before the rounds (an argon2id hash holds
 * 19 MiB while it runs) and earlier rounds do not count. Null where that is not permitted.
 */
const resetPeak = (pid) => {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
};
const peakMiB = (pid) => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
/** Of the rounds that measured something: a round where a target answered no request is NaN, left out. */
const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
async function waitHttp(url) {
  for (let i = 0; i < 150; i++) {
    try {
      await fetch(url);
      return;
    } catch {
      await sleep(100);
    }
  }
  throw new Error(`${url} did not answer`);
}
function wrk(url, headers, duration, paced = true) {
  const args = ['-t1', `-c${CONNECTIONS}`, `-d${duration}`];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  if (paced) args.push('-s', join(here, 'targets', 'paced.lua'));
  args.push(url);
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('exit', (code) =>
      code === 0
        ? resolve({ requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? 0), non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0) })
        : reject(new Error(`wrk exited ${code}`)),
    );
  });
}

async function main() {
  const redisPort = await freePort();
  start('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', work]);
  const upPort = await freePort();
  mkdirSync(join(work, 'tmp'));
  writeFileSync(
    join(work, 'nginx.conf'),
    `daemon off; worker_processes 1; pid ${work}/nginx.pid; error_log ${work}/error.log warn; events { worker_connections 1024; }
http { access_log off; client_body_temp_path ${work}/tmp; proxy_temp_path ${work}/tmp; fastcgi_temp_path ${work}/tmp;
  uwsgi_temp_path ${work}/tmp; scgi_temp_path ${work}/tmp; server { listen 127.0.0.1:${upPort}; location / { return 200 "ok"; } } }`,
  );
  start(env.NGINX ?? '/usr/sbin/nginx', ['-c', join(work, 'nginx.conf'), '-p', work]);
  const upstream = `http://127.0.0.1:${upPort}`;
  await waitHttp(upstream);
  // The OTLP/HTTP receiver of target t: reads and counts what it is sent, answers 200.
  const otlp = { exports: 0, bytes: 0 };
  const sink = createHttpServer((req, res) => {
    req.on('data', (c) => (otlp.bytes += c.length));
    req.on('end', () => {
      otlp.exports += 1;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise((resolve) => sink.listen(0, '127.0.0.1', resolve));
  sink.unref();

  const gatewayEnv = (port, extra = {}) => ({
    GATEWAY_HOST: '127.0.0.1', GATEWAY_PORT: String(port), GATEWAY_ADMIN_HOST: '127.0.0.1', GATEWAY_ADMIN_PORT: '0', GATEWAY_UPSTREAM: upstream,
    REDIS_URL: `redis://127.0.0.1:${redisPort}`, GATEWAY_SESSION_SECRET: SECRET, GATEWAY_COOKIE_SECURE: 'false', ...extra,
  });
  const cli = join(here, '..', 'dist', 'cli.js');
  const defs = [
    { key: 'g', label: 'fastify + http-proxy, no log', cmd: [join(here, 'targets', 'bare-proxy.mjs')], env: { UPSTREAM: upstream } },
    { key: 'j', label: 'fastify + http-proxy + one pino line', cmd: [join(here, 'targets', 'fastify-pino-line.mjs')], env: { UPSTREAM: upstream } },
    { key: 'c', label: 'session-gateway, default', cmd: [cli, 'serve'], gateway: true, env: {} },
    { key: 'l', label: 'session-gateway, GATEWAY_ACCESS_LOG=false', cmd: [cli, 'serve'], gateway: true, env: { GATEWAY_ACCESS_LOG: 'false' } },
    ...(BASELINE ? [{ key: 'z', label: 'session-gateway, baseline build', cmd: [BASELINE, 'serve'], gateway: true, env: {} }] : []),
    { key: 'b', label: 'session-gateway, GATEWAY_LOG_BATCH=true', cmd: [cli, 'serve'], gateway: true, optIn: true, env: { GATEWAY_LOG_BATCH: 'true' } },
    { key: 'k', label: 'session-gateway, GATEWAY_RELEASE_STARTUP_MEMORY=false', cmd: [cli, 'serve'], gateway: true, optIn: true, env: { GATEWAY_RELEASE_STARTUP_MEMORY: 'false' } },
    { key: 's', label: 'session-gateway, young generation capped (--max-semi-space-size=8)', cmd: ['--max-semi-space-size=8', cli, 'serve'], gateway: true, optIn: true, env: {} },
    { key: 't', label: 'session-gateway, tracing on (all sampled)', cmd: [cli, 'serve'], gateway: true, optIn: true, env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${sink.address().port}` } },
  ].filter((d) => (!env.PAIRED_TARGETS ? !d.optIn : env.PAIRED_TARGETS.split(',').includes(d.key)));
  const targets = [];
  for (const d of defs) {
    const port = await freePort();
    const child = d.gateway
      ? start('node', d.cmd, gatewayEnv(port, d.env), 'pipe')
      : start('node', d.cmd, { PORT: String(port), ...d.env });
    let stderr = '';
    child.stderr?.on('data', (c) => (stderr += c));
    targets.push({ ...d, port, pid: child.pid, url: `http://127.0.0.1:${port}/`, stderr: () => stderr, samples: [] });
  }
  for (const t of targets) await waitHttp(t.gateway ? `${t.url}_auth/login` : t.url);
  // One session, valid on every gateway (same secret, same Redis), signed in through the baseline
  // build when there is one: every newer build reads the records an older one writes, not always
  // the other way round (docs/sessions.md, rolling upgrades).
  const first = targets.find((t) => t.key === 'z') ?? targets.find((t) => t.gateway);
  let cookie = null;
  if (first) {
    const password = /password \(shown once\):\s+(\S+)/.exec(first.stderr())?.[1];
    const res = await fetch(`${first.url}_auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'demo', password }) });
    cookie = res.headers.getSetCookie().find((c) => c.startsWith('sgw_session='))?.split(';')[0];
    if (res.status !== 200 || !cookie) throw new Error(`login failed: ${res.status}`);
  }
  const headersOf = (t) => (t.gateway ? { cookie } : {});
  await Promise.all(targets.map((t) => wrk(t.url, headersOf(t), '3s', false))); // warm-up: JIT, pools, caches

  for (let round = 1; round <= ROUNDS; round++) {
    const peaksReset = targets.map((t) => resetPeak(t.pid));
    const before = targets.map((t) => ticks(t.pid));
    const results = await Promise.all(targets.map((t) => wrk(t.url, headersOf(t), DURATION, PACED)));
    targets.forEach((t, i) => {
      const r = results[i];
      if (r.non2xx > 0) throw new Error(`${t.key}: ${r.non2xx} non-2xx answers`);
      // No request answered in the whole round (wrk's connections all timed out): no CPU per request.
      const cpuUs = r.requests > 0 ? ((ticks(t.pid) - before[i]) / CLK_TCK / r.requests) * 1e6 : NaN;
      if (r.requests === 0) console.error(`[paired] round ${round}: ${t.key} answered no request; the round is left out of its figures`);
      t.samples.push({ requests: r.requests, cpuUs, rssMiB: peaksReset[i] ? peakMiB(t.pid) : NaN });
    });
    console.error(`[paired] round ${round}: ${targets.map((t) => `${t.key} ${t.samples.at(-1).cpuUs.toFixed(1)} µs (${t.samples.at(-1).requests})`).join(', ')}`);
  }

  const by = Object.fromEntries(targets.map((t) => [t.key, t]));
  const heads = targets[0].samples.map((_, r) => `r${r + 1}`);
  const lines = [
    `wrk -t1 -c${CONNECTIONS} -d${DURATION} per target, all targets at once, ${PACED ? 'paced (10 ms pause per connection)' : 'not paced'}, ${ROUNDS} rounds, standard output ${STDOUT_PIPE ? 'into a pipe' : 'to /dev/null'}.`,
    '',
    `| target | CPU µs/req median | ${heads.join(' | ')} | requests/round |`,
    `| --- | ---: | ${heads.map(() => '---:').join(' | ')} | ---: |`,
    ...targets.map((t) => `| ${t.key} ${t.label} | ${median(t.samples.map((s) => s.cpuUs)).toFixed(1)} | ${t.samples.map((s) => s.cpuUs.toFixed(1)).join(' | ')} | ${median(t.samples.map((s) => s.requests))} |`),
    '',
    `| ratio of CPU per request | median | ${heads.join(' | ')} |`,
    `| --- | ---: | ${heads.map(() => '---:').join(' | ')} |`,
  ];
  for (const [n, d] of [['c', 'g'], ['c', 'j'], ['l', 'g'], ['j', 'g'], ['c', 'l'], ['c', 'z'], ['b', 'c'], ['b', 'j'], ['s', 'c'], ['s', 'j'], ['c', 'k'], ['t', 'c']]) {
    if (!by[n] || !by[d]) continue;
    const ratios = by[n].samples.map((s, r) => s.cpuUs / by[d].samples[r].cpuUs);
    lines.push(`| ${n}/${d} | ${median(ratios).toFixed(2)} | ${ratios.map((x) => x.toFixed(2)).join(' | ')} |`);
  }
  if (targets.some((t) => t.samples.some((s) => Number.isFinite(s.rssMiB)))) {
    lines.push('', `| peak RSS during the round, MiB | median | ${heads.join(' | ')} |`, `| --- | ---: | ${heads.map(() => '---:').join(' | ')} |`);
    for (const t of targets) lines.push(`| ${t.key} | ${median(t.samples.map((s) => s.rssMiB)).toFixed(1)} | ${t.samples.map((s) => s.rssMiB.toFixed(1)).join(' | ')} |`);
    for (const [n, d] of [['c', 'g'], ['c', 'j'], ['l', 'g'], ['s', 'g'], ['s', 'c'], ['c', 'k'], ['k', 'g']]) {
      if (!by[n] || !by[d]) continue;
      const ratios = by[n].samples.map((s, r) => s.rssMiB / by[d].samples[r].rssMiB);
      lines.push(`| RSS ${n}/${d} | ${median(ratios).toFixed(2)} | ${ratios.map((x) => x.toFixed(2)).join(' | ')} |`);
    }
  }
  const diff = (a, b) => (by[a] && by[b] ? by[a].samples.map((s, r) => s.cpuUs - by[b].samples[r].cpuUs) : null);
  const log = diff('c', 'l');
  const pino = diff('j', 'g');
  if (log) lines.push('', `Gateway access line (c − l), µs per request: median ${median(log).toFixed(1)}; per round ${log.map((x) => x.toFixed(1)).join(', ')}`);
  if (pino) lines.push(`fastify's pino line (j − g), µs per request: median ${median(pino).toFixed(1)}; per round ${pino.map((x) => x.toFixed(1)).join(', ')}`);
  if (log && pino) lines.push(`Ratio of medians: ${(median(log) / median(pino)).toFixed(2)} (goal ≤ 1.3)`);
  const off = diff('c', 'z');
  if (off) lines.push(`This build − baseline (c − z), µs per request: median ${median(off).toFixed(1)}; per round ${off.map((x) => x.toFixed(1)).join(', ')}`);
  const traced = diff('t', 'c');
  if (traced) {
    lines.push(`Tracing on (t − c), µs per request: median ${median(traced).toFixed(1)}; per round ${traced.map((x) => x.toFixed(1)).join(', ')}`);
    lines.push(`OTLP sink: ${otlp.exports} exports, ${(otlp.bytes / 1024 / 1024).toFixed(1)} MiB`);
  }
  console.log(lines.join('\n'));
}

const stopAll = async () => {
  for (const c of children) c.kill('SIGTERM');
  await sleep(300);
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
};
const hardStop = setTimeout(() => stopAll().then(() => process.exit(1)), Number(env.PAIRED_TIME_LIMIT_MS ?? 15 * 60_000));
hardStop.unref();
main().then(
  () => stopAll().then(() => process.exit(0)),
  (err) => {
    console.error(err);
    return stopAll().then(() => process.exit(1));
  },
);
