// GATEWAY_ACCESS_RULES end to end on a real gateway (Redis, PostgreSQL, echo app): public, deny,
// groups and methods rules, what anonymous and signed-in users get, what reaches the app, and
// the group list narrowed per rule.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { login, seedUsers, startTestGateway, uniquePrefix, withSession } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import { services } from '../helpers/services.js';
import { startEchoUpstream } from '../helpers/upstream.js';

const dir = mkdtempSync(join(tmpdir(), 'sgw-rules-'));
const rulesFile = join(dir, 'rules.yaml');
writeFileSync(
  rulesFile,
  `# first match wins
rules:
  - path: /status
    policy: public
  - path: /admin/reports
    methods: [GET]
    policy: { groups: [auditors, admins] }
  - path: /admin
    policy: { groups: [admins] }
    forward_groups: [admins, "team-*"]
  - path: /internal
    policy: deny
  - path: /orders
    methods: [DELETE]
    policy: { groups: [admins] }
`,
);

const { redis, pg } = await services(t);
await seedUsers(t, pg.url, [
  { username: 'ada', password: 'admin password', groups: ['admins', 'team-core', 'payroll', 'staff'] },
  { username: 'otto', password: 'auditor password', groups: ['auditors'] },
  { username: 'bob', password: 'plain password', groups: ['staff'] },
]);
const upstream = await startEchoUpstream();
t.teardown(() => upstream.close());
const gw = await startTestGateway(t, {
  REDIS_URL: redis.url,
  DATABASE_URL: pg.url,
  GATEWAY_UPSTREAM: upstream.url,
  GATEWAY_REDIS_PREFIX: uniquePrefix(),
  GATEWAY_ACCESS_RULES: rulesFile,
  GATEWAY_PUBLIC_PATHS: '/internal/metrics-ok',
  GATEWAY_IDENTITY_JWT: 'true',
  GATEWAY_IDENTITY_HMAC_SECRET: 'identity-hmac-secret-0123456789-abcdefghij',
});
const ada = await login(gw, 'ada', 'admin password');
const otto = await login(gw, 'otto', 'auditor password');
const bob = await login(gw, 'bob', 'plain password');

