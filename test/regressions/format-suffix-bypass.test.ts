// Attack: behind the gateway runs a Rails app (here its real router: Debian's ruby-actionpack).
// Rails gives every route an optional format suffix, so `/admin.json` is `admin#index` and
// `/internal/status.xml` is `internal#status`; Spring MVC before 5.3 without Spring Boot matches
// `/admin.*` the same way. A rule on `/admin` matched against the path as sent let a user outside
// `admins` in with `/admin.json`, walked into a `deny`-ed area (`/internal/status.xml`), through the
// proxy and /_auth/verify, and `/logout.json` logged out of the app while the gateway session lived on.
// Defence (SPEC 4): src/access/paths.ts withoutFormatSuffix is one more reading (otherReadings),
// src/access/rules.ts requires the rules matching it to allow too, src/access/gate.ts treats a
// logout path matching any reading as a logout; the app still receives the path as sent.
import t from 'tap';
import { callVerify } from '../helpers/forward-auth.js';
import { login, withSession } from '../helpers/gateway.js';
import { startRailsApp, type RailsEcho } from '../helpers/rails-app.js';
import { apiGet, checkRefusedThroughProxy, rawRequest, READINGS_PASSWORD, readingsBed } from './setup.js';

const rails = await startRailsApp(t);
const { gw, carol, alice } = await readingsBed(t, rails.url, '/help');
const json = { accept: 'application/json' };

const INTO_ADMIN = ['/admin.json', '/admin.xml', '/admin.json/', '/admin/users.json', '/admin%2Ejson', '/admin.json;x=1'];
const INTO_INTERNAL = ['/internal/status.xml', '/internal/status.json'];

t.test('the app itself routes /admin.json as admin#index (what makes the rule\'s raw reading unsafe)', async (t) => {
  for (const [target, route] of [['/admin.json', 'admin#index'], ['/admin/users.xml', 'admin/users#index'], ['/internal/status.json', 'internal#status'], ['/logout.json', 'sessions#destroy']]) {
    const res = await fetch(`${rails.url}${target}`);
    t.equal(((await res.json()) as RailsEcho).route, route, `${target}`);
  }
});

t.test('through the proxy: 403 for a user outside the group, 401 (deny: 403) without a session, nothing reaches the app', async (t) => {
  await checkRefusedThroughProxy(t, gw, carol, INTO_ADMIN, INTO_INTERNAL);
});

t.test('through the proxy: an admin gets admin#index with the format, the path as sent; other routes pass', async (t) => {
  const res = await rawRequest(gw, '/admin.json', { headers: withSession(gw, alice, json) });
  t.equal(res.status, 200);
  t.same(JSON.parse(res.body), { route: 'admin#index', format: 'json', path: '/admin.json', user: 'alice', method: 'GET' });
  const reports = await rawRequest(gw, '/reports.csv', { headers: withSession(gw, carol, json) });
  t.equal(reports.status, 200, 'control: a route no rule names passes with its format');
  t.equal((JSON.parse(reports.body) as RailsEcho).route, 'reports#index');
  const help = await rawRequest(gw, '/help/getting-started.html', { headers: json });
  t.equal(help.status, 200, 'control: a public path with a file name stays public');
});

t.test('through /_auth/verify: 403 for each, 204 for an admin', async (t) => {
  for (const uri of [...INTO_ADMIN, ...INTO_INTERNAL]) {
    t.equal((await callVerify(gw, { 'x-forwarded-uri': uri, 'x-forwarded-method': 'GET', cookie: withSession(gw, carol).cookie })).status, 403, `X-Forwarded-Uri: ${uri}`);
  }
  t.equal((await callVerify(gw, { 'x-forwarded-uri': '/admin.json', 'x-forwarded-method': 'GET', cookie: withSession(gw, alice).cookie })).status, 204);
});

t.test('/logout.json ends the gateway session, as it ends the app\'s', async (t) => {
  const cookie = await login(gw, 'carol', READINGS_PASSWORD);
  const res = await rawRequest(gw, '/logout.json', { headers: withSession(gw, cookie, { 'sec-fetch-site': 'same-origin' }) });
  t.equal(res.status, 303);
  t.equal((await apiGet(gw, '/_auth/session', cookie)).status, 401, 'the session is gone');
});
