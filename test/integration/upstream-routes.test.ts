// GATEWAY_UPSTREAM_ROUTES: one gateway in front of a legacy app split in two. Path prefixes go to
// their own upstream with the path unchanged; everything else to GATEWAY_UPSTREAM; the same
// authentication, access rules, identity headers and failure pages apply to both.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type ConfigError } from '../../src/config/config.js';
import { login, seedUsers, startTestGateway, uniquePrefix, withSession } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import { services } from '../helpers/services.js';
import { startEchoUpstream } from '../helpers/upstream.js';

const { redis, pg } = await services(t);
await seedUsers(t, pg.url, [
  { username: 'ada', password: 'admin password', groups: ['finance'] },
  { username: 'bob', password: 'plain password', groups: [] },
]);
const main = await startEchoUpstream();
const reports = await startEchoUpstream((echo, res) => {
  if (echo.url !== '/reports/moved') return false;
  res.writeHead(302, { location: `${reports.url}/reports/new-home` });
  res.end();
  return true;
});
const down = await startEchoUpstream();
await down.close();
t.teardown(() => Promise.all([main.close(), reports.close()]));

const dir = mkdtempSync(join(tmpdir(), 'sgw-routes-'));
writeFileSync(join(dir, 'rules.yaml'), 'rules:\n  - path: /reports/finance\n    policy: { groups: [finance] }\n');

const gw = await startTestGateway(t, {
  REDIS_URL: redis.url,
  DATABASE_URL: pg.url,
  GATEWAY_UPSTREAM: main.url,
  GATEWAY_UPSTREAM_ROUTES: `/reports=${reports.url}, /legacy/billing/=${down.url}`,
  GATEWAY_ACCESS_RULES: join(dir, 'rules.yaml'),
  GATEWAY_PUBLIC_URL: 'https://app.example.com',
  GATEWAY_REDIS_PREFIX: uniquePrefix(),
  GATEWAY_IDENTITY_JWT: 'true',
  GATEWAY_IDENTITY_HMAC_SECRET: 'routes-hmac-secret-0123456789-abcdefghijkl',
});
const ada = await login(gw, 'ada', 'admin password');
const bob = await login(gw, 'bob', 'plain password');

async function whoAnswers(path: string, cookie = ada) {
  const counts = [main.received.length, reports.received.length];
  const res = await send(`${gw.url}${path}`, { headers: withSession(gw, cookie) });
  const atMain = main.received.slice(counts[0]);
  const atReports = reports.received.slice(counts[1]);
  return { res, app: atReports.length > 0 ? 'reports' : atMain.length > 0 ? 'main' : 'none', echo: atReports[0] ?? atMain[0] ?? null };
}

t.test('prefixes go to their upstream with the path and query unchanged', async (t) => {
  for (const path of ['/reports', '/reports/', '/reports/2026/q3?format=csv']) {
    const { res, app, echo } = await whoAnswers(path);
    t.equal(res.status, 200, path);
    t.equal(app, 'reports', `${path} reached the reports app`);
    t.equal(echo?.url, path, `${path} arrived unchanged`);
    t.equal(echo?.headers['x-forwarded-user'], 'ada', 'with identity');
  }
});

t.test("each upstream's identity token names that upstream as its audience", async (t) => {
  const aud = (echo: { headers: Record<string, unknown> } | null) =>
    JSON.parse(Buffer.from(String(echo?.headers['x-gateway-identity']).split('.')[1] ?? '', 'base64url').toString('utf8')).aud;
  t.equal(aud((await whoAnswers('/reports/1')).echo), reports.url, 'the reports app gets a token for itself');
  t.equal(aud((await whoAnswers('/home')).echo), main.url, 'the main app gets its own, not a replayable copy');
  t.equal(aud((await whoAnswers('/reports/2')).echo), reports.url, 'also when served from the token cache');
});

t.test('everything else goes to GATEWAY_UPSTREAM, on segment boundaries', async (t) => {
  for (const path of ['/', '/reportsx', '/report', '/home/reports']) {
    const { app, echo } = await whoAnswers(path);
    t.equal(app, 'main', `${path} reached the main app`);
    t.equal(echo?.url, path);
  }
});

