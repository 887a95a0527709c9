// Renders docs/dashboard.png: the main panels of deploy/grafana/dashboards/session-gateway.json,
// computed from real samples of a real gateway's /metrics under mixed load. Not a Grafana
// screenshot: the same PromQL arithmetic (rate over a window, histogram_quantile over the buckets,
// ratios) done here on the scraped samples, drawn as SVG and photographed by headless Chromium.
//
//   npm ci && npm run build && (cd bench && npm ci) && node bench/dashboard-snapshot.mjs
//
// Needs redis-server and /usr/bin/chromium (Debian packages redis-server, chromium). Starts its
// own redis-server, an in-process upstream and two gateway replicas sharing that Redis, as in
// deploy/docker-compose.yml, but each with its generated user instead of PostgreSQL; every
// request goes to a random replica, as through a load balancer without stickiness. All on
// 127.0.0.1, stopped by PID at the end. Knobs: SNAPSHOT_DURATION (seconds, default 75),
// SNAPSHOT_OUT (default docs/dashboard.png), CHROMIUM (default /usr/bin/chromium).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { Agent, createServer as createHttpServer, request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const DURATION_S = Number(process.env.SNAPSHOT_DURATION ?? 75);
const OUT = process.env.SNAPSHOT_OUT ?? join(root, 'docs', 'dashboard.png');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
/** Samples per rate window: 1 s scrapes, 5 s windows (what Grafana's $__rate_interval gives at 1 s). */
const WINDOW = 5;
const SECRET = 'snapshot-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
const work = mkdtempSync(join(tmpdir(), 'sgw-snapshot-'));
const children = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...args) => console.error('[snapshot]', ...args);

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

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

function start(command, args, env = {}) {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  const entry = { child, stderr: '' };
  child.stderr.on('data', (d) => (entry.stderr += d));
  children.push(child);
  return entry;
}

async function stopAll() {
  for (const child of children.reverse()) if (child.exitCode === null) child.kill('SIGTERM');
  await sleep(500);
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
}

async function waitHttp(url) {
  for (let i = 0; i < 150; i++) {
    try {
      await (await fetch(url)).arrayBuffer();
      return;
    } catch {
      await sleep(100);
    }
  }
  throw new Error(`${url} did not answer`);
}

// ---------------------------------------------------------------------------------------------
// The app behind the gateway: mostly quick pages, some slow reports, a rare 500.
// ---------------------------------------------------------------------------------------------

function startUpstream() {
  const server = createHttpServer((req, res) => {
    const slow = req.url.startsWith('/reports');
    const ms = slow ? 80 + Math.random() * 120 : 1 + Math.random() * Math.random() * 12;
    setTimeout(() => {
      if (req.url.startsWith('/reports/broken')) res.writeHead(500).end('boom');
      else res.writeHead(200, { 'content-type': 'text/html' }).end(`<p>${req.headers['x-forwarded-user'] ?? ''}</p>`);
    }, ms);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// ---------------------------------------------------------------------------------------------
// Load: browsers that log in, click around and log out; a crawler without a session; stale tabs
// replaying logged-out cookies; and a password-guessing burst from one address.
// ---------------------------------------------------------------------------------------------

const agent = new Agent({ keepAlive: true, maxSockets: 256 });

/** One request to one replica, or to a random one of a list (the load balancer). */
function send(replica, method, path, headers = {}, body) {
  const base = Array.isArray(replica) ? pick(replica).url : replica.url;
  return new Promise((resolve) => {
    const req = httpRequest(`${base}${path}`, { method, headers, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers }));
    });
    req.on('error', () => resolve({ status: 0, headers: {} }));
    if (body) req.end(body);
    else req.end();
  });
}

/** How many browsers are active t seconds into the run: quiet, morning rush, lull, busy again. */
function browsersAt(t) {
  const f = t / DURATION_S;
  if (f < 0.2) return 4;
  if (f < 0.5) return 14;
  if (f < 0.7) return 7;
  return 11;
}

