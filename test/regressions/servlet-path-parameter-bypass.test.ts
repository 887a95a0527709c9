// Attack: behind the gateway runs a Servlet container (here Debian's Jetty 9.4, for real). It removes
// `;…` path parameters from each segment before mapping, so `/admin;x/secret` is served by the
// `/admin/*` servlet. A gateway that matches rules against the raw path only lets a user outside
// `admins` into it (`/admin;x/secret`, `/admin;`, `/;x/admin`), walks into a `deny`-ed area
// (`/internal;a/b`), through the proxy, through /_auth/verify and through WebSocket upgrades; and
// `/logout;jsessionid=…` logs out of the app while the gateway session lives on.
// Defence (SPEC 4): src/access/paths.ts withoutPathParameters gives the container's reading,
// src/access/rules.ts requires both readings to allow, src/proxy/routes.ts treats a logout
// path matching either reading as a logout; the app still receives the raw path. `..;` (which
// Tomcat and Jetty resolve as `..`) is refused with 400 by the normaliser before any rule.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import t from 'tap';
import { login, withSession } from '../helpers/gateway.js';
import { callVerify } from '../helpers/forward-auth.js';
import { send } from '../helpers/http.js';
import { startServletContainer, type ServletEcho } from '../helpers/servlet-container.js';
import { rawUpgrade } from '../helpers/websocket.js';
import { apiGet, rawRequest, testBed } from './setup.js';

const jetty = await startServletContainer(t);
const bed = await testBed(t, [
  { username: 'carol', password: 'carol-Pw-0011', groups: ['staff'] },
  { username: 'alice', password: 'alice-Pw-0011', groups: ['admins'] },
]);
const rulesFile = join(tmpdir(), `sgw-servlet-rules-${process.pid}.yaml`);
writeFileSync(rulesFile, 'rules:\n  - { path: /admin, policy: { groups: [admins] } }\n  - { path: /internal, policy: deny }\n');
t.teardown(() => rmSync(rulesFile, { force: true }));
const gw = await bed.gateway({
  GATEWAY_UPSTREAM: jetty.url,
  GATEWAY_ACCESS_RULES: rulesFile,
  GATEWAY_LOGOUT_PATHS: '/logout',
  GATEWAY_TRUSTED_PROXIES: '127.0.0.1/32',
});
const json = { accept: 'application/json' };
const carol = await login(gw, 'carol', 'carol-Pw-0011');
const alice = await login(gw, 'alice', 'alice-Pw-0011');

const rawAt = (base: string, target: string) => rawRequest({ url: base } as Parameters<typeof rawRequest>[0], target, { headers: json });

// What the container maps each to: the admin and internal servlets (the control below proves it).
const INTO_ADMIN = ['/admin;x/secret', '/admin;', '/admin;jsessionid=1/', '/;x/admin/secret', '/admin;a/;b/secret', '/admin%3Bx/secret'];
const INTO_INTERNAL = ['/internal;a/b', '/internal;', '/;/internal/x'];
const DOT_PARAMS = ['/admin/..;/internal/x', '/x/..;/admin/secret', '/x/..;jsessionid=1/internal/'];

t.test('control: Jetty itself maps path parameters away (this is the container, not a guess)', async (t) => {
  // `/;x/admin/secret` is `//admin/secret` to Jetty (the default servlet) but `/admin/secret` to
  // Tomcat, which merges repeated slashes: the gateway takes the stricter reading, so not here.
  for (const target of ['/admin;x/secret', '/admin;', '/admin;a/;b/secret']) {
    const res = await rawAt(jetty.url, target);
    t.equal((JSON.parse(res.body) as ServletEcho).servlet, 'admin', `${target}: the admin servlet`);
  }
  for (const target of ['/internal;a/b', '/internal;']) t.equal((JSON.parse((await rawAt(jetty.url, target)).body) as ServletEcho).servlet, 'internal', target);
  t.equal((JSON.parse((await rawAt(jetty.url, '/logout;jsessionid=abc')).body) as ServletEcho).servlet, 'logout');
});

