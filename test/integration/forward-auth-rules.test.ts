// Access rules through forward-auth: /_auth/verify gives the proxy in front the same answers the
// proxy path gives (204 / 401 / 403), for the original request a trusted proxy names, with the
// group list narrowed per rule in both the header and the signed token.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { callVerify } from '../helpers/forward-auth.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { login, seedUsers, startTestGateway, uniquePrefix, withSession, type TestGateway } from '../helpers/gateway.js';
import { services } from '../helpers/services.js';

const dir = mkdtempSync(join(tmpdir(), 'sgw-fwd-rules-'));
const rules = join(dir, 'rules.yaml');
writeFileSync(
  rules,
  `- path: /status
  policy: public
- path: /admin
  policy: { groups: [admins] }
  forward_groups: [admins]
- path: /internal
  policy: deny
- path: /orders
  methods: [DELETE]
  policy: { groups: [admins] }
`,
);

const { redis, pg } = await services(t);
await seedUsers(t, pg.url, [
  { username: 'ada', password: 'ada-fwd-password', groups: ['admins', 'payroll'] },
  { username: 'bob', password: 'bob-fwd-password', groups: ['staff'] },
]);
const base = {
  REDIS_URL: redis.url,
  DATABASE_URL: pg.url,
  GATEWAY_REDIS_PREFIX: uniquePrefix(),
  GATEWAY_ACCESS_RULES: rules,
  GATEWAY_IDENTITY_JWT: 'true',
  GATEWAY_IDENTITY_HMAC_SECRET: 'forward-auth-hmac-secret-0123456789abcdef',
};
const gw = await startTestGateway(t, { ...base, GATEWAY_TRUSTED_PROXIES: '127.0.0.1' });
const ada = withSession(gw, await login(gw, 'ada', 'ada-fwd-password'));
const bob = withSession(gw, await login(gw, 'bob', 'bob-fwd-password'));

const verify = (target: TestGateway, headers: OutgoingHttpHeaders) => callVerify(target, headers);
const asking = (uri: string, method = 'GET') => ({ 'x-original-uri': uri, 'x-original-method': method });
const tokenGroups = (headers: IncomingHttpHeaders) =>
  JSON.parse(Buffer.from(String(headers['x-gateway-identity']).split('.')[1] ?? '', 'base64url').toString('utf8')).groups;

t.test('the rule table, as nginx auth_request would see it', async (t) => {
  const cases: Array<[who: string, headers: Record<string, string>, uri: string, method: string, status: number]> = [
    ['anonymous', {}, '/status/live', 'GET', 204],
    ['anonymous', {}, '/admin/users', 'GET', 401],
    ['bob', bob, '/admin/users', 'GET', 403],
    ['ada', ada, '/admin/users', 'GET', 204],
    ['anonymous', {}, '/internal/x', 'GET', 403],
    ['ada', ada, '/internal/x', 'GET', 403],
    ['ada', ada, '/%69nternal/x', 'GET', 403],
    ['bob', bob, '/orders/7', 'GET', 204],
    ['bob', bob, '/orders/7', 'DELETE', 403],
    ['ada', ada, '/orders/7', 'DELETE', 204],
    ['bob', bob, '/anything', 'GET', 204],
    ['anonymous', {}, '/anything', 'GET', 401],
  ];
  for (const [who, headers, uri, method, status] of cases) {
    t.equal((await verify(gw, { ...headers, ...asking(uri, method) })).status, status, `${who} ${method} ${uri}`);
  }
  t.ok(gw.logs.some((line) => /"audit":"access_denied"/.test(line) && /"user":"bob"/.test(line)), 'refusals are audited even though verify logs quietly');
});

t.test('forward_groups narrows the group header and the token under its rule', async (t) => {
  const admin = await verify(gw, { ...ada, ...asking('/admin/users') });
  t.equal(admin.headers['x-forwarded-groups'], 'admins');
  t.same(tokenGroups(admin.headers), ['admins']);
  t.equal(JSON.parse(Buffer.from(String(admin.headers['x-gateway-identity']).split('.')[1] ?? '', 'base64url').toString('utf8')).aud, `https://${new URL(gw.url).host}`, 'without GATEWAY_UPSTREAM the audience names the app by the request’s host');
  const elsewhere = await verify(gw, { ...ada, ...asking('/home') });
  t.equal(elsewhere.headers['x-forwarded-groups'], 'admins,payroll');
  t.same(tokenGroups(elsewhere.headers), ['admins', 'payroll']);
});

t.test('restrictive rules and no original request (untrusted proxy): refused, not waved through', async (t) => {
  const untrusting = await startTestGateway(t, base); // GATEWAY_TRUSTED_PROXIES unset
  const cookie = withSession(untrusting, await login(untrusting, 'bob', 'bob-fwd-password'));
  const res = await verify(untrusting, { ...cookie, ...asking('/admin/users') });
  t.equal(res.status, 403, 'a signed-in user must not reach a groups rule because the path is unknown');
});

t.test('a WebSocket handshake through forward-auth must come from the gateway origin, as on the proxy path', async (t) => {
  const handshake = { 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13', upgrade: 'websocket', connection: 'Upgrade' };
  const crossSite = await verify(gw, { ...bob, ...handshake, origin: 'https://evil.example', ...asking('/feed') });
  t.equal(crossSite.status, 403, 'cross-site WebSocket with a session refused');
  t.notOk(crossSite.headers['x-forwarded-user'], 'no identity handed out');
  const sameSite = await verify(gw, { ...bob, ...handshake, origin: gw.url, host: new URL(gw.url).host, ...asking('/feed') });
  t.equal(sameSite.status, 204, 'same origin passes');
  const noOrigin = await verify(gw, { ...bob, ...handshake, ...asking('/feed') });
  t.equal(noOrigin.status, 204, 'a non-browser client (no Origin) passes');
});

t.test('a rule that only narrows groups also needs the original request named', async (t) => {
  const onlyNarrowing = join(dir, 'narrow.yaml');
  writeFileSync(onlyNarrowing, '- path: /admin\n  policy: authenticated\n  forward_groups: [admins]\n');
  const untrusting = await startTestGateway(t, { ...base, GATEWAY_ACCESS_RULES: onlyNarrowing });
  const cookie = withSession(untrusting, await login(untrusting, 'ada', 'ada-fwd-password'));
  t.equal((await verify(untrusting, { ...cookie, ...asking('/admin/users') })).status, 403, 'never the full group list in place of the narrowed one');
});
