// The second factor (SPEC section 9) against real PostgreSQL and Redis: enrolment and sign-in
// through the JSON API, recovery codes that work once, a code replayed on another replica, wrong
// codes throttled, GATEWAY_MFA=required sending a new user to enrolment with nothing else open, and
// `users mfa status|reset` from the CLI. Codes are computed from the enrolled secret the way an
// authenticator app computes them (the same library).
import t from 'tap';
import { totpCode } from '../../src/mfa/totp.js';
import { ensureBuilt, runCli } from '../helpers/cli.js';
import { login, seedUsers, startTestGateway, TEST_SECRET, uniquePrefix, withSession, type TestGateway } from '../helpers/gateway.js';
import { cookieHeader, send, type Response } from '../helpers/http.js';
import { scrapeMetric } from '../helpers/metrics.js';
import { services } from '../helpers/services.js';
import { startEchoUpstream } from '../helpers/upstream.js';

await ensureBuilt();
const PASSWORD = 'correct horse battery staple';
const KEY = 'mfa-test-key-0123456789-abcdefghijklmnopqrstuvwxyz';
const USERS = ['ann', 'ben', 'cat', 'dan', 'eve', 'fay', 'gus'];
const STEP_MS = 30_000;

const { redis, pg: db } = await services(t);
const pool = await seedUsers(t, db.url, USERS.map((username) => ({ username, password: PASSWORD, email: `${username}@example.com`, groups: ['staff'] })));
const upstream = await startEchoUpstream();
t.teardown(() => upstream.close());
const prefix = uniquePrefix();
const env = (extra: Record<string, string> = {}) => ({
  REDIS_URL: redis.url,
  DATABASE_URL: db.url,
  GATEWAY_UPSTREAM: upstream.url,
  GATEWAY_COOKIE_SECURE: 'false',
  GATEWAY_REDIS_PREFIX: prefix,
  GATEWAY_MFA: 'optional',
  GATEWAY_MFA_ENCRYPTION_KEY: KEY,
  ...extra,
});
// Two replicas sharing Redis, PostgreSQL, the secrets and the key.
const gw = await startTestGateway(t, env());
const other = await startTestGateway(t, env());

const json = { 'content-type': 'application/json', accept: 'application/json' };
const post = (g: TestGateway, path: string, body: unknown, cookies: Record<string, string> = {}) =>
  send(`${g.url}${path}`, { method: 'POST', headers: { ...json, cookie: cookieHeader(cookies) }, body: JSON.stringify(body) });
const get = (g: TestGateway, path: string, cookies: Record<string, string> = {}) => send(`${g.url}${path}`, { headers: { accept: 'application/json', cookie: cookieHeader(cookies) } });

/** Password step: for a user with a factor, 200 {next} and the pending cookie, no session cookie. */
async function password(g: TestGateway, user: string): Promise<{ res: Response; pending: string }> {
  const res = await post(g, '/_auth/login', { username: user, password: PASSWORD });
  return { res, pending: res.cookies.sgw_mfa ?? '' };
}

/** Enrols a signed-in (password-only) user through the JSON API; returns the secret and recovery codes. */
async function enrol(t: Tap, g: TestGateway, session: Record<string, string>): Promise<{ secret: string; recoveryCodes: string[]; cookie: string; res: Response }> {
  const setup = await get(g, '/_auth/mfa/setup', session);
  t.equal(setup.status, 200, `enrolment offered: ${setup.body}`);
  const { otpauth, key } = setup.json<{ otpauth: string; key: string }>();
  const secret = new URL(otpauth).searchParams.get('secret') ?? '';
  t.equal(key.replace(/ /g, ''), secret, 'the key shown is the secret in the URI');
  const res = await post(g, '/_auth/mfa/setup', { code: totpCode(secret, Date.now()) }, session);
  t.equal(res.status, 200, `enrolment confirmed: ${res.body}`);
  return { secret, recoveryCodes: res.json<{ recoveryCodes: string[] }>().recoveryCodes, cookie: res.cookies.sgw_session ?? '', res };
}
type Tap = Pick<typeof t, 'equal' | 'ok' | 'same' | 'match' | 'not'>;

const sessionOf = (g: TestGateway, cookie: string) => get(g, '/_auth/session', { sgw_session: cookie });