const BROWSER = { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate' };

/** Sends a request and reports whether the app saw it. */
async function request(path: string, opts: { method?: string; cookie?: string; headers?: Record<string, string> } = {}) {
  const before = upstream.received.length;
  const headers = { ...(opts.cookie ? withSession(gw, opts.cookie) : {}), ...opts.headers };
  const res = await send(`${gw.url}${path}`, { method: opts.method ?? 'GET', headers });
  const reached = upstream.received.slice(before).find((echo) => echo.url === path) ?? null;
  return { res, reached };
}

t.test('public rule: anonymous users reach the app, with no identity', async (t) => {
  const { res, reached } = await request('/status/live');
  t.equal(res.status, 200);
  t.ok(reached, 'the app answered');
  t.notOk(reached?.headers['x-forwarded-user'], 'no identity on an anonymous public request');
});

t.test('deny rule: nobody reaches the app, signed in or not', async (t) => {
  for (const cookie of [undefined, ada]) {
    const { res, reached } = await request('/internal/config', cookie ? { cookie } : {});
    t.equal(res.status, 403, cookie ? 'signed-in admin refused' : 'anonymous refused');
    t.same(JSON.parse(res.body), { error: 'You do not have access to this page.', code: 'GW_ERR_ACCESS_DENIED' });
    t.equal(reached, null, 'the app never saw it');
  }
  const page = await request('/internal/config', { cookie: bob, headers: BROWSER });
  t.equal(page.res.status, 403);
  t.match(page.res.headers['content-type'], /^text\/html/, 'a browser gets a page');
  t.match(page.res.body, /You do not have access to this page\./);
  t.equal(page.reached, null);
  t.ok(gw.logs.some((line) => /"audit":"access_denied"/.test(line) && /"user":"bob"/.test(line) && /"rule":4/.test(line)), 'the refusal is audited with user and rule');
});

t.test('GATEWAY_PUBLIC_PATHS act as public rules placed first', async (t) => {
  const { res, reached } = await request('/internal/metrics-ok');
  t.equal(res.status, 200, 'public path wins over the later deny rule');
  t.ok(reached);
});

t.test('groups rule: anonymous → sign in; wrong group → 403; right group → app', async (t) => {
  const anonymousBrowser = await request('/admin/users', { headers: BROWSER });
  t.equal(anonymousBrowser.res.status, 302);
  t.equal(anonymousBrowser.res.headers.location, `/_auth/login?rd=${encodeURIComponent('/admin/users')}`);
  const anonymousApi = await request('/admin/users');
  t.equal(anonymousApi.res.status, 401);
  t.equal(anonymousApi.reached, null);

  const bobTries = await request('/admin/users', { cookie: bob, headers: BROWSER });
  t.equal(bobTries.res.status, 403, 'signed in without the group');
  t.match(bobTries.res.body, /You do not have access/);
  t.equal(bobTries.reached, null);

  const adaGoes = await request('/admin/users', { cookie: ada });
  t.equal(adaGoes.res.status, 200);
  t.equal(adaGoes.reached?.headers['x-forwarded-user'], 'ada');
});

t.test('forward_groups narrows the group header per rule; other paths get every group', async (t) => {
  const admin = await request('/admin/users', { cookie: ada });
  t.equal(admin.reached?.headers['x-forwarded-groups'], 'admins,team-core', 'only admins and team-* are sent under /admin');
  const elsewhere = await request('/home', { cookie: ada });
  t.equal(elsewhere.reached?.headers['x-forwarded-groups'], 'admins,team-core,payroll,staff');
  // The signed identity token carries the same narrowed list, or it would overflow just the same.
  const claims = (echo: typeof admin.reached) => JSON.parse(Buffer.from(String(echo?.headers['x-gateway-identity']).split('.')[1] ?? '', 'base64url').toString('utf8'));
  t.same(claims(admin.reached).groups, ['admins', 'team-core'], 'token groups narrowed under /admin');
  t.same(claims(elsewhere.reached).groups, ['admins', 'team-core', 'payroll', 'staff'], 'full list elsewhere');
  t.same(claims((await request('/admin/users', { cookie: ada })).reached).groups, ['admins', 'team-core'], 'and still narrowed when served from the token cache');
});

t.test('methods: a rule applies to its methods only (GET also covers HEAD)', async (t) => {
  const ottoReads = await request('/admin/reports/q3', { cookie: otto });
  t.equal(ottoReads.res.status, 200, 'auditors may GET reports');
  const ottoHead = await request('/admin/reports/q3', { cookie: otto, method: 'HEAD' });
  t.equal(ottoHead.res.status, 200, 'and HEAD them');
  const ottoPosts = await request('/admin/reports/q3', { cookie: otto, method: 'POST' });
  t.equal(ottoPosts.res.status, 403, 'POST falls through to the /admin rule, which needs admins');
  t.equal(ottoPosts.reached, null);

  t.equal((await request('/orders/7', { cookie: bob })).res.status, 200, 'anyone signed in may GET orders');
  const bobDeletes = await request('/orders/7', { cookie: bob, method: 'DELETE' });
  t.equal(bobDeletes.res.status, 403, 'only admins may DELETE');
  t.equal(bobDeletes.reached, null);
  t.equal((await request('/orders/7', { cookie: ada, method: 'DELETE' })).res.status, 200);
});

t.test('rules apply to the normalised path: encoded and dot-segment tricks do not slip past', async (t) => {
  for (const path of ['/public/../internal/x', '/%69nternal/x', '//internal/x', '/status/../internal/x', '/internal/./x']) {
    const before = upstream.received.length;
    const res = await send(`${gw.url}${path}`, { headers: withSession(gw, ada) });
    t.equal(res.status, 403, `${path} is refused`);
    t.equal(upstream.received.length, before, `${path} never reached the app`);
  }
});

t.test('a broken rules file stops start-up with one line per problem', async (t) => {
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify([{ path: '/a', policy: 'allow' }, { path: '/b/', policy: { groups: [] } }]));
  const env = { GATEWAY_ACCESS_RULES: bad, GATEWAY_HOST: '127.0.0.1' };
  t.throws(() => loadConfig(env), ConfigError);
  try {
    loadConfig(env);
  } catch (err) {
    t.same((err as ConfigError).problems, [
      'GATEWAY_ACCESS_RULES: rule #1: `policy` must be public, authenticated, deny or { groups: [...] }',
      'GATEWAY_ACCESS_RULES: rule #2: `policy.groups` must be a non-empty list of group names',
    ]);
  }
  const shadowed = join(dir, 'shadowed.yaml');
  writeFileSync(shadowed, '- path: /admin\n  policy: authenticated\n- path: /admin/secrets\n  policy: deny\n');
  try {
    loadConfig({ GATEWAY_ACCESS_RULES: shadowed });
    t.fail('a rule that can never match must be refused');
  } catch (err) {
    t.same((err as ConfigError).problems, ['GATEWAY_ACCESS_RULES: rule #2 (/admin/secrets) can never match: rule #1 (/admin) comes first and matches everything it does']);
  }
  try {
    loadConfig({ GATEWAY_ACCESS_RULES: join(dir, 'missing.yaml') });
    t.fail('a missing file must be refused');
  } catch (err) {
    t.match((err as ConfigError).problems, [/^GATEWAY_ACCESS_RULES: cannot read .*missing\.yaml \(ENOENT\)$/]);
  }
});