const pick = (xs) => xs[Math.floor(Math.random() * xs.length)];
const PAGES = ['/', '/orders', '/orders/42', '/customers', '/customers/7/invoices', '/search?q=widgets', '/settings'];

function loginRequest(replica, username, password, ip) {
  const headers = { 'content-type': 'application/json', 'x-forwarded-for': ip };
  return send(replica, 'POST', '/_auth/login', headers, JSON.stringify({ username, password }));
}

/** Logs in on one replica (each has its own generated password), then clicks around on any. */
async function browser(replicas, n, startedAt, deadline, staleCookies) {
  const ip = `10.20.${n >> 8}.${n & 255}`;
  while (Date.now() < deadline) {
    if (n >= browsersAt((Date.now() - startedAt) / 1000)) {
      await sleep(250);
      continue;
    }
    const replica = pick(replicas);
    // Now and then a typo first.
    if (Math.random() < 0.08) await loginRequest(replica, 'demo', `${replica.password}x`, ip);
    const login = await loginRequest(replica, 'demo', replica.password, ip);
    const cookie = (login.headers['set-cookie'] ?? []).find((c) => c.startsWith('sgw_session='))?.split(';')[0];
    if (!cookie) {
      await sleep(500);
      continue;
    }
    const clicks = 80 + Math.floor(Math.random() * 200);
    for (let i = 0; i < clicks && Date.now() < deadline; i++) {
      const r = Math.random();
      const path = r < 0.003 ? '/reports/broken' : r < 0.009 ? '/reports/monthly' : pick(PAGES);
      const accept = Math.random() < 0.6 ? 'text/html' : 'application/json';
      await send(replicas, 'GET', path, { cookie, accept, 'x-forwarded-for': ip });
      await sleep(Math.random() * 6);
    }
    await send(replicas, 'POST', '/_auth/logout', { cookie, 'x-forwarded-for': ip });
    staleCookies.push(cookie);
  }
}

/** Old tabs and bookmarks: requests with no cookie, or with a cookie whose session was logged out. */
async function strays(replicas, deadline, staleCookies) {
  while (Date.now() < deadline) {
    const stale = staleCookies.length > 0 && Math.random() < 0.5 ? pick(staleCookies) : undefined;
    await send(replicas, 'GET', pick(PAGES), { accept: 'text/html', ...(stale ? { cookie: stale } : {}) });
    await sleep(40 + Math.random() * 60);
  }
}

/** A guessing burst from one address against a few usernames: failures, then throttled. */
async function guesser(replicas, startedAt, deadline) {
  const from = startedAt + DURATION_S * 0.35 * 1000;
  const until = startedAt + DURATION_S * 0.55 * 1000;
  while (Date.now() < from) await sleep(100);
  for (let i = 0; Date.now() < Math.min(until, deadline); i++) {
    await loginRequest(replicas, pick(['admin', 'root', 'test', 'operator']), `Summer20${i % 30}!`, '203.0.113.77');
    await sleep(120);
  }
}

// ---------------------------------------------------------------------------------------------
// Scraping and the dashboard's arithmetic
// ---------------------------------------------------------------------------------------------

/** Samples of one scrape, with the instance label Prometheus would add. */
function parseSamples(text, instance) {
  const samples = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    samples.push({ name: m[1], labels: { ...labels, instance }, value: Number(m[3]) });
  }
  return samples;
}

/** sum(name{filter}) of one scrape. */
function sum(scrape, name, filter = {}) {
  let total = 0;
  for (const s of scrape.samples) {
    if (s.name === name && Object.entries(filter).every(([k, v]) => (v instanceof RegExp ? v.test(s.labels[k]) : s.labels[k] === v))) total += s.value;
  }
  return total;
}

/** Values of one label across a metric's samples in any scrape, e.g. every status_class seen. */
function labelValues(scrapes, name, label) {
  const values = new Set();
  for (const scrape of scrapes) for (const s of scrape.samples) if (s.name === name && s.labels[label] !== undefined) values.add(s.labels[label]);
  return [...values].sort();
}