t.test('enrol through JSON, then sign in with a code', async (t) => {
  const first = await login(gw, 'ann', PASSWORD);
  t.same((await sessionOf(gw, first)).json().amr, ['pwd'], 'optional mode, no factor yet: a password session at once');
  const { secret, recoveryCodes, cookie, res } = await enrol(t, gw, { sgw_session: first });
  t.match(secret, /^[A-Z2-7]{32}$/, '160-bit base32 secret');
  t.equal(recoveryCodes.length, 10, 'ten recovery codes');
  t.equal(new Set(recoveryCodes).size, 10, 'all different');
  t.match(res.json(), { user: 'ann', amr: ['pwd', 'otp'] });
  t.ok(cookie && cookie !== first, 'a new session id after enrolment');
  t.equal((await sessionOf(gw, first)).status, 401, 'the password-only session ended');
  t.same((await sessionOf(gw, cookie)).json().amr, ['pwd', 'otp']);

  // At rest: the secret is ciphertext, the codes are hashes; the users table is untouched.
  const row = (await pool.query('SELECT totp_secret, recovery_codes FROM gateway_mfa WHERE username = $1', ['ann'])).rows[0] as { totp_secret: string; recovery_codes: string[] };
  t.notMatch(row.totp_secret, secret, 'the TOTP secret is not stored in clear');
  t.match(row.totp_secret, /^v1\./);
  t.equal(row.recovery_codes.length, 10);
  for (const code of recoveryCodes) t.notOk(row.recovery_codes.some((stored) => stored.includes(code.replace(/-/g, ''))), 'recovery codes stored hashed');
  const columns = (await pool.query("SELECT column_name FROM information_schema.columns WHERE table_name = 'gateway_users' ORDER BY column_name")).rows.map((r: { column_name: string }) => r.column_name);
  t.same(columns, ['created_at', 'disabled', 'email', 'groups', 'password_hash', 'updated_at', 'username'], 'gateway_users has no new column');

  // Next sign-in: the password alone opens nothing.
  const { res: step1, pending } = await password(gw, 'ann');
  t.equal(step1.status, 200);
  t.same(step1.json(), { next: '/_auth/mfa' });
  t.equal(step1.cookies.sgw_session, '', 'no session cookie after the password (cleared)');
  t.ok(pending, 'a pending sign-in cookie');
  t.match(step1.setCookie('sgw_mfa') ?? '', /Path=\/_auth\/mfa; .*HttpOnly/i, 'scoped to the second step, HttpOnly');
  const withPending = { cookie: cookieHeader({ sgw_mfa: pending, sgw_session: pending }), accept: 'application/json' };
  t.equal((await send(`${gw.url}/app`, { headers: withPending })).status, 401, 'the app is not reachable');
  t.equal((await send(`${gw.url}/_auth/session`, { headers: withPending })).status, 401, '/_auth/session: nobody');
  t.equal((await send(`${gw.url}/_auth/verify`, { headers: withPending })).status, 401, 'forward-auth: nobody');
  t.same((await get(gw, '/_auth/mfa', { sgw_mfa: pending })).json(), { user: 'ann', methods: ['totp', 'recovery'] });

  t.equal((await post(gw, '/_auth/mfa', { code: '000000' }, { sgw_mfa: pending })).status, 401, 'a wrong code: 401');
  // The enrolment used this time step; the next code (one step ahead, within the drift) signs in.
  const done = await post(gw, '/_auth/mfa', { code: totpCode(secret, Date.now() + STEP_MS) }, { sgw_mfa: pending });
  t.equal(done.status, 200, done.body);
  t.match(done.json(), { user: 'ann', email: 'ann@example.com', groups: ['staff'], amr: ['pwd', 'otp'] });
  const full = done.cookies.sgw_session ?? '';
  t.ok(full, 'the full session cookie');
  t.match(done.setCookie('sgw_mfa') ?? '', /Expires=Thu, 01 Jan 1970/, 'the pending cookie is cleared');
  const app = await send(`${gw.url}/app`, { headers: withSession(gw, full) });
  t.equal(app.status, 200);
  t.equal(JSON.parse(app.body).headers['x-forwarded-user'], 'ann', 'the app gets the user');
  t.equal((await post(gw, '/_auth/mfa', { code: totpCode(secret, Date.now() + STEP_MS) }, { sgw_mfa: pending })).status, 401, 'the pending sign-in is used up');
  t.ok((await scrapeMetric(gw.adminUrl, 'gateway_mfa_verifications_total', { method: 'totp', outcome: 'success' })) >= 2, 'success counted');
  t.ok((await scrapeMetric(gw.adminUrl, 'gateway_mfa_verifications_total', { method: 'totp', outcome: 'failure' })) >= 1, 'failure counted');
  t.notOk(gw.logs.some((line) => line.includes(secret) || line.includes(recoveryCodes[0] ?? '--')), 'no secret or recovery code in the log');
});

