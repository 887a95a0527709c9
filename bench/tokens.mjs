// CPU per proxied request for the three ways a hot client proves who it is: a session cookie (s),
// `Authorization: Bearer sgw_pat_…` (t) and a cached HTTP Basic password (b). Three identical
// gateway processes (Redis, PostgreSQL, GATEWAY_BASIC_AUTH=true), each driven by its own paced wrk
// at the same time, as bench/paired.mjs does: whatever else the machine runs weighs on all three
// alike. CPU from /proc per process over each round, divided by the requests it answered.
// Issue 16's goals: t/s ≤ 1.05, b/s ≤ 1.1. A fourth gateway (c) serves session cookies again: c/s is
// what two identical processes differ by in the same run, the noise floor of the other ratios.
//
//   npm run build && node bench/tokens.mjs          # TOKENS_ROUNDS=5 TOKENS_DURATION=8s TOKENS_CONNECTIONS=8
//
// Needs wrk, nginx, redis-server and PostgreSQL's initdb/pg_ctl (Debian: postgresql).
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
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
const ROUNDS = Number(env.TOKENS_ROUNDS ?? 5);
const DURATION = env.TOKENS_DURATION ?? '8s';
const CONNECTIONS = Number(env.TOKENS_CONNECTIONS ?? 8);
const SECRET = 'bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
const PASSWORD = 'bench-password-0123456789';
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
const asRoot = process.getuid?.() === 0;
const work = mkdtempSync(join(asRoot ? '/tmp' : tmpdir(), 'sgw-tokens-bench-'));
const cli = join(here, '..', 'dist', 'cli.js');
const children = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let pg = null;

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
  const child = spawn(command, args, { env: { ...env, ...extraEnv }, stdio: ['ignore', 'ignore', stderr] });
  children.push(child);
  return child;
};
const ticks = (pid) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
};
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
async function waitHttp(url) {
  for (let i = 0; i < 200; i++) {
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
function runCli(args, extraEnv, stdin = '') {
  const r = spawnSync('node', [cli, ...args], { env: { ...env, ...extraEnv }, input: stdin, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

/** A throwaway PostgreSQL cluster (as the postgres user when root), as the tests' helper makes one. */
async function startPostgres() {
  const bindir = ['/usr/lib/postgresql'].flatMap((base) => (existsSync(base) ? readdirSync(base).sort().reverse().map((v) => join(base, v, 'bin')) : [])).find((d) => existsSync(join(d, 'initdb')));
  if (!bindir) throw new Error('initdb not found: install the Debian package postgresql');
  const dir = join(work, 'pg');
  mkdirSync(dir);
  chmodSync(work, 0o755); // the postgres user must reach its directory
  if (asRoot) chownSync(dir, Number(execFileSync('id', ['-u', 'postgres']).toString()), Number(execFileSync('id', ['-g', 'postgres']).toString()));
  const tool = (name, args) => {
    const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bindir, name), ...args]] : [join(bindir, name), args];
    execFileSync(cmd, argv, { cwd: dir, stdio: 'ignore' });
  };
  const port = await freePort();
  tool('initdb', ['-D', join(dir, 'data'), '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C']);
  tool('pg_ctl', ['start', '-D', join(dir, 'data'), '-l', join(dir, 'log'), '-w', '-s', '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`]);
  pg = { stop: () => tool('pg_ctl', ['stop', '-D', join(dir, 'data'), '-m', 'immediate', '-w', '-s']) };
  return `postgres://postgres@127.0.0.1:${port}/postgres`;
}

async function main() {
  const redisPort = await freePort();
  start('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', work]);
  const databaseUrl = await startPostgres();
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

  const common = {
    GATEWAY_HOST: '127.0.0.1', GATEWAY_ADMIN_HOST: '127.0.0.1', GATEWAY_ADMIN_PORT: '0', GATEWAY_UPSTREAM: upstream,
    REDIS_URL: `redis://127.0.0.1:${redisPort}`, DATABASE_URL: databaseUrl, GATEWAY_SESSION_SECRET: SECRET,
    GATEWAY_COOKIE_SECURE: 'false', GATEWAY_BASIC_AUTH: 'true', LOG_LEVEL: 'warn',
  };
  runCli(['migrate'], common);
  runCli(['users', 'add', 'alice', '--password-stdin'], common, `${PASSWORD}\n`);
  const token = runCli(['tokens', 'create', 'alice', '--name', 'bench'], common);

  const defs = [
    { key: 's', label: 'session cookie' },
    { key: 't', label: 'Bearer API token' },
    { key: 'b', label: 'HTTP Basic (cached)' },
    // A second session-cookie gateway: what two identical processes differ by on this machine.
    { key: 'c', label: 'session cookie again (control)' },
  ];
  const targets = [];
  for (const d of defs) {
    const port = await freePort();
    const child = start('node', [cli, 'serve'], { ...common, GATEWAY_PORT: String(port) }, 'pipe');
    let stderr = '';
    child.stderr?.on('data', (c) => (stderr += c));
    targets.push({ ...d, port, pid: child.pid, url: `http://127.0.0.1:${port}/`, stderr: () => stderr, samples: [] });
  }
  for (const t of targets) await waitHttp(`${t.url}_auth/login`);
  const res = await fetch(`${targets[0].url}_auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', password: PASSWORD }) });
  const cookie = res.headers.getSetCookie().find((c) => c.startsWith('sgw_session='))?.split(';')[0];
  if (res.status !== 200 || !cookie) throw new Error(`login failed: ${res.status}`);
  const headers = {
    s: { cookie },
    t: { authorization: `Bearer ${token}` },
    b: { authorization: `Basic ${Buffer.from(`alice:${PASSWORD}`).toString('base64')}` },
    c: { cookie },
  };
  await Promise.all(targets.map((t) => wrk(t.url, headers[t.key], '3s', false))); // warm-up: JIT, pools, caches

  for (let round = 1; round <= ROUNDS; round++) {
    const before = targets.map((t) => ticks(t.pid));
    const results = await Promise.all(targets.map((t) => wrk(t.url, headers[t.key], DURATION)));
    targets.forEach((t, i) => {
      const r = results[i];
      if (r.non2xx > 0) throw new Error(`${t.key}: ${r.non2xx} non-2xx answers\n${t.stderr()}`);
      t.samples.push({ requests: r.requests, cpuUs: ((ticks(t.pid) - before[i]) / CLK_TCK / r.requests) * 1e6 });
    });
    console.error(`[tokens] round ${round}: ${targets.map((t) => `${t.key} ${t.samples.at(-1).cpuUs.toFixed(1)} µs (${t.samples.at(-1).requests})`).join(', ')}`);
  }

  const by = Object.fromEntries(targets.map((t) => [t.key, t]));
  const heads = targets[0].samples.map((_, r) => `r${r + 1}`);
  const lines = [
    `wrk -t1 -c${CONNECTIONS} -d${DURATION} per target, all three at once, paced (10 ms pause per connection), ${ROUNDS} rounds; three identical gateways (Redis, PostgreSQL, GATEWAY_BASIC_AUTH=true).`,
    '',
    `| target | CPU µs/req median | ${heads.join(' | ')} | requests/round |`,
    `| --- | ---: | ${heads.map(() => '---:').join(' | ')} | ---: |`,
    ...targets.map((t) => `| ${t.key} ${t.label} | ${median(t.samples.map((s) => s.cpuUs)).toFixed(1)} | ${t.samples.map((s) => s.cpuUs.toFixed(1)).join(' | ')} | ${median(t.samples.map((s) => s.requests))} |`),
    '',
    `| ratio of CPU per request | median | ${heads.join(' | ')} | goal |`,
    `| --- | ---: | ${heads.map(() => '---:').join(' | ')} | --- |`,
  ];
  for (const [n, d, goal] of [['t', 's', 1.05], ['b', 's', 1.1], ['c', 's', null]]) {
    const ratios = by[n].samples.map((s, r) => s.cpuUs / by[d].samples[r].cpuUs);
    const m = median(ratios);
    const verdict = goal === null ? 'control: identical processes' : `≤ ${goal}: ${m <= goal ? 'met' : '**not met**'}`;
    lines.push(`| ${n}/${d} | ${m.toFixed(2)} | ${ratios.map((x) => x.toFixed(2)).join(' | ')} | ${verdict} |`);
  }
  console.log(lines.join('\n'));
}

const stopAll = async () => {
  for (const c of children) c.kill('SIGTERM');
  await sleep(300);
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  try {
    pg?.stop();
  } catch {
    // already gone
  }
};
const hardStop = setTimeout(() => stopAll().then(() => process.exit(1)), Number(env.TOKENS_TIME_LIMIT_MS ?? 15 * 60_000));
hardStop.unref();
main().then(
  () => stopAll().then(() => process.exit(0)),
  (err) => {
    console.error(err);
    return stopAll().then(() => process.exit(1));
  },
);
