// Passkeys as a second factor (SPEC section 9) against real PostgreSQL and Redis, through the JSON
// ceremony a page's script drives: registration (with the recovery codes of a first factor),
// sign-in with amr pwd + hwk, challenges used once and never taken from the client, a signature
// counter that does not move forward refused, another origin refused, an unknown credential 401,
// failed assertions throttled like codes, step-up on an `mfa` rule, bad input answered 4xx, and
// `users mfa status|reset` counting and removing passkeys. The authenticator is a software one
// (test/helpers/soft-authenticator.ts) that sends the bytes a browser and a real key would.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { totpCode } from '../../src/mfa/totp.js';
import { migrate } from '../../src/users/migrations.js';
import { ensureBuilt, runCli } from '../helpers/cli.js';
import { login, seedUsers, startTestGateway, TEST_SECRET, uniquePrefix, withSession, type TestGateway } from '../helpers/gateway.js';
import { cookieHeader, send, type Response } from '../helpers/http.js';
import { scrapeMetric } from '../helpers/metrics.js';
import { services } from '../helpers/services.js';
import { softPasskey, type SoftPasskey } from '../helpers/soft-authenticator.js';
import { startEchoUpstream } from '../helpers/upstream.js';

await ensureBuilt();
const PASSWORD = 'correct horse battery staple';
const USERS = ['pia', 'quin', 'rex', 'sol', 'tam', 'uma', 'vic', 'wen', 'xia', 'yan'];