/** One point per scrape from WINDOW on: f(current, window start, seconds between them). */
function windowed(scrapes, f) {
  return scrapes.map((cur, i) => (i < WINDOW ? null : f(cur, scrapes[i - WINDOW], (cur.at - scrapes[i - WINDOW].at) / 1000)));
}

/** sum(rate(name{filter}[window])) */
const rate = (scrapes, name, filter) => windowed(scrapes, (cur, old, dt) => (sum(cur, name, filter) - sum(old, name, filter)) / dt);

/** sum(rate(a[w])) / sum(rate(b[w])), a gap while nothing happened (as in Prometheus: NaN). */
const ratio = (scrapes, a, aFilter, b, bFilter) =>
  windowed(scrapes, (cur, old) => {
    const den = sum(cur, b, bFilter) - sum(old, b, bFilter);
    return den > 0 ? (sum(cur, a, aFilter) - sum(old, a, aFilter)) / den : null;
  });

/** histogram_quantile(q, sum by (le) (rate(name_bucket{filter}[window]))), Prometheus' interpolation. */
function quantile(scrapes, q, name, filter = {}) {
  const les = labelValues(scrapes, `${name}_bucket`, 'le');
  return windowed(scrapes, (cur, old) => {
    const buckets = les
      .map((le) => ({ le: le === '+Inf' ? Infinity : Number(le), count: sum(cur, `${name}_bucket`, { ...filter, le }) - sum(old, `${name}_bucket`, { ...filter, le }) }))
      .sort((a, b) => a.le - b.le);
    const total = buckets.at(-1)?.count ?? 0;
    if (total <= 0) return null;
    const rank = q * total;
    let prevLe = 0;
    let prevCount = 0;
    for (const { le, count } of buckets) {
      if (count >= rank) {
        if (le === Infinity) return prevLe; // the highest finite bound, as Prometheus does
        return prevLe + ((le - prevLe) * (rank - prevCount)) / (count - prevCount || 1);
      }
      prevLe = le;
      prevCount = count;
    }
    return prevLe;
  });
}

const gauge = (scrapes, name, filter) => scrapes.map((s) => sum(s, name, filter));

// ---------------------------------------------------------------------------------------------
// Drawing
// ---------------------------------------------------------------------------------------------

const COLORS = { green: '#73bf69', yellow: '#fade2a', red: '#f2495c', blue: '#5794f2', orange: '#ff9830', purple: '#b877d9', cyan: '#8ab8ff', darkred: '#c4162a' };
const STATUS_COLORS = { '1xx': COLORS.purple, '2xx': COLORS.green, '3xx': COLORS.blue, '4xx': COLORS.orange, '5xx': COLORS.red };
const OUTCOME_COLORS = { success: COLORS.green, valid: COLORS.green, failure: COLORS.orange, missing: COLORS.blue, invalid: COLORS.orange, expired: COLORS.purple, throttled: COLORS.red, revoked: COLORS.yellow, error: COLORS.darkred };

const UNITS = {
  reqps: (v) => `${fmt(v)} req/s`,
  ops: (v) => `${fmt(v)} ops/s`,
  s: (v) => (v === 0 || v >= 1 ? `${fmt(v)} s` : v >= 0.001 ? `${fmt(v * 1000)} ms` : `${fmt(v * 1e6)} µs`),
  percent: (v) => `${fmt(v * 100)}%`,
  bytes: (v) => (v === 0 ? '0 B' : v >= 2 ** 30 ? `${fmt(v / 2 ** 30)} GiB` : v >= 2 ** 20 ? `${fmt(v / 2 ** 20)} MiB` : `${fmt(v / 1024)} KiB`),
  short: (v) => (v >= 1e6 ? `${fmt(v / 1e6)} M` : v >= 1e3 ? `${fmt(v / 1e3)} K` : fmt(v)),
};

