// Attack: behind the gateway runs a PHP app with a front controller (here a real one: Debian's
// php-cgi behind nginx, configured as Laravel's and Symfony's docs say). The web server runs
// index.php for `/index.php/admin` and the framework routes it exactly like `/admin`, so a rule
// on `/admin` matched against the raw path let a user outside `admins` in (`/index.php/admin`),
// walked into a `deny`-ed area (`/index.php/internal/x`), through the proxy and /_auth/verify,
// and `/index.php/logout` logged out of the app while the gateway session lived on. The same for
// CodeIgniter's query routes: with nothing after the base or script, `/?/admin` is `/admin`.
// Defence (SPEC 4): src/access/paths.ts withoutScriptName and queryRoutedPath give the readings,
// src/access/rules.ts requires every reading to allow, src/access/gate.ts treats a logout path
// matching any reading as a logout; the app still receives the path as sent.
import t from 'tap';
import { callVerify } from '../helpers/forward-auth.js';
import { login, withSession } from '../helpers/gateway.js';
import { startPhpApp, type PhpEcho } from '../helpers/php-app.js';
import { apiGet, checkRefusedThroughProxy, rawRequest, READINGS_PASSWORD, readingsBed } from './setup.js';

const php = await startPhpApp(t);
const { gw, carol, alice } = await readingsBed(t, php.url, '/index.php/help');
const json = { accept: 'application/json' };

const INTO_ADMIN = ['/index.php/admin', '/index.php/admin/users', '/INDEX.PHP/admin', '/index.php//admin', '/?/admin/users', '/index.php?/admin', '/index.php?/admin/users?x=1', '/?/%61dmin'];
const INTO_INTERNAL = ['/index.php/internal', '/index.php/internal/x', '/?/internal/x', '/index.php?/internal'];

t.test('the app itself routes /index.php/admin and /?/admin as /admin (what makes the rule\'s raw reading unsafe)', async (t) => {
  for (const target of ['/index.php/admin/users', '/?/admin/users', '/index.php?/admin/users']) {
    const res = await fetch(`${php.url}${target}`);
    t.same(((await res.json()) as PhpEcho).route, '/admin/users', target);
  }
});

t.test('a path in the query that cannot be normalised: 400', async (t) => {
  for (const target of ['/?/admin%2fusers', '/index.php?/../admin']) {
    t.equal((await rawRequest(gw, target, { headers: withSession(gw, carol, json) })).status, 400, target);
  }
  t.equal((await rawRequest(gw, '/reports?x=/admin', { headers: withSession(gw, carol, json) })).status, 200, 'control: a query that does not start with / is a query');
});

t.test('through the proxy: 403 for a user outside the group, 401 (deny: 403) without a session, nothing reaches the app', async (t) => {
  await checkRefusedThroughProxy(t, gw, carol, INTO_ADMIN, INTO_INTERNAL);
});

t.test('through the proxy: an admin reaches the admin route, with the path as sent and the identity', async (t) => {
  const res = await rawRequest(gw, '/index.php/admin/users', { headers: withSession(gw, alice, json) });
  t.equal(res.status, 200);
  t.same(JSON.parse(res.body), { route: '/admin/users', method: 'GET', note: null, requestUri: '/index.php/admin/users', user: 'alice' });
  t.equal((await rawRequest(gw, '/index.php/internal/x', { headers: withSession(gw, alice, json) })).status, 403, 'deny is deny for admins too');
  const home = await rawRequest(gw, '/index.php/reports?x=1', { headers: withSession(gw, carol, json) });
  t.equal((JSON.parse(home.body) as PhpEcho).route, '/reports', 'control: other routes pass as before');
});

t.test('a public path written with the script stays public (the reading adds rules, not the default)', async (t) => {
  const res = await rawRequest(gw, '/index.php/help/faq', { headers: json });
  t.equal(res.status, 200);
  t.same((JSON.parse(res.body) as PhpEcho).route, '/help/faq');
  t.equal((await rawRequest(gw, '/help/faq', { headers: json })).status, 401, 'control: /help itself is not public');
});

t.test('through /_auth/verify: 403 for each, 204 for an admin', async (t) => {
  for (const uri of [...INTO_ADMIN, ...INTO_INTERNAL]) {
    t.equal((await callVerify(gw, { 'x-forwarded-uri': uri, 'x-forwarded-method': 'GET', cookie: withSession(gw, carol).cookie })).status, 403, `X-Forwarded-Uri: ${uri}`);
    t.equal((await callVerify(gw, { 'x-original-uri': uri, cookie: withSession(gw, carol).cookie })).status, 403, `X-Original-URI: ${uri}`);
  }
  t.equal((await callVerify(gw, { 'x-forwarded-uri': '/index.php/admin', 'x-forwarded-method': 'GET', cookie: withSession(gw, alice).cookie })).status, 204);
});

t.test('/index.php/logout and /?/logout end the gateway session, as they end the app\'s', async (t) => {
  for (const target of ['/index.php/logout', '/?/logout']) {
    const cookie = await login(gw, 'carol', READINGS_PASSWORD);
    const res = await rawRequest(gw, target, { headers: withSession(gw, cookie, { 'sec-fetch-site': 'same-origin' }) });
    t.equal(res.status, 303, target);
    t.equal(res.headers.location, '/_auth/login?logged_out=1');
    t.equal((await apiGet(gw, '/_auth/session', cookie)).status, 401, `${target}: the session is gone`);
  }
});
