// Attack: the app routes paths without case, as Express does by default, IIS does, and Caddy's
// `path` matcher does (here a real Caddy is the app: `handle /admin*` serves the admin area). A rule
// on `/admin` matched case-sensitively let a user outside `admins` in with `/ADMIN` or `/Admin/users`,
// and an anonymous one into a `deny`-ed `/Internal`.
// Defence: src/access/rules.ts also matches the path without case against the rules' paths without
// case; a `deny` or `groups` rule found so must allow the request too. Public paths stay
// case-sensitive (SPEC 4): `/PUBLIC` is not public. The app receives the path as sent. A logout
// path in any case (`/LOGOUT`, the app's logout there) ends the gateway session too (gate.ts).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { login, withSession } from '../helpers/gateway.js';
import { findBinary, runServer } from '../helpers/proxies.js';
import { freePort } from '../helpers/services.js';
import { apiGet, rawRequest, testBed } from './setup.js';

const caddy = findBinary('caddy', "install Debian's caddy (apt-get install -y caddy; .ci/run does it)");
const dir = mkdtempSync(join(tmpdir(), 'sgw-caseless-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const appPort = await freePort();
const route = (name: string) => `respond \`{"route":"${name}","path":"{http.request.uri.path}","user":"{http.request.header.X-Forwarded-User}"}\` 200`;
writeFileSync(
  join(dir, 'Caddyfile'),
  `{\n\tadmin off\n\tauto_https off\n}\nhttp://127.0.0.1:${appPort} {\n\theader Content-Type application/json\n\thandle /admin* {\n\t\t${route('admin')}\n\t}\n\thandle /internal* {\n\t\t${route('internal')}\n\t}\n\thandle /public* {\n\t\t${route('public')}\n\t}\n\thandle {\n\t\t${route('other')}\n\t}\n}\n`,
);
await runServer(t, caddy, ['run', '--config', join(dir, 'Caddyfile'), '--adapter', 'caddyfile'], appPort, { HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir });
const app = `http://127.0.0.1:${appPort}`;

const bed = await testBed(t, [
  { username: 'carol', password: 'carol-Pw-0017', groups: ['staff'] },
  { username: 'alice', password: 'alice-Pw-0017', groups: ['admins'] },
]);
writeFileSync(join(dir, 'rules.yaml'), 'rules:\n  - { path: /admin, policy: { groups: [admins] } }\n  - { path: /internal, policy: deny }\n');
const gw = await bed.gateway({ GATEWAY_UPSTREAM: app, GATEWAY_ACCESS_RULES: join(dir, 'rules.yaml'), GATEWAY_PUBLIC_PATHS: '/public', GATEWAY_LOGOUT_PATHS: '/logout' });
const carol = await login(gw, 'carol', 'carol-Pw-0017');
const alice = await login(gw, 'alice', 'alice-Pw-0017');
const json = { accept: 'application/json' };
const routeOf = (body: string) => (JSON.parse(body) as { route: string }).route;

const INTO_ADMIN = ['/ADMIN', '/Admin/users', '/aDmIn/x;y', '/ADMIN.json'];
const INTO_INTERNAL = ['/INTERNAL', '/Internal/status'];

t.test('the app itself serves /ADMIN as its admin area (what makes a case-sensitive rule unsafe)', async (t) => {
  for (const target of ['/ADMIN', '/Admin/users']) t.equal(routeOf(await (await fetch(`${app}${target}`)).text()), 'admin', target);
});

t.test('through the proxy: any spelling needs what the rule asks; deny is deny', async (t) => {
  for (const target of INTO_ADMIN) {
    const res = await rawRequest(gw, target, { headers: withSession(gw, carol, json) });
    t.equal(res.status, 403, `${target}: 403 for a user outside admins`);
    t.notMatch(res.body, /"route"/, `${target}: the app did not answer`);
    t.equal((await rawRequest(gw, target, { headers: json })).status, 401, `${target}: 401 without a session`);
    const admin = await rawRequest(gw, target, { headers: withSession(gw, alice, json) });
    t.equal(admin.status, 200, `${target}: an admin may`);
    t.equal(JSON.parse(admin.body).path, target, `${target}: the app gets the path as sent`);
  }
  for (const target of INTO_INTERNAL) t.equal((await rawRequest(gw, target, { headers: withSession(gw, alice, json) })).status, 403, `${target}: deny`);
});

t.test('public paths stay case-sensitive; other paths pass as before', async (t) => {
  t.equal((await rawRequest(gw, '/public/x', { headers: json })).status, 200, 'control: /public is public');
  t.equal((await rawRequest(gw, '/PUBLIC/x', { headers: json })).status, 401, '/PUBLIC is not (SPEC 4)');
  const reports = await rawRequest(gw, '/Reports', { headers: withSession(gw, carol, json) });
  t.equal(reports.status, 200);
  t.equal(routeOf(reports.body), 'other');
});

t.test('the app\'s logout path in another case ends the gateway session too', async (t) => {
  const cookie = await login(gw, 'carol', 'carol-Pw-0017');
  const res = await rawRequest(gw, '/LogOut', { headers: withSession(gw, cookie, { 'sec-fetch-site': 'same-origin' }) });
  t.equal(res.status, 303);
  t.equal((await apiGet(gw, '/_auth/session', cookie)).status, 401, 'the session is gone');
});