function fmt(v) {
  if (v === 0) return '0';
  const abs = Math.abs(v);
  return abs >= 100 ? v.toFixed(0) : abs >= 10 ? v.toFixed(1).replace(/\.0$/, '') : v.toFixed(2).replace(/\.?0+$/, '');
}

/** 4–6 round tick values from 0 to at least max. */
function ticks(max) {
  if (!(max > 0)) return [0, 1];
  const raw = max / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let v = 0; v <= max + step * 0.999; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function clock(ms) {
  return new Date(ms).toISOString().slice(11, 19);
}

/** A Grafana-style time series panel as SVG; series: [{ name, color, values }]. */
function chart({ title, unit, series, times, width, height, max, stack = false }) {
  const pad = { left: 64, right: 12, top: 34, bottom: 26 };
  const legendH = 18 * (series.length + 1) + 8;
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom - legendH;
  const shown = stack ? stacked(series) : series.map((s) => ({ ...s, top: s.values, base: s.values.map(() => 0) }));
  const peak = Math.max(0, ...shown.flatMap((s) => s.top.filter((v) => v !== null)));
  // Bytes get binary-round ticks (64 MiB, not 47.7 MiB).
  const scale = unit === 'bytes' ? 2 ** 20 : 1;
  const yTicks = ticks((max ?? peak * 1.1) / scale).map((v) => v * scale);
  const yMax = yTicks.at(-1);
  const t0 = times[0];
  const span = times.at(-1) - t0 || 1;
  const x = (t) => pad.left + ((t - t0) / span) * plotW;
  const y = (v) => pad.top + plotH - (Math.min(v, yMax) / yMax) * plotH;
  const format = UNITS[unit];
  let svg = `<svg width="${width}" height="${height}" xmlns="http://www.w3.org/2000/svg">`;
  svg += `<text x="12" y="21" class="title">${title}</text>`;
  // A labelled counter that never moved has no series at all: Grafana says "No data".
  if (series.length === 0) return `<div class="panel" style="width:${width}px;height:${height}px">${svg}<text x="${width / 2}" y="${height / 2}" class="nodata" text-anchor="middle">No data</text></svg></div>`;
  for (const v of yTicks) {
    svg += `<line x1="${pad.left}" x2="${width - pad.right}" y1="${y(v)}" y2="${y(v)}" class="grid"/>`;
    svg += `<text x="${pad.left - 8}" y="${y(v) + 4}" class="axis" text-anchor="end">${format(v)}</text>`;
  }
  const labelEvery = Math.ceil(span / 1000 / 6 / 10) * 10 * 1000;
  for (let t = Math.ceil(t0 / labelEvery) * labelEvery; x(t) < width - pad.right - 28; t += labelEvery) {
    svg += `<line x1="${x(t)}" x2="${x(t)}" y1="${pad.top}" y2="${pad.top + plotH}" class="grid"/>`;
    svg += `<text x="${x(t)}" y="${pad.top + plotH + 17}" class="axis" text-anchor="middle">${clock(t)}</text>`;
  }
  for (const s of [...shown].reverse()) {
    const runs = segments(times, s);
    for (const run of runs) {
      const line = run.map((p) => `${x(p.t).toFixed(1)},${y(p.top).toFixed(1)}`).join(' L');
      const back = [...run].reverse().map((p) => `${x(p.t).toFixed(1)},${y(p.base).toFixed(1)}`).join(' L');
      svg += `<path d="M${line} L${back} Z" fill="${s.color}" fill-opacity="${stack ? 0.3 : 0.08}"/>`;
      svg += `<path d="M${line}" fill="none" stroke="${s.color}" stroke-width="1.6" stroke-linejoin="round"/>`;
    }
  }
  // Table legend with the dashboard's calcs (last, max), as displayMode "table" draws it.
  const legendTop = height - legendH;
  svg += `<text x="${width - 96}" y="${legendTop + 12}" class="axis" text-anchor="end">Last</text>`;
  svg += `<text x="${width - 16}" y="${legendTop + 12}" class="axis" text-anchor="end">Max</text>`;
  series.forEach((s, i) => {
    const ly = legendTop + 30 + i * 18;
    const values = s.values.filter((v) => v !== null);
    svg += `<rect x="14" y="${ly - 6}" width="14" height="4" rx="1" fill="${s.color}"/>`;
    svg += `<text x="34" y="${ly}" class="legend">${s.name}</text>`;
    svg += `<text x="${width - 96}" y="${ly}" class="legend" text-anchor="end">${values.length ? format(values.at(-1)) : 'no data'}</text>`;
    svg += `<text x="${width - 16}" y="${ly}" class="legend" text-anchor="end">${values.length ? format(Math.max(...values)) : ''}</text>`;
  });
  return `<div class="panel" style="width:${width}px;height:${height}px">${svg}</svg></div>`;
}

/** Stacked series: each series' top is the running sum; gaps stay gaps. */
function stacked(series) {
  const acc = series[0]?.values.map(() => 0) ?? [];
  return series.map((s) => {
    const base = [...acc];
    const top = s.values.map((v, i) => (v === null ? null : (acc[i] += v)));
    return { ...s, base, top };
  });
}

function segments(times, s) {
  const runs = [];
  let run = [];
  s.top.forEach((v, i) => {
    if (v === null) {
      if (run.length) runs.push(run);
      run = [];
    } else run.push({ t: times[i], top: v, base: s.base[i] ?? 0 });
  });
  if (run.length) runs.push(run);
  return runs;
}

/** A stat panel: the last value, coloured by thresholds, over a sparkline of the run. */
function stat({ title, unit, values, thresholds, width }) {
  const present = values.filter((v) => v !== null);
  const last = present.at(-1) ?? 0;
  const color = thresholds.filter(([from]) => last >= from).at(-1)?.[1] ?? COLORS.green;
  const height = 108;
  const peak = Math.max(...present, 1e-9);
  const pts = values.map((v, i) => (v === null ? null : [(i / (values.length - 1)) * width, height - 4 - (v / peak) * 40])).filter(Boolean);
  const spark = pts.length ? `<path d="M${pts.map((p) => p.map((c) => c.toFixed(1)).join(',')).join(' L')} L${width},${height} L0,${height} Z" fill="${color}" fill-opacity="0.18" stroke="${color}" stroke-opacity="0.6"/>` : '';
  return `<div class="panel" style="width:${width}px;height:${height}px"><svg width="${width}" height="${height}">${spark}
    <text x="12" y="21" class="title">${title}</text>
    <text x="${width / 2}" y="68" class="stat" fill="${color}" text-anchor="middle">${UNITS[unit](last)}</text></svg></div>`;
}

function page({ scrapes, replicas, summary }) {
  const times = scrapes.map((s) => s.at);
  const W = 1600;
  const GAP = 8;
  const col = (n) => Math.floor((W - GAP * (n - 1)) / n);
  const I = {}; // $instance = All: every replica
  const count = 'gateway_request_duration_seconds_count';
  const classes = labelValues(scrapes, count, 'status_class');
  const stats = [
    stat({ title: 'Requests/s', unit: 'reqps', values: rate(scrapes, count, I), thresholds: [[0, COLORS.blue]], width: col(6) }),
    stat({ title: 'p99 latency', unit: 's', values: quantile(scrapes, 0.99, 'gateway_request_duration_seconds'), thresholds: [[0, COLORS.green], [0.25, COLORS.orange], [1, COLORS.red]], width: col(6) }),
    stat({ title: '5xx ratio', unit: 'percent', values: ratio(scrapes, count, { status_class: '5xx' }, count, I), thresholds: [[0, COLORS.green], [0.01, COLORS.orange], [0.05, COLORS.red]], width: col(6) }),
    stat({ title: 'Session cache hit ratio', unit: 'percent', values: ratio(scrapes, 'gateway_session_cache_requests_total', { result: 'hit' }, 'gateway_session_cache_requests_total', I), thresholds: [[0, COLORS.red], [0.5, COLORS.orange], [0.8, COLORS.green]], width: col(6) }),
    stat({ title: 'Failed logins/s', unit: 'reqps', values: rate(scrapes, 'gateway_logins_total', { outcome: /^(failure|throttled)$/ }), thresholds: [[0, COLORS.green], [1, COLORS.orange], [10, COLORS.red]], width: col(6) }),
    stat({ title: 'Store errors/s', unit: 'reqps', values: rate(scrapes, 'gateway_store_errors_total', I), thresholds: [[0, COLORS.green], [0.01, COLORS.red]], width: col(6) }),
  ];
  /** One series per replica, legend {{instance}} as on the dashboard. */
  const perInstance = (values, prefix = '', colors = [COLORS.blue, COLORS.green]) =>
    replicas.map((r, i) => ({ name: `${prefix}${r.instance}`, color: colors[i % colors.length], values: values(r.instance) }));
  const byLabel = (metric, label, colors) =>
    labelValues(scrapes, metric, label).map((v) => ({ name: v, color: colors[v] ?? COLORS.cyan, values: rate(scrapes, metric, { [label]: v }) }));
  const quantiles = (metric) => [
    { name: 'p50', color: COLORS.green, values: quantile(scrapes, 0.5, metric) },
    { name: 'p90', color: COLORS.yellow, values: quantile(scrapes, 0.9, metric) },
    { name: 'p99', color: COLORS.red, values: quantile(scrapes, 0.99, metric) },
  ];
  const h = 300;
  const traffic = [
    chart({ title: 'Requests/s by status class', unit: 'reqps', stack: true, times, width: col(3), height: h, series: classes.map((c) => ({ name: c, color: STATUS_COLORS[c], values: rate(scrapes, count, { status_class: c }) })) }),
    chart({ title: 'Request latency', unit: 's', times, width: col(3), height: h, series: quantiles('gateway_request_duration_seconds') }),
    chart({ title: 'Upstream latency', unit: 's', times, width: col(3), height: h, series: quantiles('gateway_upstream_request_duration_seconds') }),
  ];
  const sessions = [
    chart({ title: 'Session cache hit ratio', unit: 'percent', max: 1, times, width: col(4), height: h, series: [{ name: 'hit ratio', color: COLORS.green, values: ratio(scrapes, 'gateway_session_cache_requests_total', { result: 'hit' }, 'gateway_session_cache_requests_total', I) }] }),
    chart({ title: 'Session validations by outcome', unit: 'reqps', stack: true, times, width: col(4), height: h, series: byLabel('gateway_session_validations_total', 'outcome', OUTCOME_COLORS) }),
    chart({ title: 'Session cache entries', unit: 'short', times, width: col(4), height: h, series: perInstance((instance) => gauge(scrapes, 'gateway_session_cache_entries', { instance })) }),
    chart({ title: 'Cache invalidations', unit: 'ops', times, width: col(4), height: h, series: byLabel('gateway_session_cache_invalidations_total', 'kind', { session: COLORS.blue, reset: COLORS.red }) }),
  ];
  const redisOps = labelValues(scrapes, 'gateway_store_operation_duration_seconds_count', 'operation').filter((op) => op !== 'find_user');
  const stores = [
    chart({ title: 'Logins by outcome', unit: 'reqps', stack: true, times, width: col(3), height: h, series: byLabel('gateway_logins_total', 'outcome', OUTCOME_COLORS) }),
    chart({ title: 'Store errors', unit: 'ops', times, width: col(3), height: h, series: byLabel('gateway_store_errors_total', 'store', { redis: COLORS.red, postgres: COLORS.orange }) }),
    chart({ title: 'Store operation latency (p99)', unit: 's', times, width: col(3), height: h, series: redisOps.map((op) => ({ name: `redis ${op}`, color: COLORS.purple, values: quantile(scrapes, 0.99, 'gateway_store_operation_duration_seconds', { store: 'redis', operation: op }) })) }),
  ];
  const processRow = [
    chart({ title: 'Memory', unit: 'bytes', times, width: col(3), height: h, series: [
      ...perInstance((instance) => gauge(scrapes, 'process_resident_memory_bytes', { instance }), 'rss '),
      ...perInstance((instance) => gauge(scrapes, 'nodejs_heap_size_used_bytes', { instance }), 'heap used ', [COLORS.orange, COLORS.yellow]),
    ] }),
    chart({ title: 'CPU', unit: 'percent', times, width: col(3), height: h, series: perInstance((instance) => rate(scrapes, 'process_cpu_seconds_total', { instance })) }),
    chart({ title: 'Event-loop lag (p99)', unit: 's', times, width: col(3), height: h, series: perInstance((instance) => gauge(scrapes, 'nodejs_eventloop_lag_p99_seconds', { instance })) }),
  ];
  const row = (title, panels) => `<div class="row">${title ? `<div class="rowtitle">⌄ ${title}</div>` : ''}<div class="panels">${panels.join('')}</div></div>`;
  return `<!doctype html><html><head><meta charset="utf-8"><style>
  body { margin: 0; background: #111217; font-family: Inter, "Helvetica Neue", Arial, sans-serif; color: #ccccdc; }
  .top { display: flex; align-items: center; gap: 12px; padding: 12px 16px; border-bottom: 1px solid #2c2d33; background: #181b1f; }
  .crumb { font-size: 17px; color: #d8d9da; } .crumb b { color: #fff; font-weight: 500; }
  .pill { font-size: 13px; padding: 5px 10px; border: 1px solid #34363c; border-radius: 2px; background: #111217; }
  .pill span { color: #8e8e9a; margin-right: 8px; }
  .spacer { flex: 1; }
  .content { padding: 10px 16px 16px; width: ${W}px; }
  .row { margin-bottom: 6px; } .panels { display: flex; gap: ${GAP}px; }
  .rowtitle { font-size: 15px; font-weight: 500; color: #d8d9da; margin: 8px 0 8px; }
  .panel { background: #181b1f; border: 1px solid #25262b; border-radius: 2px; overflow: hidden; }
  .title { fill: #d8d9da; font-size: 14px; font-weight: 500; }
  .axis { fill: #8e8e9a; font-size: 11px; } .grid { stroke: #2a2c31; stroke-width: 1; }
  .legend { fill: #ccccdc; font-size: 12px; } .muted { fill: #8e8e9a; }
  .stat { font-size: 34px; font-weight: 500; } .nodata { fill: #8e8e9a; font-size: 15px; }
  .caption { font-size: 12px; color: #8e8e9a; padding: 4px 16px 12px; }
  </style></head><body>
  <div class="top"><span class="crumb">Dashboards / session-gateway / <b>session-gateway</b></span>
    <span class="pill"><span>Data source</span>Prometheus</span><span class="pill"><span>Instance</span>All</span>
    <span class="spacer"></span><span class="pill">${clock(times[0])} to ${clock(times.at(-1))} UTC</span><span class="pill">⟳ 1s</span></div>
  <div class="content">
  ${row('', stats)}
  ${row('Traffic', traffic)}
  ${row('Sessions', sessions)}
  ${row('Logins and stores', stores)}
  ${row('Process', processRow)}
  </div>
  <div class="caption">${summary}</div>
  </body></html>`;
}

async function screenshot(html, out) {
  const profile = mkdtempSync(join(tmpdir(), 'sgw-snapshot-chromium-'));
  const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args, viewport: { width: 1632, height: 900 }, deviceScaleFactor: 1 });
  try {
    const tab = context.pages()[0] ?? (await context.newPage());
    await tab.setContent(html, { waitUntil: 'load' });
    mkdirSync(dirname(out), { recursive: true });
    await tab.screenshot({ path: out, fullPage: true });
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------

async function startReplica(redisUrl, upstreamUrl) {
  const [port, adminPort] = [await freePort(), await freePort()];
  const gw = start('node', [join(root, 'dist', 'cli.js'), 'serve'], {
    GATEWAY_HOST: '127.0.0.1', GATEWAY_PORT: String(port), GATEWAY_ADMIN_HOST: '127.0.0.1', GATEWAY_ADMIN_PORT: String(adminPort),
    GATEWAY_UPSTREAM: upstreamUrl, REDIS_URL: redisUrl, GATEWAY_SESSION_SECRET: SECRET, GATEWAY_COOKIE_SECURE: 'false',
    // The load generator stands in for many clients behind one load balancer on 127.0.0.1.
    GATEWAY_TRUSTED_PROXIES: '127.0.0.1',
  });
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  await waitHttp(`${adminUrl}/healthz`);
  const password = /password \(shown once\):\s+(\S+)/.exec(gw.stderr)?.[1];
  if (!password) throw new Error(`no generated password in the gateway's output:\n${gw.stderr}`);
  // Start-up (hashing the generated password) stalls the event loop; like a scrape Prometheus
  // took long before the picture starts, this one is not part of it.
  await (await fetch(`${adminUrl}/metrics`)).text();
  return { url: `http://127.0.0.1:${port}`, adminUrl, instance: `127.0.0.1:${adminPort}`, password };
}

async function scrapeAll(replicas) {
  const texts = await Promise.all(replicas.map(async (r) => (await fetch(`${r.adminUrl}/metrics`)).text()));
  return { at: Date.now(), samples: texts.flatMap((text, i) => parseSamples(text, replicas[i].instance)) };
}

async function main() {
  const redisPort = await freePort();
  start('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', work]);
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  const upstream = await startUpstream();
  const upstreamUrl = `http://127.0.0.1:${upstream.address().port}`;
  const replicas = [await startReplica(redisUrl, upstreamUrl), await startReplica(redisUrl, upstreamUrl)];

  log(`replicas ${replicas.map((r) => r.url).join(', ')}; sampling their /metrics every second for ${DURATION_S} s`);
  const startedAt = Date.now();
  const deadline = startedAt + DURATION_S * 1000;
  const staleCookies = [];
  const load = Promise.all([
    ...Array.from({ length: 16 }, (_, n) => browser(replicas, n, startedAt, deadline, staleCookies)),
    strays(replicas, deadline, staleCookies),
    guesser(replicas, startedAt, deadline),
  ]);
  const scrapes = [];
  for (let next = startedAt; next <= deadline; next += 1000) {
    await sleep(Math.max(0, next - Date.now()));
    scrapes.push(await scrapeAll(replicas));
  }
  await load;
  upstream.close();

  const last = scrapes.at(-1);
  const total = sum(last, 'gateway_request_duration_seconds_count');
  const logins = (o) => sum(last, 'gateway_logins_total', { outcome: o });
  const summary =
    `Rendered by bench/dashboard-snapshot.mjs from ${scrapes.length} one-second scrapes of two live replicas' /metrics ` +
    `(${total} requests, ${logins('success')} logins, ${logins('failure')} failed and ${logins('throttled')} throttled login attempts); ` +
    `rates and quantiles over ${WINDOW} s windows, the arithmetic of deploy/grafana/dashboards/session-gateway.json. ` +
    `Load generator, Redis and both replicas share one ${cpus().length}-core machine, so read the latencies as a picture, not a benchmark (bench/RESULTS.md). ` +
    `Users come from each replica's generated user, not PostgreSQL, so the store panels show Redis only.`;
  log(summary);
  await screenshot(page({ scrapes, replicas, summary }), OUT);
  log(`wrote ${OUT}`);
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(async () => {
    agent.destroy();
    await stopAll();
  });