const { redis, pg: db } = await services(t);
const pool = await seedUsers(t, db.url, USERS.map((username) => ({ username, password: PASSWORD, email: `${username}@example.com`, groups: ['staff'] })));
// Two replicas migrating at once (every deploy may): idempotent, and they wait for each other.
await Promise.all([migrate(pool), migrate(pool)]);
const upstream = await startEchoUpstream();
t.teardown(() => upstream.close());
const dir = mkdtempSync(join(tmpdir(), 'sgw-passkeys-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const rules = join(dir, 'rules.yaml');
writeFileSync(rules, 'rules:\n  - { path: /admin, policy: authenticated, mfa: true }\n');
const prefix = uniquePrefix();
// Both replicas behind one public name: the RP ID and origin come from it, whichever replica answers.
const PUBLIC = 'http://gateway.test';
const env = (extra: Record<string, string> = {}) => ({
  REDIS_URL: redis.url,
  DATABASE_URL: db.url,
  GATEWAY_UPSTREAM: upstream.url,
  GATEWAY_COOKIE_SECURE: 'false',
  GATEWAY_REDIS_PREFIX: prefix,
  GATEWAY_MFA: 'optional',
  GATEWAY_MFA_ENCRYPTION_KEY: 'passkey-test-key-0123456789-abcdefghijklmnopqrstuvwxyz',
  GATEWAY_ACCESS_RULES: rules,
  GATEWAY_IDENTITY_JWT: 'true',
  GATEWAY_IDENTITY_HMAC_SECRET: 'identity-hmac-0123456789-abcdefghijklmnopqrstuvwxyz',
  // The failures below are on purpose: a budget that leaves room for them (the throttle has its own test).
  GATEWAY_LOGIN_MAX_ATTEMPTS: '20',
  GATEWAY_PUBLIC_URL: PUBLIC,
  GATEWAY_BASIC_AUTH: 'true',
  ...extra,
});
// Two replicas sharing Redis and PostgreSQL: a challenge asked for on one is answered on the other.
const gw = await startTestGateway(t, env());
const other = await startTestGateway(t, env());

const json = { 'content-type': 'application/json', accept: 'application/json' };
const post = (g: TestGateway, path: string, body: unknown, cookies: Record<string, string> = {}, headers: Record<string, string> = {}) =>
  send(`${g.url}${path}`, { method: 'POST', headers: { ...json, cookie: cookieHeader(cookies), ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
const get = (g: TestGateway, path: string, cookies: Record<string, string> = {}) => send(`${g.url}${path}`, { headers: { accept: 'application/json', cookie: cookieHeader(cookies) } });
const sessionOf = (g: TestGateway, cookie: string) => get(g, '/_auth/session', { sgw_session: cookie });
const cliEnv = { DATABASE_URL: db.url, REDIS_URL: redis.url, GATEWAY_SESSION_SECRET: TEST_SECRET, GATEWAY_REDIS_PREFIX: prefix };
const mfaStatus = async (user: string) => JSON.parse((await runCli(['users', 'mfa', 'status', user], { env: cliEnv })).stdout) as Record<string, unknown>;
type Tap = Pick<typeof t, 'equal' | 'ok' | 'same' | 'match'>;

/** Registers a passkey for whoever `cookies` names; returns the answer. */
async function register(t: Tap, g: TestGateway, key: SoftPasskey, cookies: Record<string, string>): Promise<Response> {
  const options = await post(g, '/_auth/mfa/webauthn/register/options', {}, cookies);
  t.equal(options.status, 200, `registration options: ${options.body}`);
  return post(g, '/_auth/mfa/webauthn/register', { credential: key.register(options.json<{ challenge: string }>()) }, cookies);
}

/** The password step of a user with a factor: the pending sign-in's cookie. */
async function password(g: TestGateway, user: string): Promise<Record<string, string>> {
  const res = await post(g, '/_auth/login', { username: user, password: PASSWORD });
  if (res.status !== 200 || !res.cookies.sgw_mfa) throw new Error(`password step for ${user}: ${res.status} ${res.body}`);
  return { sgw_mfa: res.cookies.sgw_mfa };
}

/** Asks for assertion options, then answers them (with the given knobs). */
async function assertWith(g: TestGateway, key: SoftPasskey, cookies: Record<string, string>, overrides = {}, answerOn = g): Promise<Response> {
  const options = await post(g, '/_auth/mfa/webauthn/options', {}, cookies);
  if (options.status !== 200) throw new Error(`assertion options: ${options.status} ${options.body}`);
  return post(answerOn, '/_auth/mfa/webauthn', { credential: key.assert(options.json<{ challenge: string }>(), overrides) }, cookies);
}

/** A user with one passkey, registered from a password session; returns the key and the passkey session. */
async function withPasskey(t: Tap, user: string): Promise<{ key: SoftPasskey; cookie: string }> {
  const key = softPasskey(PUBLIC);
  const res = await register(t, gw, key, { sgw_session: await login(gw, user, PASSWORD) });
  t.equal(res.status, 200, `registered: ${res.body}`);
  return { key, cookie: res.cookies.sgw_session ?? '' };
}

t.test('register a passkey, then sign in with it: a new session with amr pwd + hwk', async (t) => {
  const first = await login(gw, 'pia', PASSWORD);
  const key = softPasskey(PUBLIC);
  const optionsRes = await post(gw, '/_auth/mfa/webauthn/register/options', {}, { sgw_session: first });
  t.equal(optionsRes.status, 200, optionsRes.body);
  const options = optionsRes.json<{ rp: { id: string }; user: { name: string }; challenge: string; attestation: string }>();
  t.match(options, { rp: { id: 'gateway.test' }, user: { name: 'pia' }, attestation: 'none' }, 'the RP ID is the host of GATEWAY_PUBLIC_URL');
  t.match(options.challenge, /^[A-Za-z0-9_-]{32,}$/);
  const res = await post(gw, '/_auth/mfa/webauthn/register', { credential: key.register(options) }, { sgw_session: first });
  t.equal(res.status, 200, res.body);
  const body = res.json<{ recoveryCodes: string[]; amr: string[]; user: string; next: string; passkey: { name: string } }>();
  t.equal(body.recoveryCodes.length, 10, 'a first factor: ten recovery codes, shown once');
  t.same(body.amr, ['pwd', 'hwk']);
  t.equal(body.next, '/');
  const cookie = res.cookies.sgw_session ?? '';
  t.ok(cookie && cookie !== first, 'a new session id');
  t.equal((await sessionOf(gw, first)).status, 401, 'the password-only session ended');

  const rows = (await pool.query('SELECT username, counter, transports, length(public_key) AS key_bytes, last_used_at FROM gateway_webauthn_credentials WHERE credential_id = $1', [key.credentialId])).rows;
  t.match(rows, [{ username: 'pia', counter: '0', transports: ['internal'], last_used_at: null }], 'stored with its transports, counter 0');
  t.ok(Number(rows[0]?.key_bytes) > 64, 'the COSE public key');
  t.match(await mfaStatus('pia'), { user: 'pia', totp: 'none', passkeys: 1, recoveryCodesLeft: 10 });
  t.match((await pool.query('SELECT totp_secret, cardinality(recovery_codes) AS n FROM gateway_mfa WHERE username = $1', ['pia'])).rows, [{ totp_secret: null, n: 10 }], 'the recovery codes, hashed, without a TOTP secret');

  // Next sign-in: a passkey-only user is asked for the second step.
  const pending = await password(gw, 'pia');
  t.same((await get(gw, '/_auth/mfa', pending)).json(), { user: 'pia', methods: ['webauthn', 'recovery'] });
  const page = await send(`${gw.url}/_auth/mfa`, { headers: { accept: 'text/html', cookie: cookieHeader(pending) } });
  t.equal(page.status, 200);
  t.match(page.body, /<section id="passkey"[^>]*data-options="\/_auth\/mfa\/webauthn\/options"[^>]*hidden>/, 'the passkey button, hidden until the script shows it');
  t.match(page.body, /<label for="code">Recovery code<\/label>/, 'and the recovery-code form, which needs no script');
  t.match(page.headers['content-security-policy'], /script-src 'sha256-[^']+'; connect-src 'self';/, 'the script allowed by its hash, fetch to this origin only');
  t.notMatch(page.headers['content-security-policy'], /unsafe-inline|https?:/);

  // Options on one replica, the answer on the other.
  const optionsAsk = await post(gw, '/_auth/mfa/webauthn/options', {}, pending);
  t.match(optionsAsk.json(), { rpId: 'gateway.test', allowCredentials: [{ id: key.credentialId, type: 'public-key', transports: ['internal'] }] });
  const done = await post(other, '/_auth/mfa/webauthn', { credential: key.assert(optionsAsk.json<{ challenge: string }>()) }, pending);
  t.equal(done.status, 200, done.body);
  t.match(done.json(), { user: 'pia', email: 'pia@example.com', groups: ['staff'], amr: ['pwd', 'hwk'], next: '/' });
  const full = done.cookies.sgw_session ?? '';
  t.match(done.setCookie('sgw_mfa') ?? '', /Expires=Thu, 01 Jan 1970/, 'the pending cookie is cleared');
  const app = await send(`${gw.url}/app`, { headers: withSession(gw, full) });
  t.equal(app.status, 200);
  t.equal(JSON.parse(app.body).headers['x-forwarded-user'], 'pia');
  t.equal((await send(`${gw.url}/admin`, { headers: withSession(gw, full, { accept: 'application/json' }) })).status, 200, 'an mfa rule is satisfied by a passkey');
  const used = (await pool.query('SELECT counter, last_used_at FROM gateway_webauthn_credentials WHERE credential_id = $1', [key.credentialId])).rows[0] as { counter: string; last_used_at: Date | null };
  t.equal(Number(used.counter), 1, 'the counter moved forward');
  t.ok(used.last_used_at, 'last used, recorded');

  // A recovery code still works for a passkey-only user.
  const again = await password(gw, 'pia');
  const recovered = await post(gw, '/_auth/mfa', { code: body.recoveryCodes[0] }, again);
  t.equal(recovered.status, 200, recovered.body);
  t.same(recovered.json().amr, ['pwd', 'otp']);

  t.ok((await scrapeMetric(other.adminUrl, 'gateway_mfa_verifications_total', { method: 'webauthn', outcome: 'success' })) >= 1, 'counted as webauthn');
  const publicKeyB64 = ((await pool.query('SELECT encode(public_key, $2) AS k FROM gateway_webauthn_credentials WHERE credential_id = $1', [key.credentialId, 'base64'])).rows[0] as { k: string }).k.replace(/\n/g, '');
  const logs = [...gw.logs, ...other.logs];
  t.ok(logs.some((line) => /"audit":"mfa_enrolment".*"method":"webauthn"/.test(line)), 'the registration is audited');
  t.ok(logs.some((line) => /"audit":"mfa".*"outcome":"success".*"method":"webauthn"/.test(line)), 'the sign-in is audited');
  t.notOk(logs.some((line) => line.includes(publicKeyB64.slice(0, 40)) || line.includes(body.recoveryCodes[1] ?? '--')), 'no public key or recovery code in the log');
});

t.test('challenges are used once; replayed, cloned, foreign and unknown answers are refused', async (t) => {
  const { key } = await withPasskey(t, 'quin');

  // A wrong answer uses the challenge up: the right answer to it is refused afterwards.
  const pending = await password(gw, 'quin');
  const options = (await post(gw, '/_auth/mfa/webauthn/options', {}, pending)).json<{ challenge: string }>();
  t.equal((await post(gw, '/_auth/mfa/webauthn', { credential: key.assert(options, { origin: 'https://evil.example' }) }, pending)).status, 401, 'another origin: refused');
  t.equal((await post(gw, '/_auth/mfa/webauthn', { credential: key.assert(options) }, pending)).status, 401, 'the same challenge again: refused');

  // A good answer, then the very same answer again (with a new pending sign-in): refused.
  const good = key.assert((await post(gw, '/_auth/mfa/webauthn/options', {}, pending)).json<{ challenge: string }>());
  t.equal((await post(gw, '/_auth/mfa/webauthn', { credential: good }, pending)).status, 200);
  const next = await password(gw, 'quin');
  t.equal((await post(gw, '/_auth/mfa/webauthn', { credential: good }, next)).status, 401, 'a replayed answer without a challenge asked for: refused');
  await post(gw, '/_auth/mfa/webauthn/options', {}, next);
  t.equal((await post(gw, '/_auth/mfa/webauthn', { credential: good }, next)).status, 401, 'a replayed answer to another challenge: refused');

  // A signature counter that goes backwards: a cloned authenticator.
  const before = key.counter;
  const cloned = await assertWith(gw, key, next, { counter: 1 });
  t.equal(cloned.status, 401, 'a counter behind the stored one: refused');
  key.counter = before;
  t.equal((await assertWith(gw, key, next, { counter: before })).status, 401, 'a counter equal to the stored one: refused');
  key.counter = before;

  t.equal((await assertWith(gw, key, next, { credentialId: Buffer.alloc(32, 7).toString('base64url') })).status, 401, 'an unknown credential: 401');
  const otherUser = await withPasskey(t, 'rex');
  t.equal((await assertWith(gw, otherUser.key, next)).status, 401, "another user's passkey: 401");

  const ok = await assertWith(gw, key, next, {}, other);
  t.equal(ok.status, 200, `and the real one still signs in: ${ok.body}`);
  t.ok((await scrapeMetric(gw.adminUrl, 'gateway_mfa_verifications_total', { method: 'webauthn', outcome: 'replayed' })) >= 3, 'replays and clones counted');
  t.ok((await scrapeMetric(gw.adminUrl, 'gateway_mfa_verifications_total', { method: 'webauthn', outcome: 'failure' })) >= 3, 'failures counted');
  t.ok(gw.logs.some((line) => /"audit":"mfa".*"outcome":"failure".*"method":"webauthn".*"reason":"counter"/.test(line)), 'a clone is audited with its reason');
});

t.test('registration: another origin and a reused challenge are refused; adding a factor needs the first one', async (t) => {
  const cookie = await login(gw, 'sol', PASSWORD);
  const older = await login(gw, 'sol', PASSWORD);
  const key = softPasskey(PUBLIC);
  const options = (await post(gw, '/_auth/mfa/webauthn/register/options', {}, { sgw_session: cookie })).json<{ challenge: string }>();
  t.equal((await post(gw, '/_auth/mfa/webauthn/register', { credential: key.register(options, { origin: 'http://evil.example' }) }, { sgw_session: cookie })).status, 401, 'another origin');
  t.equal((await post(gw, '/_auth/mfa/webauthn/register', { credential: key.register(options) }, { sgw_session: cookie })).status, 401, 'the challenge is used up');
  t.equal((await mfaStatus('sol')).passkeys, 0, 'nothing stored');
  const res = await register(t, gw, key, { sgw_session: cookie });
  t.equal(res.status, 200, res.body);
  const strong = res.cookies.sgw_session ?? '';

  // The password-only session from before cannot add a factor of its own choosing.
  t.equal((await post(gw, '/_auth/mfa/webauthn/register/options', {}, { sgw_session: older })).status, 409, 'no second passkey from a password-only session');
  t.equal((await get(gw, '/_auth/mfa/setup', { sgw_session: older })).status, 409, 'nor TOTP');
  const pending = await password(gw, 'sol');
  t.match((await post(gw, '/_auth/mfa/webauthn/register/options', {}, pending)).json(), { next: '/_auth/mfa' }, 'nor a half sign-in');

  // From the passkey session: a second passkey (no new recovery codes), and TOTP is offered.
  const second = softPasskey(PUBLIC);
  const added = await register(t, gw, second, { sgw_session: strong });
  t.equal(added.status, 200, added.body);
  t.equal(added.json().recoveryCodes, undefined, 'the recovery codes from the first factor stay');
  const excluded = (await post(gw, '/_auth/mfa/webauthn/register/options', {}, { sgw_session: added.cookies.sgw_session ?? '' })).json<{ excludeCredentials: Array<{ id: string }> }>();
  t.same(excluded.excludeCredentials.map((c) => c.id).sort(), [key.credentialId, second.credentialId].sort(), 'registered passkeys are excluded from a new registration');
  const strong2 = { sgw_session: added.cookies.sgw_session ?? '' };
  const setup = await get(gw, '/_auth/mfa/setup', strong2);
  t.equal(setup.status, 200, 'TOTP can be added from a session that passed a factor');
  const secret = new URL(setup.json<{ otpauth: string }>().otpauth).searchParams.get('secret') ?? '';
  const totp = await post(gw, '/_auth/mfa/setup', { code: totpCode(secret, Date.now()) }, strong2);
  t.equal(totp.status, 200, totp.body);
  t.same(totp.json().amr, ['pwd', 'hwk', 'otp']);
  t.match(await mfaStatus('sol'), { totp: 'enrolled', passkeys: 2, recoveryCodesLeft: 10 });
  t.same((await get(gw, '/_auth/mfa', await password(gw, 'sol'))).json<{ methods: string[] }>().methods, ['totp', 'webauthn', 'recovery'], 'both ways offered');
});

t.test('bad input gets a clear 4xx', async (t) => {
  const { cookie } = await withPasskey(t, 'tam');
  const session = { sgw_session: cookie };
  const path = '/_auth/mfa/webauthn';
  const answers: Array<[string, Response]> = [
    ['not JSON', await send(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'text/plain', cookie: cookieHeader(session) }, body: 'hello' })],
    ['malformed JSON', await post(gw, path, '{"credential": ', session)],
    ['an array', await post(gw, path, '[1,2]', session)],
    ['a number as credential', await post(gw, path, { credential: 5 }, session)],
    ['a credential of the wrong shape', await post(gw, path, { credential: { id: 'x', rawId: 'y', type: 'public-key', response: { clientDataJSON: '!!' } } }, session)],
    ['too large', await post(gw, path, { credential: { id: 'a'.repeat(100_000) } }, session)],
    ['nobody', await post(gw, path, { credential: {} })],
    ['cross-origin', await post(gw, path, { credential: {} }, session, { origin: 'https://evil.example' })],
    ['registration, garbage', await post(gw, `${path}/register`, { credential: { id: 'AA', rawId: 'AA', type: 'public-key', response: { clientDataJSON: 'AA', attestationObject: 'AA' } } }, session)],
  ];
  const statuses = Object.fromEntries(answers.map(([what, res]) => [what, res.status]));
  t.same(statuses, {
    'not JSON': 415,
    'malformed JSON': 400,
    'an array': 400,
    'a number as credential': 401,
    'a credential of the wrong shape': 401,
    'too large': 413,
    nobody: 401,
    'cross-origin': 403,
    'registration, garbage': 401,
  });
  for (const [what, res] of answers) t.match(res.json(), { error: String }, `${what}: a JSON error`);
});

t.test('failed assertions are throttled like wrong codes', async (t) => {
  const tight = await startTestGateway(t, env({ GATEWAY_LOGIN_MAX_ATTEMPTS: '3', GATEWAY_REDIS_PREFIX: uniquePrefix() }));
  const key = softPasskey(PUBLIC);
  const res = await register(t, tight, key, { sgw_session: await login(tight, 'uma', PASSWORD) });
  t.equal(res.status, 200, res.body);
  const pending = await password(tight, 'uma');
  for (let i = 0; i < 3; i++) t.equal((await assertWith(tight, key, pending, { origin: 'https://evil.example' })).status, 401, `failure #${i + 1}`);
  const refused = await assertWith(tight, key, pending);
  t.equal(refused.status, 429, 'then even the right passkey is refused');
  t.ok(Number(refused.headers['retry-after']) > 0, 'with Retry-After');
  t.ok((await scrapeMetric(tight.adminUrl, 'gateway_mfa_verifications_total', { method: 'webauthn', outcome: 'throttled' })) >= 1);
});

t.test('step-up on an mfa rule with a passkey', async (t) => {
  const older = await login(gw, 'vic', PASSWORD);
  const key = softPasskey(PUBLIC);
  // Registered from another browser; the older session stays password-only.
  t.equal((await register(t, gw, key, { sgw_session: await login(gw, 'vic', PASSWORD) })).status, 200);
  t.equal((await send(`${gw.url}/admin`, { headers: withSession(gw, older, { accept: 'application/json' }) })).status, 401, 'the rule asks the older session for a second factor');
  t.same((await get(gw, '/_auth/mfa', { sgw_session: older })).json<{ methods: string[] }>().methods, ['webauthn', 'recovery']);
  t.equal((await assertWith(gw, softPasskey(PUBLIC), { sgw_session: older })).status, 401, 'an unregistered key does not step up');
  const stepped = await assertWith(gw, key, { sgw_session: older }, {}, other);
  t.equal(stepped.status, 200, stepped.body);
  t.match(stepped.json(), { amr: ['pwd', 'hwk'] });
  const upgraded = stepped.cookies.sgw_session ?? '';
  t.ok(upgraded && upgraded !== older, 'a new session id');
  const admin = await send(`${gw.url}/admin`, { headers: withSession(gw, upgraded, { accept: 'application/json' }) });
  t.equal(admin.status, 200, 'now the mfa path opens');
  const token = String(JSON.parse(admin.body).headers['x-gateway-identity']);
  t.same(JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()).amr, ['pwd', 'hwk'], 'the identity token carries hwk');
  t.equal((await sessionOf(gw, older)).status, 401, 'the password-only session ended');
  const plain = await login(gw, 'wen', PASSWORD);
  t.equal((await post(gw, '/_auth/mfa/webauthn/options', {}, { sgw_session: plain })).status, 409, 'a user without passkeys gets no assertion options');
});

t.test('users mfa reset removes passkeys and ends the sessions', async (t) => {
  const { cookie } = await withPasskey(t, 'wen');
  t.match(await mfaStatus('wen'), { passkeys: 1, recoveryCodesLeft: 10 });
  const reset = await runCli(['users', 'mfa', 'reset', 'wen'], { env: cliEnv });
  t.equal(reset.code, 0, reset.stderr);
  t.match(reset.stdout, /second factor and recovery codes removed for wen; \d+ session\(s\) revoked/);
  t.match(reset.stderr, /"audit":"mfa_reset".*"user":"wen".*"passkeys":1/, 'audited with the passkeys removed');
  t.match(await mfaStatus('wen'), { totp: 'none', passkeys: 0, recoveryCodesLeft: 0 });
  t.equal(Number((await pool.query('SELECT count(*) AS n FROM gateway_webauthn_credentials WHERE username = $1', ['wen'])).rows[0].n), 0, 'no row left');
  t.equal((await sessionOf(gw, cookie)).status, 401, 'the session ended');
  t.match((await post(gw, '/_auth/login', { username: 'wen', password: PASSWORD })).json(), { user: 'wen' }, 'optional mode: the password alone signs in again');
});

t.test('required: a new user enrols a passkey at the second step and is signed in', async (t) => {
  // No GATEWAY_PUBLIC_URL here: the RP ID and origin are those of the (checked) Host.
  const { GATEWAY_PUBLIC_URL: _public, ...hostDerived } = env({ GATEWAY_MFA: 'required' });
  const strict = await startTestGateway(t, hostDerived);
  const step = await post(strict, '/_auth/login', { username: 'xia', password: PASSWORD });
  t.same(step.json(), { next: '/_auth/mfa/setup' }, 'no factor: enrolment');
  const pending = { sgw_mfa: step.cookies.sgw_mfa ?? '' };
  t.equal((await post(strict, '/_auth/mfa/webauthn/options', {}, pending)).status, 409, 'nothing to assert with yet');
  const options = await post(strict, '/_auth/mfa/webauthn/register/options', {}, pending);
  t.equal(options.json<{ rp: { id: string } }>().rp.id, '127.0.0.1', 'the RP ID: the host the gateway is reached at');
  const key = softPasskey(strict.url);
  const done = await register(t, strict, key, pending);
  t.equal(done.status, 200, done.body);
  t.match(done.json(), { user: 'xia', amr: ['pwd', 'hwk'], next: '/' });
  t.equal(done.json<{ recoveryCodes: string[] }>().recoveryCodes.length, 10);
  t.equal((await send(`${strict.url}/app`, { headers: withSession(strict, done.cookies.sgw_session ?? '') })).status, 200, 'enrolment completes the sign-in');
  t.same((await post(strict, '/_auth/login', { username: 'xia', password: PASSWORD })).json(), { next: '/_auth/mfa' }, 'and the next sign-in asks for the passkey');
});

t.test('once a passkey is registered, a Basic password cached before opens nothing, on either replica', async (t) => {
  const basic = { accept: 'application/json', authorization: `Basic ${Buffer.from(`yan:${PASSWORD}`).toString('base64')}` };
  for (const g of [gw, other]) t.equal((await send(`${g.url}/app`, { headers: basic })).status, 200, 'control: Basic works, and is cached now');
  await withPasskey(t, 'yan');
  for (const g of [gw, other]) t.equal((await send(`${g.url}/app`, { headers: basic })).status, 401, 'refused at once (the password alone is not enough now)');
});
