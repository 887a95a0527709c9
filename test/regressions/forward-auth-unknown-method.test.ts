// Attack: nginx's auth_request subrequest is always a GET on the wire, whatever the client sent. With
// the widely copied snippet (only X-Original-URI), the gateway took that GET for the client's
// method, so every rule scoped to other methods was skipped: a user outside `writers` POSTs to
// /api (rule: POST/PUT/DELETE need `writers`) and nginx forwards it. No header needed.
// Defence (SPEC 4): src/forward-auth/original-request.ts never takes the verify request's own method for
// the client's; without a method header the method is unknown and src/access/rules.ts
// applies every rule some method would reach (a deny for one method denies; groups for some
// methods are needed). The verify fast path and the route decide alike (verify.ts ruleFor), and a
// one-time warning names the missing header.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { callVerify } from '../helpers/forward-auth.js';
import { login, withSession } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import { startNginx, uriOnlyAuthRequestSite } from '../helpers/nginx.js';
import { testBed } from './setup.js';

const bed = await testBed(t, [
  { username: 'bob', password: 'bob-Pw-0017', groups: ['staff'] },
  { username: 'wendy', password: 'wendy-Pw-0017', groups: ['writers'] },
]);
const dir = mkdtempSync(join(tmpdir(), 'sgw-unknown-method-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(
  join(dir, 'rules.yaml'),
  ['- { path: /api, methods: [POST, PUT, DELETE], policy: { groups: [writers] } }', '- { path: /docs, methods: [GET], policy: public }', ''].join('\n'),
);
const env = { GATEWAY_TRUSTED_PROXIES: '127.0.0.1', GATEWAY_ACCESS_RULES: join(dir, 'rules.yaml') };
const gw = await bed.gateway(env);
// Access lines for verify on: the fast path is off, fastify's route answers everything.
const routeOnly = await bed.gateway({ ...env, GATEWAY_ACCESS_LOG: 'true', GATEWAY_VERIFY_ACCESS_LOG: 'true' });
const site = await startNginx(t, uriOnlyAuthRequestSite(gw.running.proxyPort, bed.upstream.port));
const bobCookie = await login(gw, 'bob', 'bob-Pw-0017');
const wendyCookie = await login(gw, 'wendy', 'wendy-Pw-0017');

t.test('through a real nginx: a POST outside `writers` is refused, no header needed', async (t) => {
  const before = bed.upstream.received.length;
  for (const method of ['POST', 'PUT', 'DELETE']) {
    const res = await send(`${site}/api/items`, { method, headers: { ...withSession(gw, bobCookie), 'content-type': 'application/json' }, body: '{}' });
    t.equal(res.status, 403, `${method} /api/items as bob: 403`);
  }
  t.equal(bed.upstream.received.length, before, 'the app received nothing');
  const writer = await send(`${site}/api/items`, { method: 'POST', headers: { ...withSession(gw, wendyCookie), 'content-type': 'application/json' }, body: '{}' });
  t.equal(writer.status, 200, 'a writer still posts');
});

t.test('the fast path and the route decide alike', async (t) => {
  const cases: Array<[cookie: string, headers: Record<string, string>, status: number]> = [
    [bobCookie, { 'x-original-uri': '/api/items' }, 403],
    [wendyCookie, { 'x-original-uri': '/api/items' }, 204],
    [bobCookie, { 'x-original-uri': '/api/items', 'x-original-method': 'GET' }, 204],
    [bobCookie, { 'x-original-uri': '/other' }, 204],
    [bobCookie, { 'x-forwarded-uri': '/api/items', 'x-original-method': 'GET' }, 403],
  ];
  for (const [cookie, headers, status] of cases) {
    for (const target of [gw, routeOnly]) {
      const res = await callVerify(target, { ...withSession(gw, cookie), ...headers });
      t.equal(res.status, status, `${JSON.stringify(headers)} (${target === gw ? 'fast path' : 'route'})`);
    }
  }
  const anonymous = await callVerify(gw, { 'x-original-uri': '/docs/intro' });
  t.equal(anonymous.status, 401, 'public for GET only: without the method, a session is needed');
  const named = await callVerify(gw, { 'x-original-uri': '/docs/intro', 'x-original-method': 'GET' });
  t.equal(named.status, 204, 'control: a named GET is public');
});

t.test('the operator is told once that the method header is missing', async (t) => {
  const warnings = gw.logs.filter((line) => line.includes('without X-Forwarded-Method'));
  t.equal(warnings.length, 1, 'one warning, however many calls');
  t.match(warnings[0], /"level":40/);
});