t.test('a recovery code signs in once', async (t) => {
  const { recoveryCodes } = await enrol(t, gw, { sgw_session: await login(gw, 'ben', PASSWORD) });
  const code = recoveryCodes[3] ?? '';
  const first = await password(gw, 'ben');
  // Typed loosely: upper case, spaces instead of dashes.
  const ok = await post(gw, '/_auth/mfa', { code: code.toUpperCase().replace(/-/g, ' ') }, { sgw_mfa: first.pending });
  t.equal(ok.status, 200, ok.body);
  t.same(ok.json().amr, ['pwd', 'otp']);
  const second = await password(other, 'ben');
  t.equal((await post(other, '/_auth/mfa', { code }, { sgw_mfa: second.pending })).status, 401, 'the same recovery code again, on another replica: refused');
  t.equal((await post(other, '/_auth/mfa', { code: recoveryCodes[4] }, { sgw_mfa: second.pending })).status, 200, 'another one works');
  t.ok((await scrapeMetric(gw.adminUrl, 'gateway_mfa_verifications_total', { method: 'recovery', outcome: 'success' })) >= 1);
  const status = await runCli(['users', 'mfa', 'status', 'ben'], { env: { DATABASE_URL: db.url } });
  t.equal(JSON.parse(status.stdout).recoveryCodesLeft, 8, 'two used, eight left');
});

t.test('a code accepted once is refused on every replica', async (t) => {
  const { secret } = await enrol(t, gw, { sgw_session: await login(gw, 'cat', PASSWORD) });
  const [a, b] = [await password(gw, 'cat'), await password(other, 'cat')];
  const code = totpCode(secret, Date.now() + STEP_MS);
  // The same code at once on both replicas: exactly one signs in.
  const answers = await Promise.all([post(gw, '/_auth/mfa', { code }, { sgw_mfa: a.pending }), post(other, '/_auth/mfa', { code }, { sgw_mfa: b.pending })]);
  t.same(answers.map((r) => r.status).sort(), [200, 401], 'one accepted, the replay refused');
  // And an older code (before the one used) is refused too.
  const again = await password(other, 'cat');
  t.equal((await post(other, '/_auth/mfa', { code: totpCode(secret, Date.now()) }, { sgw_mfa: again.pending })).status, 401, 'an earlier step: refused');
  const replays = (await scrapeMetric(gw.adminUrl, 'gateway_mfa_verifications_total', { method: 'totp', outcome: 'replayed' })) + (await scrapeMetric(other.adminUrl, 'gateway_mfa_verifications_total', { method: 'totp', outcome: 'replayed' }));
  t.ok(replays >= 2, `replays counted (${replays})`);
});

t.test('wrong codes are throttled like passwords', async (t) => {
  const tight = await startTestGateway(t, env({ GATEWAY_LOGIN_MAX_ATTEMPTS: '3', GATEWAY_REDIS_PREFIX: uniquePrefix() }));
  const { secret } = await enrol(t, tight, { sgw_session: await login(tight, 'dan', PASSWORD) });
  const { pending } = await password(tight, 'dan');
  for (let i = 0; i < 3; i++) t.equal((await post(tight, '/_auth/mfa', { code: '123456' }, { sgw_mfa: pending })).status, 401, `wrong code #${i + 1}`);
  const refused = await post(tight, '/_auth/mfa', { code: totpCode(secret, Date.now() + STEP_MS) }, { sgw_mfa: pending });
  t.equal(refused.status, 429, 'then even the right code is refused');
  t.ok(Number(refused.headers['retry-after']) > 0, 'with Retry-After');
  t.ok((await scrapeMetric(tight.adminUrl, 'gateway_mfa_verifications_total', { outcome: 'throttled' })) >= 1);
  // The password throttle is a separate count: the password still works.
  t.equal((await password(tight, 'dan')).res.status, 200, 'the password step is not locked by wrong codes');
});