t.test('normalisation happens before routing: dot segments cannot pick the other app', async (t) => {
  const escaped = await whoAnswers('/reports/../home');
  t.equal(escaped.app, 'main');
  t.equal(escaped.echo?.url, '/home');
  const entered = await whoAnswers('/x/../reports/list');
  t.equal(entered.app, 'reports');
  t.equal(entered.echo?.url, '/reports/list');
});

t.test('authentication and access rules apply to every upstream', async (t) => {
  const before = reports.received.length;
  const anonymous = await send(`${gw.url}/reports/2026`);
  t.equal(anonymous.status, 401);
  t.equal((await whoAnswers('/reports/finance/ledger', bob)).res.status, 403, 'rule applies on the routed upstream');
  t.equal(reports.received.length, before, 'the reports app saw neither');
  t.equal((await whoAnswers('/reports/finance/ledger', ada)).app, 'reports');
});

t.test("a routed upstream's redirect to its own address is rewritten to the public origin", async (t) => {
  const { res } = await whoAnswers('/reports/moved');
  t.equal(res.status, 302);
  t.equal(res.headers.location, 'https://app.example.com/reports/new-home');
});

t.test('one upstream down gives 502 on its paths only', async (t) => {
  const billing = await send(`${gw.url}/legacy/billing/invoices`, { headers: withSession(gw, ada) });
  t.equal(billing.status, 502);
  t.equal((await whoAnswers('/legacy/other')).app, 'main', 'a sibling path still works');
  t.equal((await whoAnswers('/reports/1')).res.status, 200, 'the other upstream still works');
});

t.test('bad GATEWAY_UPSTREAM_ROUTES stop start-up with one line each', async (t) => {
  const problems = (env: Record<string, string>) => {
    try {
      loadConfig(env);
      return [];
    } catch (err) {
      return (err as ConfigError).problems;
    }
  };
  t.same(problems({ GATEWAY_UPSTREAM_ROUTES: '/a=http://127.0.0.1:1' }), ['GATEWAY_UPSTREAM_ROUTES needs GATEWAY_UPSTREAM (the app serving every other path)']);
  t.same(
    problems({
      GATEWAY_UPSTREAM: 'http://127.0.0.1:1',
      GATEWAY_UPSTREAM_ROUTES: 'reports=http://127.0.0.1:2,/=http://127.0.0.1:3,/a/../b=http://127.0.0.1:4,/_auth/x=http://127.0.0.1:5,/c=ftp://h,/d=http://127.0.0.1:6/app,/e=nope,/f=http://127.0.0.1:7,/f/=http://127.0.0.1:8,/r%C3%A9ports=http://127.0.0.1:9,/g@h=http://127.0.0.1:9,/i=http://u:secret@127.0.0.1:9',
    }),
    [
      'GATEWAY_UPSTREAM_ROUTES: "reports=http://127.0.0.1:2" must be /prefix=http://host:port',
      'GATEWAY_UPSTREAM_ROUTES: "/=http://127.0.0.1:3" needs a normalised path prefix other than /',
      'GATEWAY_UPSTREAM_ROUTES: "/a/../b=http://127.0.0.1:4" needs a normalised path prefix other than /',
      "GATEWAY_UPSTREAM_ROUTES: \"/_auth/x=http://127.0.0.1:5\" overlaps the gateway's own routes under /_auth",
      'GATEWAY_UPSTREAM_ROUTES: "/c=ftp://h" must name an http:// or https:// origin without a path (the request path is forwarded unchanged)',
      'GATEWAY_UPSTREAM_ROUTES: "/d=http://127.0.0.1:6/app" must name an http:// or https:// origin without a path (the request path is forwarded unchanged)',
      'GATEWAY_UPSTREAM_ROUTES: "/e=nope" has no valid URL after =',
      'GATEWAY_UPSTREAM_ROUTES: "/f/=http://127.0.0.1:8" repeats a prefix',
      'GATEWAY_UPSTREAM_ROUTES: "/r%C3%A9ports=http://127.0.0.1:9" may hold only letters, digits, - . _ ~ and / in its prefix',
      'GATEWAY_UPSTREAM_ROUTES: "/g@h=http://127.0.0.1:9" may hold only letters, digits, - . _ ~ and / in its prefix',
      'GATEWAY_UPSTREAM_ROUTES: "/i=http://***@127.0.0.1:9" must name an http:// or https:// origin without a path (the request path is forwarded unchanged)',
    ],
  );
});
