// One rule table through every door: the proxied HTTP routes and their fast path, the WebSocket
// upgrade, the forward-auth verify route and its fast path all render the one access decision (access/gate.ts).
// Each door's answer is read back as the verdict it rendered (and the identity it forwarded), and
// every door must agree with the table, so a door that drifts from the others fails here.
// The app is built in memory (buildApp, memory session store); the proxy and verify routes are
// driven with inject, the upgrade and the two fast paths (they live in front of fastify's router)
// through a real listener on 127.0.0.1.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../../src/app.js';
import { createMetrics } from '../../src/admin/metrics.js';
import { loadConfig } from '../../src/config/config.js';
import type { GatewayDeps } from '../../src/context.js';
import { createCsrfTokens } from '../../src/login/csrf.js';
import { createMemoryThrottle } from '../../src/login/throttle.js';
import { createLogger } from '../../src/logger.js';
import { createCookieSigner } from '../../src/session/id.js';
import { createLocalSessionCache } from '../../src/session/local-cache.js';
import { createSessionManager } from '../../src/session/manager.js';
import { createMemorySessionStore } from '../../src/session/memory-store.js';
import { createMemoryUserStore } from '../../src/users/user-store.js';
import { TEST_SECRET } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import { rawUpgrade, startWebSocketUpstream } from '../helpers/websocket.js';

const dir = mkdtempSync(join(tmpdir(), 'sgw-doors-'));
const rulesFile = join(dir, 'rules.json');
writeFileSync(rulesFile, JSON.stringify([
  { path: '/internal', policy: 'deny' },
  { path: '/admin', policy: { groups: ['admins'] }, forward_groups: ['admins'] },
  { path: '/orders', methods: ['DELETE'], policy: { groups: ['admins'] } },
]));

const upstream = await startWebSocketUpstream();
t.teardown(() => upstream.close());
const config = loadConfig({
  GATEWAY_HOST: '127.0.0.1',
  GATEWAY_PORT: '0',
  GATEWAY_UPSTREAM: upstream.url,
  GATEWAY_SESSION_SECRET: TEST_SECRET,
  GATEWAY_COOKIE_SECURE: 'false',
  GATEWAY_PUBLIC_PATHS: '/public',
  GATEWAY_LOGOUT_PATHS: '/app/logout',
  GATEWAY_ACCESS_RULES: rulesFile,
  // inject's peer and the test's own connections are 127.0.0.1: the "proxy" verify believes.
  GATEWAY_TRUSTED_PROXIES: '127.0.0.1',
  LOG_LEVEL: 'info',
});
const logs: string[] = [];
const logger = createLogger(config.logLevel, { write: (line: string) => void logs.push(line) });
// A clock that can be set back, to issue a session that has already gone idle.
let offsetMs = 0;
const now = () => Date.now() + offsetMs;
const sessions = createSessionManager({
  store: createMemorySessionStore({ now }),
  signer: createCookieSigner([TEST_SECRET]),
  cache: createLocalSessionCache({ maxEntries: 1_000, ttlMs: config.cacheTtlMs }),
  idleTimeoutMs: config.idleTimeoutMs,
  maxLifetimeMs: config.maxLifetimeMs,
  touchIntervalMs: config.touchIntervalMs,
  now,
});
const deps: GatewayDeps = {
  config,
  sessions,
  users: createMemoryUserStore([]),
  throttle: createMemoryThrottle({ maxPerUser: 10, maxPerIp: 100, windowMs: 60_000 }),
  csrf: createCsrfTokens(TEST_SECRET),
  metrics: createMetrics({ collectDefaults: false }),
  logger,
  upstream: new URL(upstream.url),
  identityTokens: null,
  mfa: null,
};
const app = await buildApp(deps);
// Counts requests that reached fastify's router, to tell the fast paths' answers apart.
let verifyRouted = 0;
let proxyRouted = 0;
app.addHook('onRequest', async (request) => {
  if (request.url === `${config.authPrefix}/verify`) verifyRouted++;
  else proxyRouted++;
});
await app.listen({ host: '127.0.0.1', port: 0 });
t.teardown(() => app.close());
const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;

const signIn = async (user: string, groups: string[]) => (await sessions.create({ user, email: `${user}@example.test`, groups })).cookieValue;
const ada = await signIn('ada', ['admins', 'payroll']);
const bob = await signIn('bob', ['staff']);
offsetMs = -(config.idleTimeoutMs + 60_000);
const expired = await signIn('eve', ['staff']);
offsetMs = 0;
const forged = `${randomBytes(16).toString('base64url')}.not-a-signature`;