t.test('required: a user without a factor is sent to enrolment, and nothing else is open', async (t) => {
  const strict = await startTestGateway(t, env({ GATEWAY_MFA: 'required' }));
  const { res, pending } = await password(strict, 'eve');
  t.same(res.json(), { next: '/_auth/mfa/setup' });
  const pendingOnly = { sgw_mfa: pending };
  t.equal((await send(`${strict.url}/app`, { headers: { cookie: cookieHeader(pendingOnly), accept: 'application/json' } })).status, 401, 'the app: no');
  t.equal((await get(strict, '/_auth/session', pendingOnly)).status, 401, '/_auth/session: no');
  t.equal((await get(strict, '/_auth/mfa', pendingOnly)).status, 409, 'the code step: enrol first');
  t.equal((await post(strict, '/_auth/mfa', { code: '123456' }, pendingOnly)).status, 409, 'no code accepted before enrolment');
  const browser = await send(`${strict.url}/_auth/mfa`, { headers: { cookie: cookieHeader(pendingOnly), accept: 'text/html' } });
  t.equal(browser.status, 303);
  t.match(browser.headers.location, /^\/_auth\/mfa\/setup/, 'a browser is sent to enrolment');
  const { cookie, recoveryCodes } = await enrol(t, strict, pendingOnly);
  t.equal(recoveryCodes.length, 10);
  t.ok(cookie, 'enrolment completes the sign-in');
  t.equal((await send(`${strict.url}/app`, { headers: withSession(strict, cookie) })).status, 200, 'now the app is open');
  t.same((await sessionOf(strict, cookie)).json().amr, ['pwd', 'otp']);
  t.equal((await get(strict, '/_auth/mfa/setup', { sgw_session: cookie })).status, 409, 'a second enrolment is refused');
  const next = await password(strict, 'eve');
  t.same(next.res.json(), { next: '/_auth/mfa' }, 'the next sign-in asks for a code');
});

t.test('form posts need the CSRF token and the same origin', async (t) => {
  const { pending } = await password(gw, 'ann');
  const form = (headers: Record<string, string>, body: string) => send(`${gw.url}/_auth/mfa`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookieHeader({ sgw_mfa: pending }), ...headers }, body });
  t.equal((await form({}, 'code=123456')).status, 403, 'no CSRF token');
  t.equal((await form({ origin: 'https://evil.example' }, 'code=123456')).status, 403, 'cross-origin');
  const page = await send(`${gw.url}/_auth/mfa`, { headers: { accept: 'text/html', cookie: cookieHeader({ sgw_mfa: pending }) } });
  t.equal(page.status, 200);
  t.match(page.headers['content-security-policy'], /^default-src 'none'; style-src 'sha256-[^']+' 'sha256-[^']+'; form-action 'self'/);
  t.match(page.body, /autocomplete="one-time-code"/);
});

t.test('users mfa status and reset', async (t) => {
  const { cookie } = await enrol(t, gw, { sgw_session: await login(gw, 'fay', PASSWORD) });
  const cliEnv = { DATABASE_URL: db.url, REDIS_URL: redis.url, GATEWAY_SESSION_SECRET: TEST_SECRET, GATEWAY_REDIS_PREFIX: prefix };
  const status = await runCli(['users', 'mfa', 'status', 'fay'], { env: cliEnv });
  t.equal(status.code, 0, status.stderr);
  t.match(JSON.parse(status.stdout), { user: 'fay', totp: 'enrolled', recoveryCodesLeft: 10 });
  const reset = await runCli(['users', 'mfa', 'reset', 'fay'], { env: cliEnv });
  t.equal(reset.code, 0, reset.stderr);
  t.match(reset.stdout, /second factor and recovery codes removed for fay; 1 session\(s\) revoked/);
  t.match(reset.stderr, /"audit":"mfa_reset".*"user":"fay"/, 'audited');
  t.equal((await sessionOf(gw, cookie)).status, 401, 'the session ended on the replica that issued it');
  t.equal((await sessionOf(other, cookie)).status, 401, 'and on the other');
  t.match(JSON.parse((await runCli(['users', 'mfa', 'status', 'fay'], { env: cliEnv })).stdout), { totp: 'none', recoveryCodesLeft: 0 });
  const after = await post(gw, '/_auth/login', { username: 'fay', password: PASSWORD });
  t.match(after.json(), { user: 'fay' }, 'optional mode: the password alone signs in again');
  t.equal((await runCli(['users', 'mfa', 'wipe', 'fay'], { env: cliEnv })).code, 2, 'a usage error exits 2');
});