t.test('through the proxy: a user outside admins gets 403, never a servlet behind a rule', async (t) => {
  for (const target of [...INTO_ADMIN, ...INTO_INTERNAL]) {
    const res = await rawRequest(gw, target, { headers: withSession(gw, carol, json) });
    t.equal(res.status, 403, `${target}: 403`);
    t.notMatch(res.body, /"servlet"/, `${target}: no servlet answered`);
  }
  for (const target of DOT_PARAMS) {
    const res = await rawRequest(gw, target, { headers: withSession(gw, carol, json) });
    t.equal(res.status, 400, `${target}: \`..;\` cannot be forwarded unambiguously: 400`);
  }
  for (const target of INTO_ADMIN) {
    const res = await rawRequest(gw, target, { headers: json });
    t.equal(res.status, 401, `${target} without a session: 401`);
  }
});

t.test('through the proxy: an admin reaches the admin servlet, with the raw path and identity', async (t) => {
  const res = await rawRequest(gw, '/admin;x/secret', { headers: withSession(gw, alice, json) });
  t.equal(res.status, 200);
  const echo = JSON.parse(res.body) as ServletEcho;
  t.same({ servlet: echo.servlet, user: echo.user, requestURI: echo.requestURI }, { servlet: 'admin', user: 'alice', requestURI: '/admin;x/secret' });
  const denied = await rawRequest(gw, '/internal;a/b', { headers: withSession(gw, alice, json) });
  t.equal(denied.status, 403, 'deny is deny for admins too');
  const plain = await rawRequest(gw, '/app;jsessionid=1/page', { headers: withSession(gw, carol, json) });
  t.equal((JSON.parse(plain.body) as ServletEcho).servlet, 'default', 'control: parameters elsewhere pass as before');
});

t.test('through /_auth/verify (a trusted proxy naming the request): 403 for each, 204 for an admin', async (t) => {
  for (const uri of [...INTO_ADMIN, ...INTO_INTERNAL, ...DOT_PARAMS]) {
    const res = await callVerify(gw, { 'x-forwarded-uri': uri, 'x-forwarded-method': 'GET', cookie: withSession(gw, carol).cookie });
    t.equal(res.status, 403, `X-Forwarded-Uri: ${uri}`);
    const nginx = await callVerify(gw, { 'x-original-uri': uri, 'x-original-method': 'GET', cookie: withSession(gw, carol).cookie });
    t.equal(nginx.status, 403, `X-Original-URI: ${uri}`);
  }
  const admin = await callVerify(gw, { 'x-forwarded-uri': '/admin;x/secret', 'x-forwarded-method': 'GET', cookie: withSession(gw, alice).cookie });
  t.equal(admin.status, 204);
  t.equal(admin.headers['x-forwarded-user'], 'alice');
});

t.test('through a WebSocket upgrade: 403 before any handshake reaches the container', async (t) => {
  const upgrade = (cookie: string) => ({ ...withSession(gw, cookie), connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', origin: gw.url });
  for (const target of [...INTO_ADMIN, ...INTO_INTERNAL]) {
    const res = await rawUpgrade(gw.url, target, { headers: upgrade(carol) });
    t.equal(res.status, 403, `${target}: 403`);
  }
});

t.test('/logout;jsessionid=abc ends the gateway session, as it ends the app one', async (t) => {
  const cookie = await login(gw, 'carol', 'carol-Pw-0011');
  const res = await rawRequest(gw, '/logout;jsessionid=abc', { headers: withSession(gw, cookie, { 'sec-fetch-site': 'same-origin' }) });
  t.equal(res.status, 303);
  t.equal(res.headers.location, '/_auth/login?logged_out=1');
  t.equal((await apiGet(gw, '/_auth/session', cookie)).status, 401, 'the session is gone');
  const other = await send(`${gw.url}/app`, { headers: withSession(gw, cookie, json) });
  t.equal(other.status, 401);
});
