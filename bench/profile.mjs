// Where a proxied request's CPU goes: runs one gateway build under wrk (-c32, nginx `return 200`
// upstream, one valid session) with --cpu-prof, measures its CPU per request from /proc, then
// attributes the main thread's busy samples (start-up excluded) to the parts of the proxied path.
// Thread-pool work (an asynchronous log destination's writes) is in the /proc figure, not in the
// profile. On a shared machine read the shares, and compare builds run back to back.
//
//   npm run build && node bench/profile.mjs [path/to/dist/cli.js] [seconds] [ENV=value …]
//   node bench/profile.mjs dist/cli.js 15 GATEWAY_ACCESS_LOG=false
//   node bench/profile.mjs bench/targets/bare-proxy.mjs 15        # stock fastify, the same load
//   PROFILE_PACED=true node bench/profile.mjs dist/cli.js 15      # paired.mjs's pace: -c8, 10 ms pauses
//   PROFILE_ALLOC=true node bench/profile.mjs dist/cli.js 15      # bytes allocated per request, by whom
//   PROFILE_GC=true node bench/profile.mjs dist/cli.js 15         # garbage collections over the run, µs per request, peak RSS
//   PROFILE_GC=true PROFILE_PACED=true node bench/profile.mjs dist/cli.js 150 NODE_OPTIONS=--max-semi-space-size=8
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const [cliArg, secondsArg, ...envArgs] = process.argv.slice(2);
const cli = resolve(cliArg ?? join(here, '..', 'dist', 'cli.js'));
const seconds = Number(secondsArg ?? 10);
const extraEnv = Object.fromEntries(envArgs.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
/** A bench target (stock fastify …) rather than the gateway: no sign-in, PORT/UPSTREAM. */
const plainTarget = !cli.endsWith('cli.js');
const PACED = process.env.PROFILE_PACED === 'true';
/** Allocations instead of CPU: V8's sampling heap profiler over the measured run (targets/alloc-sampler.mjs). */
const ALLOC = process.env.PROFILE_ALLOC === 'true';
/** Garbage collections instead of CPU: V8's own timings of each, over the measured run (targets/gc-sampler.mjs). */
const GC = process.env.PROFILE_GC === 'true';
/** A plain target has no SIGTERM handler, and the profile is written only on an orderly exit. */
const EXIT_ON_SIGTERM = `--import=data:text/javascript,${encodeURIComponent("process.on('SIGTERM', () => process.exit(0))")}`;
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const freePort = () =>
  new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });

const work = mkdtempSync(join(tmpdir(), 'sgw-profile-'));
mkdirSync(join(work, 'tmp'));
const profDir = join(work, 'profile');
const allocFile = join(work, 'allocations.heapprofile');
const gcFile = join(work, 'gc.json');
const procs = [];
const stopAll = () => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
};
try {
  const [redisPort, upPort, gwPort] = [await freePort(), await freePort(), await freePort()];
  procs.push(spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', work], { stdio: 'ignore' }));
  writeFileSync(
    join(work, 'nginx.conf'),
    `daemon off; master_process off; pid ${work}/nginx.pid; error_log ${work}/error.log warn; events {}
http { access_log off; client_body_temp_path ${work}/tmp; proxy_temp_path ${work}/tmp; fastcgi_temp_path ${work}/tmp;
  uwsgi_temp_path ${work}/tmp; scgi_temp_path ${work}/tmp; server { listen 127.0.0.1:${upPort}; location / { return 200 "ok"; } } }`,
  );
  procs.push(spawn(process.env.NGINX ?? '/usr/sbin/nginx', ['-c', join(work, 'nginx.conf'), '-p', work], { stdio: 'ignore' }));
  const profiler = ALLOC
    ? ['--import', join(here, 'targets', 'alloc-sampler.mjs')]
    : GC
      ? ['--import', join(here, 'targets', 'gc-sampler.mjs')]
      : ['--cpu-prof', '--cpu-prof-dir', profDir, '--cpu-prof-interval', '200'];
  const gw = spawn(process.execPath, [...profiler, ...(plainTarget ? [EXIT_ON_SIGTERM, cli] : [cli, 'serve'])], {
    env: {
      ...process.env, ALLOC_PROFILE_FILE: allocFile, GC_PROFILE_FILE: gcFile, PORT: String(gwPort), UPSTREAM: `http://127.0.0.1:${upPort}`, GATEWAY_HOST: '127.0.0.1', GATEWAY_PORT: String(gwPort), GATEWAY_ADMIN_HOST: '127.0.0.1', GATEWAY_ADMIN_PORT: '0',
      GATEWAY_UPSTREAM: `http://127.0.0.1:${upPort}`, REDIS_URL: `redis://127.0.0.1:${redisPort}`, GATEWAY_SESSION_SECRET: 'bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz',
      GATEWAY_COOKIE_SECURE: 'false', GATEWAY_SHUTDOWN_DELAY: '0s', ...extraEnv,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  procs.push(gw);
  let stderr = '';
  gw.stderr.on('data', (d) => (stderr += d));
  const url = `http://127.0.0.1:${gwPort}`;
  for (let i = 0; i < 150; i++) {
    try {
      await fetch(plainTarget ? url : `${url}/_auth/login`);
      break;
    } catch {
      await sleep(100);
    }
  }
  let cookie = 'none=1';
  if (!plainTarget) {
    const password = /password \(shown once\):\s+(\S+)/.exec(stderr)?.[1];
    const login = await fetch(`${url}/_auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'demo', password }) });
    cookie = login.headers.getSetCookie().find((c) => c.startsWith('sgw_session='))?.split(';')[0];
    if (!cookie) throw new Error(`login failed: ${login.status}`);
  }
  const load = PACED ? ['-c8', '-s', join(here, 'targets', 'paced.lua')] : ['-c32'];
  const wrk = (d) => execFileSync('wrk', ['-t1', ...load, `-d${d}s`, '-H', `cookie: ${cookie}`, `${url}/`]).toString();
  wrk(3); // warm-up
  const ticks = () => {
    const f = readFileSync(`/proc/${gw.pid}/stat`, 'utf8');
    const x = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return Number(x[11]) + Number(x[12]);
  };
  if (ALLOC || GC) gw.kill('SIGUSR2'); // start sampling
  // The run's own peak RSS: VmHWM reset to the current RSS first (Linux; as root or the target's owner).
  if (GC) writeFileSync(`/proc/${gw.pid}/clear_refs`, '5');
  const t0 = ticks();
  const out = wrk(seconds);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  if (/Non-2xx/.test(out)) throw new Error('non-2xx answers under load');
  const cpuUs = ((ticks() - t0) / CLK_TCK / requests) * 1e6;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
  if (ALLOC) {
    gw.kill('SIGUSR2'); // stop and write
    for (let i = 0; i < 100 && !existsSync(allocFile); i++) await sleep(100);
    await sleep(500);
    gw.kill('SIGTERM');
    console.log(`${cli} ${envArgs.join(' ')}: ${rps.toFixed(0)} req/s, ${requests} requests, ${cpuUs.toFixed(1)} CPU µs/request (/proc), allocation profile ${allocFile}\n`);
    console.log(allocations(JSON.parse(readFileSync(allocFile, 'utf8')), requests));
    stopAll(); // process.exit skips the `finally` below
    process.exit(0);
  }
  if (GC) {
    const peakMiB = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${gw.pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
    gw.kill('SIGUSR2');
    for (let i = 0; i < 100 && !existsSync(gcFile); i++) await sleep(100);
    gw.kill('SIGTERM');
    const kinds = Object.entries(JSON.parse(readFileSync(gcFile, 'utf8')));
    console.log(`${cli} ${envArgs.join(' ')}: ${rps.toFixed(0)} req/s, ${requests} requests, ${cpuUs.toFixed(1)} CPU µs/request (/proc), peak RSS ${peakMiB.toFixed(1)} MiB\n`);
    const rows = kinds.map(([k, t]) => (typeof t === 'number' ? `| ${k} | ${t} | | |` : `| ${k} | ${t.count} | ${t.ms.toFixed(1)} | ${((t.ms * 1000) / requests).toFixed(2)} |`));
    console.log(['| collection | count | ms in all | µs/request |', '| --- | ---: | ---: | ---: |', ...rows].join('\n'));
    stopAll(); // process.exit skips the `finally` below
    process.exit(0);
  }
  gw.kill('SIGTERM');
  await new Promise((r) => gw.on('exit', r));
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  console.log(`${cli} ${envArgs.join(' ')}: ${rps.toFixed(0)} req/s, ${cpuUs.toFixed(1)} CPU µs/request (/proc, all threads), profile ${join(profDir, file)}\n`);
  console.log(attribute(JSON.parse(readFileSync(join(profDir, file), 'utf8')), cpuUs));
} finally {
  stopAll();
}

/** Shares of the main thread's busy samples (idle and start-up left out) → µs per request. */
function attribute(profile, cpuUs) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const time = new Map();
  profile.samples.forEach((id, i) => time.set(id, (time.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const name = (n) => `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url}:${n.callFrame.lineNumber + 1}`;
  const stackOf = (id) => {
    const s = [];
    for (let c = id; c !== undefined; c = parent.get(c)) s.push(name(byId.get(c)));
    return s;
  };
  /** Whether a frame matching `outer` is on the stack with no frame matching `unless` between it and the leaf. */
  const beneath = (s, outer, unless) => {
    const at = s.findIndex((k) => outer.test(k));
    return at !== -1 && !s.slice(0, at).some((k) => unless.test(k));
  };
  const inHook = (s) => s.some((k) => /dist\/app\.js/.test(k) && /^\(anon\)/.test(k)) && s.some((k) => /onResponseHookIterator/.test(k));
  const buckets = {
    'access line: build, format, time stamp, stream write (onResponse)': (s) => inHook(s) && s.some((k) => /pino\/lib|sonic-boom|isoTime|writeAccessLine|access .*logger\.js/.test(k)),
    'access line: asynchronous write completion (sonic-boom release)': (s) => s.some((k) => /SonicBoom\.release|releaseWritingBuf/.test(k)) && !inHook(s),
    'per-request child logger (createChildLogger, RequestLogger)': (s) => s.some((k) => /createChildLogger|requestLoggerFactory/.test(k)),
    'metrics (prom-client, and the bound series of admin/bound-metrics.ts)': (s) => s.some((k) => /prom-client\/lib\/(histogram|counter)|dist\/admin\/(bound-)?metrics\.js/.test(k)),
    'request id (genReqId, randomUUID)': (s) => s.some((k) => /genReqId/.test(k)),
    'identity headers, hop-by-hop (identity/headers.js, proxy/hop-by-hop.js)': (s) => s.some((k) => /dist\/(identity\/headers|proxy\/hop-by-hop)\.js/.test(k)),
    // The preHandler passes a cached session on synchronously, so the whole upstream call can run
    // beneath it: only what runs before any fastify or proxy frame counts here.
    'session check and access decision (authenticate, access/gate.js)': (s) => beneath(s, /^authenticate .*dist\/proxy\/routes\.js|dist\/access\/gate\.js/, /node_modules\/(fastify|undici|@fastify\/(reply-from|http-proxy))\//),
    'socket and log writes (the write system calls)': (s) => /^(writev|writeString|writeUtf8String|writeLatin1String|writeBuffer) /.test(s[0]),
    'path normalisation (rewriteUrl)': (s) => s.some((k) => /rewriteToNormalisedUrl/.test(k)),
    'undici + reply-from (the upstream call)': (s) => s.some((k) => /node_modules\/(undici|@fastify\/reply-from)\//.test(k)),
    'garbage collector': (s) => s[0].startsWith('(garbage collector)'),
  };
  let busy = 0;
  const acc = Object.fromEntries(Object.keys(buckets).map((k) => [k, 0]));
  // Self time by where the sampled frame itself is (a package, a gateway file, a Node module, a native
  // function such as a system call): what the buckets above miss when a request takes the proxy's
  // fast path, whose work runs beneath undici's callbacks.
  const self = new Map();
  for (const [id, t] of time) {
    const s = stackOf(id);
    if (/^\((idle|program)\)/.test(s[0])) continue;
    if (s.some((k) => /node:internal\/modules|buildApp|startGateway/.test(k))) continue; // start-up
    busy += t;
    for (const [bucket, test] of Object.entries(buckets)) if (test(s)) acc[bucket] += t;
    const where = placeOf(byId.get(id).callFrame);
    self.set(where, (self.get(where) ?? 0) + t);
  }
  const rows = Object.entries(acc).map(([bucket, t]) => `| ${bucket} | ${((100 * t) / busy).toFixed(1)} % | ${((cpuUs * t) / busy).toFixed(1)} |`);
  const selfRows = [...self].sort((a, b) => b[1] - a[1]).slice(0, 20).map(([where, t]) => `| ${where} | ${((100 * t) / busy).toFixed(1)} % | ${((cpuUs * t) / busy).toFixed(1)} |`);
  return [
    `| part (buckets may overlap) | share of busy main-thread samples | ≈ µs/request |`, '| --- | ---: | ---: |', ...rows, '',
    `| self time, where (top 20) | share of busy main-thread samples | ≈ µs/request |`, '| --- | ---: | ---: |', ...selfRows,
  ].join('\n');
}

/** A frame's place: its package (node_modules), gateway file (dist/), Node module, or native name. */
function placeOf(frame) {
  const { url, functionName } = frame;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg) return pkg[1];
  const own = /\/dist\/(.+)$/.exec(url);
  if (own) return `gateway ${own[1]}`;
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  return url === '' ? `${functionName || '(anon)'} (native)` : url;
}

/** Bytes allocated per request, by the nearest package or gateway file on the stack, and by site. */
function allocations(profile, requests) {
  const where = (f) => `${f.functionName || '(anon)'} ${f.url.replace(/^.*node_modules\//, '').replace(/^file:.*\/dist\//, 'dist/')}:${f.lineNumber + 1}`;
  const byOwner = new Map();
  const bySite = new Map();
  let total = 0;
  const walk = (node, stack) => {
    const site = where(node.callFrame);
    if (node.selfSize > 0) {
      total += node.selfSize;
      bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
      const owner = [node.callFrame, ...stack].find((f) => /node_modules|\/dist\//.test(f.url));
      const name = owner ? owner.url.replace(/^.*node_modules\/((@[^/]+\/)?[^/]+).*/, '$1').replace(/^file:.*\/dist\//, 'dist/') : 'Node itself';
      byOwner.set(name, (byOwner.get(name) ?? 0) + node.selfSize);
    }
    for (const child of node.children) walk(child, [node.callFrame, ...stack]);
  };
  walk(profile.head, []);
  const rows = (map, n) => [...map].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => `| ${k} | ${Math.round(v / requests)} |`);
  return [
    `Sampled allocations: ${Math.round(total / requests)} bytes per request.`,
    '',
    '| allocated under (nearest package or gateway file) | bytes/request |',
    '| --- | ---: |',
    ...rows(byOwner, 20),
    '',
    '| allocation site | bytes/request |',
    '| --- | ---: |',
    ...rows(bySite, 15),
  ].join('\n');
}