type Kind = 'public' | 'allow' | 'login' | 'forbidden' | 'logout';
interface Row {
  who: string;
  /** A fresh session per door (logout ends it), or a fixed cookie, or none. */
  cookie: (() => Promise<string>) | string | null;
  method: string;
  path: string;
  verdict: Kind;
  /** What forward-auth decides instead: it has no logout paths, the rules decide there. */
  verifyVerdict?: Kind;
  /** Groups forwarded when allowed. */
  groups?: string;
  /** A refusal's audit line: the rule number, and the path when normalisation changes it. */
  rule?: number;
  auditPath?: string;
}
const table: Row[] = [
  { who: 'anonymous', cookie: null, method: 'GET', path: '/public/page', verdict: 'public' },
  { who: 'ada', cookie: ada, method: 'GET', path: '/public/page', verdict: 'public' },
  // Both readings must allow: as sent, `/public;jsessionid=1` is no public segment.
  { who: 'anonymous', cookie: null, method: 'GET', path: '/public;jsessionid=1/page', verdict: 'login' },
  { who: 'anonymous', cookie: null, method: 'GET', path: '/reports', verdict: 'login' },
  { who: 'ada', cookie: ada, method: 'GET', path: '/reports', verdict: 'allow', groups: 'admins,payroll' },
  { who: 'expired', cookie: expired, method: 'GET', path: '/reports', verdict: 'login' },
  { who: 'forged', cookie: forged, method: 'GET', path: '/reports', verdict: 'login' },
  { who: 'anonymous', cookie: null, method: 'GET', path: '/internal/x', verdict: 'forbidden', rule: 1 },
  { who: 'ada', cookie: ada, method: 'GET', path: '/internal/x', verdict: 'forbidden', rule: 1 },
  { who: 'ada', cookie: ada, method: 'GET', path: '/internal;x/y', verdict: 'forbidden', rule: 1 },
  { who: 'ada', cookie: ada, method: 'GET', path: '/;x/internal', verdict: 'forbidden', rule: 1 },
  { who: 'ada', cookie: ada, method: 'GET', path: '/internal;jsessionid=abc', verdict: 'forbidden', rule: 1 },
  { who: 'ada', cookie: ada, method: 'GET', path: '/public/x/../../internal', verdict: 'forbidden', rule: 1, auditPath: '/internal' },
  { who: 'anonymous', cookie: null, method: 'GET', path: '/admin/users', verdict: 'login' },
  { who: 'bob', cookie: bob, method: 'GET', path: '/admin/users', verdict: 'forbidden', rule: 2 },
  { who: 'bob', cookie: bob, method: 'GET', path: '/admin;x/users', verdict: 'forbidden', rule: 2 },
  { who: 'ada', cookie: ada, method: 'GET', path: '/admin/users', verdict: 'allow', groups: 'admins' },
  { who: 'bob', cookie: bob, method: 'GET', path: '/orders/7', verdict: 'allow', groups: 'staff' },
  { who: 'bob', cookie: bob, method: 'DELETE', path: '/orders/7', verdict: 'forbidden', rule: 3 },
  { who: 'ada', cookie: ada, method: 'DELETE', path: '/orders/7', verdict: 'allow', groups: 'admins,payroll' },
  { who: 'carol', cookie: () => signIn('carol', ['staff']), method: 'GET', path: '/app/logout', verdict: 'logout', verifyVerdict: 'allow', groups: 'staff' },
  { who: 'carol', cookie: () => signIn('carol', ['staff']), method: 'GET', path: '/app/logout;jsessionid=1', verdict: 'logout', verifyVerdict: 'allow', groups: 'staff' },
  { who: 'anonymous', cookie: null, method: 'GET', path: '/app/logout', verdict: 'logout', verifyVerdict: 'login' },
];

/** What a door did, read back as the verdict it rendered. */
interface Observed {
  verdict: Kind | `status ${number}`;
  user?: string;
  groups?: string;
  /** The fast path's listener only: who answered. */
  by?: 'fast path' | 'route';
}
const cookieHeader = (cookie: string | null) => (cookie === null ? {} : { cookie: `${config.cookieName}=${encodeURIComponent(cookie)}` });
const identity = (headers: IncomingHttpHeaders): Pick<Observed, 'user' | 'groups'> =>
  headers['x-forwarded-user'] === undefined ? {} : { user: String(headers['x-forwarded-user']), groups: String(headers['x-forwarded-groups'] ?? '') };

const read = (status: number, headers: IncomingHttpHeaders, forwarded: IncomingHttpHeaders | null): Observed => {
  if (status === 200 || status === 101 || status === 204) {
    const who = identity(forwarded ?? headers);
    return who.user === undefined ? { verdict: 'public' } : { verdict: 'allow', ...who };
  }
  if (status === 401) return { verdict: 'login' };
  if (status === 403) return { verdict: 'forbidden' };
  if (status === 303 && String(headers.location).endsWith('/login?logged_out=1')) return { verdict: 'logout' };
  return { verdict: `status ${status}` };
};

