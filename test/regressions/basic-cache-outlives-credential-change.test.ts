// Attack: HTTP Basic answers are cached for GATEWAY_BASIC_AUTH_CACHE (5 minutes by default), so
// that a WebDAV client's many requests do not each hash a password. A user who learns that their
// password leaked changes it on the account page, or sets up a second factor, and believes the old
// password dead. It was not: on every replica that had seen it, `curl -u kim:<old password>` kept
// reaching the app until the cache time ran out, and the same for a password that, after
// enrolment, opens nothing alone. Only `session-gateway users passwd` told the replicas.
// Defence: src/account/routes.ts (password change), src/login/mfa-routes.ts (TOTP enrolment) and
// src/login/webauthn-routes.ts (passkey registration) publish the user's invalidation
// (tokens/services.ts forgetUserCredentials): every replica forgets the user's cached credentials.
import t from 'tap';
import { totpCode } from '../../src/mfa/totp.js';
import type { TestGateway } from '../helpers/gateway.js';
import { cookieHeader, send } from '../helpers/http.js';
import { testBed } from './setup.js';

const PASSWORD = 'an old and leaked passphrase';
const NEW_PASSWORD = 'a brand new passphrase for kim';
const bed = await testBed(t, ['kim', 'lou'].map((username) => ({ username, password: PASSWORD, groups: ['staff'] })));
const env = { GATEWAY_BASIC_AUTH: 'true', GATEWAY_MFA: 'optional', GATEWAY_MFA_ENCRYPTION_KEY: 'basic-cache-test-key-0123456789-abcdefghijklmnopqrstuvwxyz' };
// Two replicas over one Redis: the user acts on one, the old credential is tried on the other.
const one = await bed.gateway(env);
const two = await bed.gateway(env);

const json = { 'content-type': 'application/json', accept: 'application/json' };
const post = (g: TestGateway, path: string, body: unknown, cookies: Record<string, string> = {}) =>
  send(`${g.url}${path}`, { method: 'POST', headers: { ...json, origin: g.url, cookie: cookieHeader(cookies) }, body: JSON.stringify(body) });
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const viaBasic = async (g: TestGateway, user: string, password: string) => (await send(`${g.url}/files`, { headers: { accept: 'application/json', authorization: basic(user, password) } })).status;

async function signIn(g: TestGateway, user: string): Promise<Record<string, string>> {
  const res = await post(g, '/_auth/login', { username: user, password: PASSWORD });
  if (res.status !== 200) throw new Error(`sign-in: ${res.status}`);
  return { sgw_session: res.cookies.sgw_session ?? '' };
}

t.test('a password changed on the account page stops working over Basic at once, on every replica', async (t) => {
  for (const g of [one, two]) t.equal(await viaBasic(g, 'kim', PASSWORD), 200, 'control: Basic works, and is cached now');
  const session = await signIn(one, 'kim');
  const changed = await post(one, '/_auth/account/password', { current: PASSWORD, new: NEW_PASSWORD, confirm: NEW_PASSWORD }, session);
  t.equal(changed.status, 200, changed.body);
  t.equal(await viaBasic(one, 'kim', PASSWORD), 401, 'the old password: refused where it was changed');
  t.equal(await viaBasic(two, 'kim', PASSWORD), 401, 'and on the other replica');
  t.equal(await viaBasic(two, 'kim', NEW_PASSWORD), 200, 'the new one works');
});

t.test('after a second factor is set up, the cached password alone opens nothing, on every replica', async (t) => {
  for (const g of [one, two]) t.equal(await viaBasic(g, 'lou', PASSWORD), 200, 'control: Basic works, and is cached now');
  const session = await signIn(one, 'lou');
  const setup = await send(`${one.url}/_auth/mfa/setup`, { headers: { accept: 'application/json', cookie: cookieHeader(session) } });
  const secret = new URL(setup.json<{ otpauth: string }>().otpauth).searchParams.get('secret') ?? '';
  const confirmed = await post(one, '/_auth/mfa/setup', { code: totpCode(secret, Date.now()) }, session);
  t.equal(confirmed.status, 200, confirmed.body);
  t.equal(await viaBasic(one, 'lou', PASSWORD), 401, 'refused where the factor was set up');
  t.equal(await viaBasic(two, 'lou', PASSWORD), 401, 'and on the other replica');
});
