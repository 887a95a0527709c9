// Attacks on the second factor from the side (GATEWAY_MFA), found by probing a running gateway:
// 1. HTTP Basic with the account password went straight past it: `curl -u bob:<password>` reached
//    the app (and /_auth/verify answered 204) for a user with a TOTP enrolled, and for a user who
//    had to enrol first under GATEWAY_MFA=required. Basic cannot carry a second step: such a user
//    must use an API token (src/tokens/basic.ts needsSecondFactor; 401 like a wrong password).
// 2. A session made by the second step kept no fingerprint of the password, so the user recheck
//    adopted whatever hash it found: a password reset in the users table never ended it. It now
//    carries the fingerprint of the password step (src/login/second-step.ts complete).
// 3. A sign-in half done (password right, second step pending) outlived `users passwd` and
//    `users disable`, and an attacker who knew the old password could still enrol a factor of
//    their own and get a session. The second step now reads the user again and ends the pending
//    sign-in when it was disabled, removed or given another password (second-step.ts stillHolds).
// 4. A password change on the account page turned a pwd+otp session into a password-only one.
// 5. Every anonymous request to /_auth/account/* wrote an error line with a stack trace.
import t from 'tap';
import { totpCode } from '../../src/mfa/totp.js';
import { migrateTokens } from '../../src/tokens/migrations.js';
import { createToken } from '../../src/tokens/token-admin.js';
import { createPostgresTokenStore } from '../../src/tokens/token-store.js';
import { hashPassword } from '../../src/users/passwords.js';
import { createPostgresUserStore } from '../../src/users/user-store.js';
import { callVerify } from '../helpers/forward-auth.js';
import type { TestGateway } from '../helpers/gateway.js';
import { cookieHeader, send } from '../helpers/http.js';
import { testBed } from './setup.js';

const PASSWORD = 'correct horse battery staple';
const KEY = 'mfa-gaps-test-key-0123456789-abcdefghijklmnopqrstuvwxyz';
const names = ['bob', 'amy', 'dave', 'frank', 'george', 'hal', 'ivy'];
const bed = await testBed(t, names.map((username) => ({ username, password: PASSWORD, groups: ['staff'] })));
await migrateTokens(bed.pool);
const env = {
  GATEWAY_MFA: 'optional',
  GATEWAY_MFA_ENCRYPTION_KEY: KEY,
  GATEWAY_BASIC_AUTH: 'true',
  GATEWAY_TRUSTED_PROXIES: '127.0.0.1',
  GATEWAY_USER_RECHECK_INTERVAL: '1s',
};
const gw = await bed.gateway(env);
const required = await bed.gateway({ ...env, GATEWAY_MFA: 'required' });

const json = { 'content-type': 'application/json', accept: 'application/json' };
const post = (g: TestGateway, path: string, body: unknown, cookies: Record<string, string> = {}) =>
  send(`${g.url}${path}`, { method: 'POST', headers: { ...json, origin: g.url, cookie: cookieHeader(cookies) }, body: JSON.stringify(body) });
const get = (g: TestGateway, path: string, cookies: Record<string, string> = {}) => send(`${g.url}${path}`, { headers: { accept: 'application/json', cookie: cookieHeader(cookies) } });
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const app = (g: TestGateway, authorization: string) => send(`${g.url}/app`, { headers: { accept: 'application/json', authorization } });

/** Signs in with the password and enrols a TOTP through the JSON API; returns the secret and the pwd+otp session. */
async function enrolled(user: string): Promise<{ secret: string; session: string }> {
  const first = await post(gw, '/_auth/login', { username: user, password: PASSWORD });
  const session = { sgw_session: first.cookies.sgw_session ?? '' };
  const setup = await get(gw, '/_auth/mfa/setup', session);
  const secret = new URL(setup.json<{ otpauth: string }>().otpauth).searchParams.get('secret') ?? '';
  const confirmed = await post(gw, '/_auth/mfa/setup', { code: totpCode(secret, Date.now()) }, session);
  if (confirmed.status !== 200) throw new Error(`enrolment: ${confirmed.status} ${confirmed.body}`);
  return { secret, session: confirmed.cookies.sgw_session ?? '' };
}

/** Waits past the recheck interval (1 s), then asks once more. */
const afterRecheck = async (ask: () => Promise<number>) => {
  await new Promise((resolve) => setTimeout(resolve, 1_300));
  await ask();
  return ask();
};