type Door = (row: Row, cookie: string | null) => Promise<Observed>;
const doors: Record<string, Door> = {
  async 'proxy HTTP'(row, cookie) {
    const res = await app.inject({ method: row.method, url: row.path, headers: { accept: 'application/json', ...cookieHeader(cookie) } });
    const forwarded = res.statusCode === 200 ? (JSON.parse(res.body) as { headers: IncomingHttpHeaders }).headers : null;
    return read(res.statusCode, res.headers as IncomingHttpHeaders, forwarded);
  },
  async 'proxy fast path'(row, cookie) {
    const routed = proxyRouted;
    const res = await send(`${base}${row.path}`, { method: row.method, headers: { accept: 'application/json', ...cookieHeader(cookie) } });
    const forwarded = res.status === 200 ? (JSON.parse(res.body) as { headers: IncomingHttpHeaders }).headers : null;
    return { ...read(res.status, res.headers, forwarded), by: proxyRouted === routed ? 'fast path' : 'route' };
  },
  async 'WebSocket upgrade'(row, cookie) {
    const before = upstream.handshakes.length;
    const res = await rawUpgrade(base, row.path, {
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': randomBytes(16).toString('base64'), origin: base, ...cookieHeader(cookie) },
    });
    return read(res.status, res.headers, res.status === 101 ? (upstream.handshakes[before]?.headers ?? {}) : null);
  },
  async 'verify route'(row, cookie) {
    const res = await app.inject({ method: 'GET', url: `${config.authPrefix}/verify`, headers: { 'x-forwarded-uri': row.path, 'x-forwarded-method': row.method, ...cookieHeader(cookie) } });
    return read(res.statusCode, res.headers as IncomingHttpHeaders, null);
  },
  async 'verify fast path'(row, cookie) {
    const routed = verifyRouted;
    const res = await send(`${base}${config.authPrefix}/verify`, { headers: { 'x-forwarded-uri': row.path, 'x-forwarded-method': row.method, ...cookieHeader(cookie) } });
    return { ...read(res.status, res.headers, null), by: verifyRouted === routed ? 'fast path' : 'route' };
  },
};
const upgradable = (row: Row) => row.method === 'GET';

for (const [name, door] of Object.entries(doors)) {
  t.test(`the rule table through the ${name}`, async (t) => {
    for (const row of table) {
      if (name === 'WebSocket upgrade' && !upgradable(row)) continue; // an upgrade is always a GET
      const forwardAuth = name.startsWith('verify');
      const expected = forwardAuth ? (row.verifyVerdict ?? row.verdict) : row.verdict;
      const cookie = typeof row.cookie === 'function' ? await row.cookie() : row.cookie;
      const linesBefore = logs.length;
      const observed = await door(row, cookie);
      const want: Observed = { verdict: expected, ...(expected === 'allow' ? { user: row.who, groups: row.groups ?? '' } : {}) };
      // An allowed request with a session is the fast path's to answer; every other verdict the route renders.
      if (name === 'verify fast path') want.by = expected === 'allow' ? 'fast path' : 'route';
      // A GET let through (allowed or public) is the proxy fast path's; every other verdict, and every other method, the route's.
      if (name === 'proxy fast path') want.by = (expected === 'allow' || expected === 'public') && row.method === 'GET' ? 'fast path' : 'route';
      t.same(observed, want, `${row.who} ${row.method} ${row.path}`);
      if (expected === 'forbidden') {
        // The one refusal audit line: the same fields and level whichever door refused.
        const audit = logs.slice(linesBefore).map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line.audit === 'access_denied');
        t.match(audit, { level: 40, user: row.who === 'anonymous' ? null : row.who, ip: '127.0.0.1', rule: row.rule, msg: 'access denied' }, `${row.who} ${row.path}: audited`);
        t.equal(audit?.path, row.auditPath ?? row.path.replace(/;[^/]*/g, ';[Redacted]'), 'the path, parameters redacted');
      }
      if (expected === 'logout' && cookie !== null) {
        t.equal((await sessions.validate(cookie)).outcome, 'revoked', 'the session is ended');
      }
    }
  });
}

t.test('an expired or forged cookie is cleared by the proxy, left alone on a public path', async (t) => {
  for (const cookie of [expired, forged]) {
    const res = await app.inject({ method: 'GET', url: '/reports', headers: { accept: 'application/json', ...cookieHeader(cookie) } });
    t.match(String(res.headers['set-cookie']), new RegExp(`^${config.cookieName}=;`), 'cleared');
  }
  const res = await app.inject({ method: 'GET', url: '/public/page', headers: cookieHeader(expired) });
  t.equal(res.headers['set-cookie'], undefined);
});

t.test('a configuration reload swaps the rules for the next request, at every door', async (t) => {
  const gate = app.accessGate;
  t.equal((await doors['proxy HTTP']!(table[4]!, ada)).verdict, 'allow');
  gate.replaceRules({ publicPaths: ['/public'], rules: [{ path: '/reports', methods: null, policy: 'deny', groups: [], forwardGroups: null }], logoutPaths: [] });
  for (const [name, door] of Object.entries(doors)) {
    t.equal((await door({ ...table[4]!, verdict: 'forbidden' }, ada)).verdict, 'forbidden', `${name}: /reports is denied now`);
    t.equal((await door(table[0]!, null)).verdict, 'public', `${name}: /public stays public`);
  }
  t.throws(() => gate.replaceRules({ publicPaths: ['no-slash'], rules: [], logoutPaths: [] }), /invalid public path prefix/, 'rules that do not compile are refused');
  t.equal((await doors['verify route']!(table[4]!, ada)).verdict, 'forbidden', 'and the rules in force stay');
});
