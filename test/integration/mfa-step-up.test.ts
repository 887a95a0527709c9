// Step-up (SPEC section 9): an access rule with `"mfa": true` sends a session established with a
// password alone through the second step (enrolment first when the user has no factor yet), then
// back to the original URL; forward-auth answers such a request with 401 and a Location naming the
// second step; the signed identity token says how the session was established (amr).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { totpCode } from '../../src/mfa/totp.js';
import { login, seedUsers, startTestGateway, uniquePrefix, withSession, type TestGateway } from '../helpers/gateway.js';
import { cookieHeader, send } from '../helpers/http.js';
import { services } from '../helpers/services.js';
import { startEchoUpstream } from '../helpers/upstream.js';

const PASSWORD = 'correct horse battery staple';
const STEP_MS = 30_000;
const { redis, pg: db } = await services(t);
await seedUsers(t, db.url, ['sam', 'tia'].map((username) => ({ username, password: PASSWORD })));
const upstream = await startEchoUpstream();
t.teardown(() => upstream.close());
const dir = mkdtempSync(join(tmpdir(), 'sgw-stepup-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const rules = join(dir, 'rules.yaml');
writeFileSync(rules, 'rules:\n  - { path: /admin, policy: authenticated, mfa: true }\n');
const gw = await startTestGateway(t, {
  REDIS_URL: redis.url,
  DATABASE_URL: db.url,
  GATEWAY_UPSTREAM: upstream.url,
  GATEWAY_COOKIE_SECURE: 'false',
  GATEWAY_REDIS_PREFIX: uniquePrefix(),
  GATEWAY_MFA: 'optional',
  GATEWAY_MFA_ENCRYPTION_KEY: 'step-up-key-0123456789-abcdefghijklmnopqrstuvwxyz',
  GATEWAY_ACCESS_RULES: rules,
  GATEWAY_TRUSTED_PROXIES: '127.0.0.1/32',
  GATEWAY_IDENTITY_JWT: 'true',
  GATEWAY_IDENTITY_HMAC_SECRET: 'identity-hmac-0123456789-abcdefghijklmnopqrstuvwxyz',
});

const json = { 'content-type': 'application/json', accept: 'application/json' };
const amrOf = (token: unknown) => (JSON.parse(Buffer.from(String(token).split('.')[1] ?? '', 'base64url').toString()) as { amr: string[] }).amr;
const appAs = async (g: TestGateway, path: string, cookie: string, accept = 'application/json') => send(`${g.url}${path}`, { headers: withSession(g, cookie, { accept }) });
const verify = (g: TestGateway, path: string, cookie: string) =>
  send(`${g.url}/_auth/verify`, { headers: withSession(g, cookie, { 'x-forwarded-uri': path, 'x-forwarded-method': 'GET', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'app.example.com', accept: 'application/json' }) });

t.test('no factor yet: enrol, then back to the URL; the token says pwd+otp', async (t) => {
  const cookie = await login(gw, 'sam', PASSWORD);
  const plain = await appAs(gw, '/reports', cookie);
  t.equal(plain.status, 200, 'a path without the rule: open with the password');
  t.same(amrOf(JSON.parse(plain.body).headers['x-gateway-identity']), ['pwd']);

  const browser = await appAs(gw, '/admin/users?x=1', cookie, 'text/html');
  t.equal(browser.status, 302, 'a navigation to an mfa path is redirected');
  t.equal(browser.headers.location, `/_auth/mfa?rd=${encodeURIComponent('/admin/users?x=1')}`, 'to the second step, with the way back');
  const api = await appAs(gw, '/admin/users', cookie);
  t.equal(api.status, 401);
  t.match(api.json(), { error: /second factor/, mfa: '/_auth/mfa?rd=%2Fadmin%2Fusers' });
  const fa = await verify(gw, '/admin/users', cookie);
  t.equal(fa.status, 401, 'forward-auth: 401');
  t.equal(fa.headers.location, `https://app.example.com/_auth/mfa?rd=${encodeURIComponent('/admin/users')}`, 'with a Location naming the second step');

  const step = await send(`${gw.url}${browser.headers.location}`, { headers: withSession(gw, cookie, { accept: 'text/html' }) });
  t.equal(step.status, 303);
  t.equal(step.headers.location, `/_auth/mfa/setup?rd=${encodeURIComponent('/admin/users?x=1')}`, 'no factor: enrolment first, the way back kept');
  const setup = await send(`${gw.url}/_auth/mfa/setup`, { headers: withSession(gw, cookie, json) });
  const secret = new URL(setup.json<{ otpauth: string }>().otpauth).searchParams.get('secret') ?? '';
  const done = await send(`${gw.url}/_auth/mfa/setup`, { method: 'POST', headers: withSession(gw, cookie, json), body: JSON.stringify({ code: totpCode(secret, Date.now()) }) });
  t.equal(done.status, 200, done.body);
  const upgraded = done.cookies.sgw_session ?? '';
  const admin = await appAs(gw, '/admin/users', upgraded);
  t.equal(admin.status, 200, 'now the mfa path opens');
  t.same(amrOf(JSON.parse(admin.body).headers['x-gateway-identity']), ['pwd', 'otp'], 'the token carries amr');
  const fa2 = await verify(gw, '/admin/users', upgraded);
  t.equal(fa2.status, 204, 'forward-auth lets it through');
  t.same(amrOf(fa2.headers['x-gateway-identity']), ['pwd', 'otp']);
  t.equal((await appAs(gw, '/admin/users', cookie)).status, 401, 'the password-only session it replaced is gone or still refused');
});

t.test('a factor set up elsewhere: a password-only session steps up with a code', async (t) => {
  const older = await login(gw, 'tia', PASSWORD);
  // Enrolled from another browser; the older session stays password-only.
  const other = await login(gw, 'tia', PASSWORD);
  const setup = await send(`${gw.url}/_auth/mfa/setup`, { headers: withSession(gw, other, json) });
  const secret = new URL(setup.json<{ otpauth: string }>().otpauth).searchParams.get('secret') ?? '';
  t.equal((await send(`${gw.url}/_auth/mfa/setup`, { method: 'POST', headers: withSession(gw, other, json), body: JSON.stringify({ code: totpCode(secret, Date.now()) }) })).status, 200);

  const page = await appAs(gw, '/admin', older, 'text/html');
  t.equal(page.headers.location, '/_auth/mfa?rd=%2Fadmin');
  const form = await send(`${gw.url}/_auth/mfa?rd=%2Fadmin`, { headers: withSession(gw, older, { accept: 'text/html' }) });
  t.equal(form.status, 200, 'the code form');
  t.match(form.body, /name="rd" value="\/admin"/, 'carrying the way back');
  const wrong = await send(`${gw.url}/_auth/mfa`, { method: 'POST', headers: withSession(gw, older, json), body: JSON.stringify({ code: '000000', rd: '/admin' }) });
  t.equal(wrong.status, 401);
  const ok = await send(`${gw.url}/_auth/mfa`, { method: 'POST', headers: withSession(gw, older, json), body: JSON.stringify({ code: totpCode(secret, Date.now() + STEP_MS), rd: '/admin' }) });
  t.equal(ok.status, 200, ok.body);
  t.same(ok.json().amr, ['pwd', 'otp']);
  const stepped = ok.cookies.sgw_session ?? '';
  t.not(stepped, older, 'a new session id');
  t.equal((await appAs(gw, '/admin', stepped)).status, 200);
  t.equal((await send(`${gw.url}/_auth/session`, { headers: { cookie: cookieHeader({ sgw_session: older }) } })).status, 401, 'the password-only session ended');
});