t.test('Basic with the password: refused for a user with a second factor, or who must enrol; tokens still work', async (t) => {
  t.equal((await app(gw, basic('amy', PASSWORD))).status, 200, 'control: no factor, optional mode: Basic works');
  await enrolled('bob');
  const refused = await app(gw, basic('bob', PASSWORD));
  t.equal(refused.status, 401, 'bob has a TOTP: his password alone is refused');
  t.match(refused.headers['www-authenticate'], /^Basic /);
  t.equal((await callVerify(gw, { 'x-forwarded-uri': '/app', 'x-forwarded-method': 'GET', authorization: basic('bob', PASSWORD) })).status, 401, 'forward-auth too');
  t.equal((await app(required, basic('amy', PASSWORD))).status, 401, 'GATEWAY_MFA=required: a user who must enrol is refused too');
  t.ok(gw.logs.some((line) => line.includes('"second_factor"')), 'the refusal says why in the log');

  const { token } = await createToken(createPostgresTokenStore(bed.pool), (n) => createPostgresUserStore(bed.pool).find(n), { user: 'bob', name: 'calendar', expiresInMs: null });
  const viaToken = await app(gw, basic('bob', token));
  t.equal(viaToken.status, 200, 'an API token as the Basic password: the way for such a user');
  t.equal(viaToken.json<{ headers: Record<string, string> }>().headers['x-forwarded-user'], 'bob');
});

t.test('a session from the second step ends when the password changes in the users table', async (t) => {
  const { secret } = await enrolled('dave');
  const first = await post(gw, '/_auth/login', { username: 'dave', password: PASSWORD });
  const pending = first.cookies.sgw_mfa ?? '';
  const done = await post(gw, '/_auth/mfa', { code: totpCode(secret, Date.now() + 30_000) }, { sgw_mfa: pending });
  t.equal(done.status, 200, `signed in with a code: ${done.body}`);
  const session = done.cookies.sgw_session ?? '';
  t.equal((await get(gw, '/_auth/session', { sgw_session: session })).status, 200);
  await bed.pool.query('UPDATE gateway_users SET password_hash = $1 WHERE username = $2', [await hashPassword('a new password, set by the admin'), 'dave']);
  t.equal(await afterRecheck(async () => (await get(gw, '/_auth/session', { sgw_session: session })).status), 401, 'ended at the recheck, like a password-only session');
});

t.test('a pending sign-in ends when the password changes or the user is disabled before the second step', async (t) => {
  for (const [user, change] of [
    ['frank', async () => bed.pool.query('UPDATE gateway_users SET password_hash = $1 WHERE username = $2', [await hashPassword('reset by the admin'), 'frank'])],
    ['george', async () => bed.pool.query('UPDATE gateway_users SET disabled = true WHERE username = $1', ['george'])],
  ] as const) {
    const first = await post(required, '/_auth/login', { username: user, password: PASSWORD });
    t.match(first.json(), { next: '/_auth/mfa/setup' }, `${user}: the password step passed`);
    const pending = { sgw_mfa: first.cookies.sgw_mfa ?? '' };
    t.equal((await get(required, '/_auth/mfa/setup', pending)).status, 200, `${user}: enrolment offered`);
    await change();
    const setup = await get(required, '/_auth/mfa/setup', pending);
    t.equal(setup.status, 401, `${user}: after the change, the pending sign-in opens nothing`);
    const confirm = await post(required, '/_auth/mfa/setup', { code: '123456' }, pending);
    t.equal(confirm.status, 401, `${user}: nor can a factor be enrolled with it`);
    t.notOk(confirm.cookies.sgw_session, `${user}: no session`);
    t.equal((await bed.pool.query('SELECT 1 FROM gateway_mfa WHERE username = $1 AND confirmed', [user]).catch(() => ({ rowCount: 0 }))).rowCount, 0, `${user}: no factor enrolled`);
  }
  t.ok(required.logs.some((line) => line.includes('"user_changed"')), 'audited');
});

t.test('a password change on the account page keeps the session\'s second factor', async (t) => {
  const { session } = await enrolled('hal');
  const changed = await post(gw, '/_auth/account/password', { current: PASSWORD, new: 'hal has a brand new passphrase', confirm: 'hal has a brand new passphrase' }, { sgw_session: session });
  t.equal(changed.status, 200, changed.body);
  const after = await get(gw, '/_auth/session', { sgw_session: changed.cookies.sgw_session ?? '' });
  t.same(after.json<{ amr: string[] }>().amr, ['pwd', 'otp']);
});

t.test('anonymous requests to the account pages are answered without an error line', async (t) => {
  const before = gw.logs.length;
  t.equal((await get(gw, '/_auth/account/password')).status, 401);
  t.equal((await get(gw, '/_auth/account/sessions')).status, 401);
  const page = await send(`${gw.url}/_auth/account/sessions`, { headers: { accept: 'text/html' } });
  t.equal(page.status, 303);
  t.equal((await post(gw, '/_auth/account/sessions', { session: 'others' })).status, 401);
  const errors = gw.logs.slice(before).filter((line) => /"level":(50|60)/.test(line));
  t.same(errors, [], 'no error lines');
});
