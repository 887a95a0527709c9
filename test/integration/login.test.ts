// POST /_auth/login end to end (SPEC sections 2 and 3): every stored hash format, legacy plaintext
// tables and their migration to argon2id, generic failures with distinct audit reasons, the real
// HTML form with its CSRF pair, `rd` handling, a fresh session id at every login, throttling shared
// through Redis, bad input, and a PostgreSQL outage. Everything runs against real Redis/PostgreSQL.
import t from 'tap';
import { hash as bcryptHash } from '@node-rs/bcrypt';
import { hashPassword, hashScrypt } from '../../src/users/passwords.js';
import { login, seedUsers, startTestGateway, uniquePrefix, withSession, type TestGateway } from '../helpers/gateway.js';
import { cookieHeader, send, type Response } from '../helpers/http.js';
import { services } from '../helpers/services.js';
import { startEchoUpstream, type Echo } from '../helpers/upstream.js';

const ALICE_PW = 'Alice-correct-horse-71';
const SESSION = 'sgw_session';
const CSRF = 'sgw_csrf';

const { redis, pg: db } = await services(t);
const pool = await seedUsers(t, db.url, [{ username: 'alice', password: ALICE_PW, email: 'alice@example.com', groups: ['staff'] }]);
// The PostgreSQL outage test kills the pool's idle connections; that must not crash the test process.
pool.on('error', () => undefined);
const upstream = await startEchoUpstream();
t.teardown(() => upstream.close());

const baseEnv = { REDIS_URL: redis.url, DATABASE_URL: db.url, GATEWAY_UPSTREAM: upstream.url };
// The main gateway: default cookie settings (Secure), limits high enough that the many deliberate
// failures below never throttle each other (throttling has its own gateways and Redis prefixes).
const gw = await startTestGateway(t, {
  ...baseEnv,
  GATEWAY_REDIS_PREFIX: uniquePrefix(),
  GATEWAY_LOGIN_MAX_ATTEMPTS: '100',
  GATEWAY_LOGIN_MAX_ATTEMPTS_PER_IP: '1000',
});

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/** Every gateway started here, and every password, cookie and CSRF token used: none may reach a log. */
const gateways: TestGateway[] = [gw];
const secrets = new Set<string>([ALICE_PW]);

function secret(value: string): string {
  secrets.add(value);
  return value;
}

function remember(res: Response): Response {
  for (const name of [SESSION, CSRF]) {
    const value = res.cookies[name];
    if (!value) continue;
    secrets.add(value);
    // The raw session id (before the signature) must not leak either.
    const dot = value.lastIndexOf('.');
    if (name === SESSION && dot > 0) secrets.add(value.slice(0, dot));
  }
  return res;
}

async function startGateway(tt: Parameters<typeof startTestGateway>[0], env: Record<string, string>): Promise<TestGateway> {
  const g = await startTestGateway(tt, { ...baseEnv, GATEWAY_REDIS_PREFIX: uniquePrefix(), ...env });
  gateways.push(g);
  return g;
}

async function jsonLogin(g: TestGateway, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return remember(
    await send(`${g.url}/_auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    }),
  );
}

interface LoginPage {
  res: Response;
  /** Hidden `csrf` field. */
  token: string;
  /** The `sgw_csrf` cookie the token is bound to. */
  cookie: string;
  /** Hidden `rd` field, HTML-unescaped. */
  rd: string;
}

const unescapeHtml = (s: string) =>
  s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

function hiddenField(html: string, name: string): string | undefined {
  const m = new RegExp(`<input[^>]*name="${name}"[^>]*value="([^"]*)"`).exec(html);
  return m?.[1] === undefined ? undefined : unescapeHtml(m[1]);
}

/** GET the login page like a browser and pull out the CSRF pair. */
async function loginPage(g: TestGateway, pathAndQuery = '/_auth/login'): Promise<LoginPage> {
  const res = remember(await send(`${g.url}${pathAndQuery}`, { headers: { accept: 'text/html' } }));
  const token = hiddenField(res.body, 'csrf');
  const cookie = res.cookies[CSRF];
  if (res.status !== 200 || !token || !cookie) throw new Error(`login page broken: ${res.status} ${res.body.slice(0, 200)}`);
  secrets.add(token);
  return { res, token, cookie, rd: hiddenField(res.body, 'rd') ?? '' };
}

/** POST the form like a browser: form-encoded, with the CSRF cookie (and any other cookies). */
async function formLogin(
  g: TestGateway,
  fields: Record<string, string>,
  opts: { csrfCookie?: string | null; cookies?: Record<string, string>; headers?: Record<string, string> } = {},
): Promise<Response> {
  const cookies = { ...(opts.csrfCookie ? { [CSRF]: opts.csrfCookie } : {}), ...opts.cookies };
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'text/html,application/xhtml+xml',
    ...(Object.keys(cookies).length > 0 ? { cookie: cookieHeader(cookies) } : {}),
    ...opts.headers,
  };
  return remember(await send(`${g.url}/_auth/login`, { method: 'POST', headers, body: new URLSearchParams(fields).toString() }));
}

/** A full browser login: fetch the page, post the form with its token. */
async function browserLogin(g: TestGateway, username: string, password: string, rd?: string, extra: Parameters<typeof formLogin>[2] = {}): Promise<Response> {
  const page = await loginPage(g);
  const fields: Record<string, string> = { username, password, csrf: page.token, ...(rd === undefined ? {} : { rd }) };
  return formLogin(g, fields, { csrfCookie: page.cookie, ...extra });
}

/** A non-browser request to a protected app path (401 rather than a redirect without a session). */
function apiGet(g: TestGateway, path: string, cookie?: string): Promise<Response> {
  const headers = cookie ? withSession(g, cookie, { accept: 'application/json' }) : { accept: 'application/json' };
  return send(`${g.url}${path}`, { headers });
}

function cookieAttributes(line: string | undefined): Map<string, string> {
  const attrs = new Map<string, string>();
  for (const part of (line ?? '').split(';').slice(1)) {
    const [k = '', ...v] = part.trim().split('=');
    attrs.set(k.toLowerCase(), v.join('='));
  }
  return attrs;
}

interface LogEntry {
  audit?: string;
  user?: string;
  ip?: string;
  outcome?: string;
  reason?: string;
  msg?: string;
}

function auditLines(g: TestGateway, user: string): LogEntry[] {
  return g.logs.map((l) => JSON.parse(l) as LogEntry).filter((e) => e.audit === 'login' && e.user === user);
}

async function insertUser(username: string, passwordHash: string, extra: { disabled?: boolean } = {}): Promise<void> {
  await pool.query('INSERT INTO gateway_users (username, password_hash, email, groups, disabled) VALUES ($1, $2, $3, $4, $5)', [
    username,
    passwordHash,
    `${username}@example.com`,
    ['staff'],
    extra.disabled ?? false,
  ]);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The rehash runs after the response; poll the stored value for a while. */
async function waitForStored(sql: string, username: string, accept: (value: string) => boolean): Promise<string> {
  let value = '';
  for (let i = 0; i < 100; i++) {
    const { rows } = await pool.query<{ value: string }>(sql, [username]);
    value = rows[0]?.value ?? '';
    if (accept(value)) return value;
    await sleep(50);
  }
  return value;
}

// ---------------------------------------------------------------------------
// Stored hash formats
// ---------------------------------------------------------------------------

t.test('every stored hash format in gateway_users: right password signs in, wrong one does not', async (t) => {
  const formats = [
    { username: 'fmt-argon2id', password: secret('Argon2id-pässword-ünïcode'), make: (p: string) => hashPassword(p), prefix: /^\$argon2id\$/, weak: false },
    { username: 'fmt-bcrypt', password: secret('Bcrypt-legacy-pw-2b'), make: (p: string) => bcryptHash(p, 10), prefix: /^\$2[aby]\$10\$/, weak: true },
    { username: 'fmt-scrypt', password: secret('Scrypt-legacy-pw-ln14'), make: (p: string) => hashScrypt(p, { ln: 14, r: 8, p: 1 }), prefix: /^\$scrypt\$ln=14,r=8,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/, weak: true },
  ];
  for (const f of formats) {
    await t.test(f.username, async (t) => {
      const stored = await f.make(f.password);
      t.match(stored, f.prefix, 'fixture has the expected format');
      await insertUser(f.username, stored);

      const wrong = await jsonLogin(gw, { username: f.username, password: `${f.password}!` });
      t.equal(wrong.status, 401, 'wrong password refused');
      t.notOk(wrong.cookies[SESSION], 'no session cookie on failure');

      const ok = await jsonLogin(gw, { username: f.username, password: f.password });
      t.equal(ok.status, 200, 'right password accepted');
      t.equal(ok.json().user, f.username);
      const cookie = ok.cookies[SESSION];
      t.ok(cookie, 'session cookie issued');
      const app = await apiGet(gw, '/whoami', cookie);
      t.equal(app.status, 200, 'the session opens the app');
      t.equal(app.json<Echo>().headers['x-forwarded-user'], f.username, 'the app sees the user');

      if (f.weak) {
        // Weaker than the default: the gateway's own table is upgraded to argon2id after login.
        const upgraded = await waitForStored('SELECT password_hash AS value FROM gateway_users WHERE username = $1', f.username, (v) => v.startsWith('$argon2id$'));
        t.match(upgraded, /^\$argon2id\$/, 'stored hash upgraded to argon2id');
      }
      const again = await jsonLogin(gw, { username: f.username, password: f.password });
      t.equal(again.status, 200, 'still signs in afterwards');
      const wrongAgain = await jsonLogin(gw, { username: f.username, password: 'Argon2id-pässword' });
      t.equal(wrongAgain.status, 401, 'and a wrong password is still refused');
    });
  }
});

// ---------------------------------------------------------------------------
// Legacy table with plaintext passwords
// ---------------------------------------------------------------------------

await pool.query('CREATE TABLE users (user_id varchar PRIMARY KEY, pass varchar)');
const LEGACY_ANN_PW = secret('Ann-plaintext-Legacy-1');
const LEGACY_BOB_PW = secret('Bob-plaintext-Legacy-2');
await pool.query('INSERT INTO users (user_id, pass) VALUES ($1, $2), ($3, $4)', ['legacy-ann', LEGACY_ANN_PW, 'legacy-bob', LEGACY_BOB_PW]);
const legacyEnv = { GATEWAY_USER_QUERY: 'SELECT user_id AS username, pass AS password_hash FROM users WHERE user_id = $1' };
const legacyPass = 'SELECT pass AS value FROM users WHERE user_id = $1';

t.test('legacy plaintext passwords are refused unless explicitly allowed', async (t) => {
  const g = await startGateway(t, legacyEnv);
  const res = await jsonLogin(g, { username: 'legacy-ann', password: LEGACY_ANN_PW });
  t.equal(res.status, 401, 'the right plaintext password is refused');
  t.notOk(res.cookies[SESSION]);
  t.same(res.json(), (await jsonLogin(g, { username: 'nobody-here', password: LEGACY_ANN_PW })).json(), 'same answer as an unknown user');
  const { rows } = await pool.query<{ value: string }>(legacyPass, ['legacy-ann']);
  t.equal(rows[0]?.value, LEGACY_ANN_PW, 'the legacy row is untouched');
});

t.test('legacy plaintext passwords with GATEWAY_ALLOW_PLAINTEXT_PASSWORDS=true, upgraded by GATEWAY_USER_REHASH_QUERY', async (t) => {
  const g = await startGateway(t, {
    ...legacyEnv,
    GATEWAY_ALLOW_PLAINTEXT_PASSWORDS: 'true',
    GATEWAY_USER_REHASH_QUERY: 'UPDATE users SET pass = $2 WHERE user_id = $1',
  });
  const wrong = await jsonLogin(g, { username: 'legacy-bob', password: 'Bob-plaintext-Legacy-3' });
  t.equal(wrong.status, 401, 'a wrong plaintext password is refused');

  const ok = await jsonLogin(g, { username: 'legacy-bob', password: LEGACY_BOB_PW });
  t.equal(ok.status, 200, 'the right plaintext password is accepted');
  t.equal(ok.json().user, 'legacy-bob');
  const cookie = ok.cookies[SESSION];
  t.ok(cookie);
  const app = await apiGet(g, '/legacy/home.php?x=1', cookie);
  t.equal(app.status, 200);
  const echo = app.json<Echo>();
  t.equal(echo.url, '/legacy/home.php?x=1');
  t.equal(echo.headers['x-forwarded-user'], 'legacy-bob', 'the app behind receives X-Forwarded-User');

  const stored = await waitForStored(legacyPass, 'legacy-bob', (v) => v.startsWith('$argon2id$'));
  t.match(stored, /^\$argon2id\$/, 'the stored plaintext became an argon2id hash');
  t.not(stored.includes(LEGACY_BOB_PW), true, 'the password is no longer stored readably');

  const again = await jsonLogin(g, { username: 'legacy-bob', password: LEGACY_BOB_PW });
  t.equal(again.status, 200, 'the user still signs in after the upgrade');
  t.equal((await jsonLogin(g, { username: 'legacy-bob', password: 'Bob-plaintext-Legacy-3' })).status, 401, 'wrong password still refused');

  // Migrated for good: even a gateway that refuses plaintext now accepts this user.
  const strict = await startGateway(t, legacyEnv);
  t.equal((await jsonLogin(strict, { username: 'legacy-bob', password: LEGACY_BOB_PW })).status, 200, 'argon2id works without the plaintext switch');
  t.equal((await jsonLogin(strict, { username: 'legacy-ann', password: LEGACY_ANN_PW })).status, 401, 'un-migrated plaintext still refused there');
});

// ---------------------------------------------------------------------------
// Generic failures, distinct audit reasons
// ---------------------------------------------------------------------------

/** One username seen as unknown, then with a wrong password, then disabled with the right one. */
async function threeFailures(username: string, password: string, wrongPassword: string, attempt: (u: string, p: string) => Promise<Response>) {
  const unknown = await attempt(username, password);
  await insertUser(username, await hashPassword(password));
  const wrong = await attempt(username, wrongPassword);
  await pool.query('UPDATE gateway_users SET disabled = true WHERE username = $1', [username]);
  const disabled = await attempt(username, password);
  return { unknown, wrong, disabled };
}

t.test('unknown user, wrong password and disabled user get the same JSON answer; the audit log tells them apart', async (t) => {
  const pw = secret('Ghost-json-Right-Pw-41');
  const wrongPw = secret('Ghost-json-Wrong-Pw-42');
  const r = await threeFailures('ghost-json', pw, wrongPw, (u, p) => jsonLogin(gw, { username: u, password: p }));
  for (const [name, res] of Object.entries(r)) {
    t.equal(res.status, 401, `${name}: 401`);
    t.match(res.headers['content-type'], /^application\/json/, `${name}: JSON answer`);
    t.notOk(res.cookies[SESSION], `${name}: no session cookie`);
  }
  t.match(r.unknown.json(), { error: String });
  t.equal(r.wrong.body, r.unknown.body, 'wrong password body = unknown user body');
  t.equal(r.disabled.body, r.unknown.body, 'disabled user body = unknown user body');

  const audit = auditLines(gw, 'ghost-json');
  t.same(audit.map((e) => [e.outcome, e.reason]), [['failure', 'unknown_user'], ['failure', 'wrong_password'], ['failure', 'disabled']], 'distinct reasons in the audit log');
  t.ok(audit.every((e) => typeof e.ip === 'string' && e.ip !== ''), 'audit lines name the client IP');
});

t.test('unknown user, wrong password and disabled user get the same form answer', async (t) => {
  const pw = secret('Ghost-form-Right-Pw-51');
  const wrongPw = secret('Ghost-form-Wrong-Pw-52');
  const page = await loginPage(gw);
  const r = await threeFailures('ghost-form', pw, wrongPw, (u, p) =>
    formLogin(gw, { username: u, password: p, csrf: page.token, rd: '/x' }, { csrfCookie: page.cookie }),
  );
  // Each answer is a fresh login page with a fresh CSRF token; apart from that token, identical.
  const normalise = (res: Response) => res.body.replace(/name="csrf" value="[^"]*"/, 'name="csrf" value="TOKEN"');
  for (const [name, res] of Object.entries(r)) {
    secrets.add(hiddenField(res.body, 'csrf') ?? '');
    t.equal(res.status, 401, `${name}: 401`);
    t.match(res.headers['content-type'], /^text\/html/, `${name}: HTML page`);
    t.notOk(res.cookies[SESSION], `${name}: no session cookie`);
    t.match(res.body, /Invalid username or password/, `${name}: generic message`);
    t.notMatch(res.body, /disabled|unknown|not found/i, `${name}: no hint about the reason`);
  }
  t.equal(normalise(r.wrong), normalise(r.unknown), 'wrong password page = unknown user page');
  t.equal(normalise(r.disabled), normalise(r.unknown), 'disabled user page = unknown user page');
  t.same(auditLines(gw, 'ghost-form').map((e) => e.reason), ['unknown_user', 'wrong_password', 'disabled']);
});

t.test('a successful login is an audit line with user, IP and outcome', async (t) => {
  await login(gw, 'alice', ALICE_PW);
  const success = auditLines(gw, 'alice').filter((e) => e.outcome === 'success');
  t.ok(success.length > 0, 'success audited');
  t.ok(success.every((e) => e.ip), 'with the client IP');
});

// ---------------------------------------------------------------------------
// The HTML form, CSRF, cookies, rd
// ---------------------------------------------------------------------------

t.test('form login through the real page, from a protected link back to it', async (t) => {
  const nav = await send(`${gw.url}/reports/2026?tab=q1&sort=desc`, { headers: { accept: 'text/html' } });
  t.equal(nav.status, 302, 'a browser without a session is sent to the login page');
  const location = String(nav.headers.location);
  t.match(location, /^\/_auth\/login\?rd=/);

  const page = await loginPage(gw, location);
  t.match(page.res.headers['content-type'], /^text\/html/);
  t.equal(page.rd, '/reports/2026?tab=q1&sort=desc', 'the page carries rd');
  t.match(page.res.body, /name="username"/);
  t.match(page.res.body, /name="password"/);
  const csrfAttrs = cookieAttributes(page.res.setCookie(CSRF));
  t.ok(csrfAttrs.has('httponly'), 'the CSRF cookie is HttpOnly');

  const res = await formLogin(gw, { username: 'alice', password: ALICE_PW, csrf: page.token, rd: page.rd }, { csrfCookie: page.cookie });
  t.equal(res.status, 303);
  t.equal(res.headers.location, '/reports/2026?tab=q1&sort=desc', 'back where the user was going');
  const cookie = res.cookies[SESSION];
  t.ok(cookie, 'session cookie set');

  const attrs = cookieAttributes(res.setCookie(SESSION));
  t.ok(attrs.has('httponly'), 'HttpOnly');
  t.equal(attrs.get('samesite')?.toLowerCase(), 'lax', 'SameSite=Lax');
  t.equal(attrs.get('path'), '/', 'Path=/');
  t.ok(attrs.has('secure'), 'Secure by default');
  const maxAge = Number(attrs.get('max-age'));
  t.ok(maxAge > 0 && maxAge <= gw.config.maxLifetimeMs / 1_000, `Max-Age ${maxAge} within the max lifetime`);
  t.notOk(attrs.has('domain'), 'host-only cookie');

  const app = await send(`${gw.url}${res.headers.location}`, { headers: withSession(gw, cookie ?? '', { accept: 'text/html' }) });
  t.equal(app.status, 200);
  t.equal(app.json<Echo>().url, '/reports/2026?tab=q1&sort=desc');
  t.equal(app.json<Echo>().headers['x-forwarded-user'], 'alice');
});

t.test('GATEWAY_COOKIE_SECURE=false drops the Secure attribute', async (t) => {
  const g = await startGateway(t, { GATEWAY_COOKIE_SECURE: 'false' });
  const res = await browserLogin(g, 'alice', ALICE_PW, '/');
  t.equal(res.status, 303);
  const attrs = cookieAttributes(res.setCookie(SESSION));
  t.ok(res.cookies[SESSION], 'session cookie set');
  t.notOk(attrs.has('secure'), 'no Secure attribute');
  t.ok(attrs.has('httponly'), 'still HttpOnly');
  t.equal(attrs.get('samesite')?.toLowerCase(), 'lax', 'still SameSite=Lax');
});

t.test('CSRF: missing or wrong token, or a token without its cookie, is 403', async (t) => {
  const page = await loginPage(gw);
  const other = await loginPage(gw);
  const creds = { username: 'alice', password: ALICE_PW, rd: '/' };
  const cases: Array<[string, Record<string, string>, string | null]> = [
    ['no token', { ...creds }, page.cookie],
    ['empty token', { ...creds, csrf: '' }, page.cookie],
    ['tampered token', { ...creds, csrf: `${page.token.slice(0, -2)}AA` }, page.cookie],
    ['token without its cookie', { ...creds, csrf: page.token }, null],
    ['token bound to another cookie', { ...creds, csrf: page.token }, other.cookie],
    ['cookie value as the token', { ...creds, csrf: page.cookie }, page.cookie],
  ];
  for (const [name, fields, csrfCookie] of cases) {
    const res = await formLogin(gw, fields, { csrfCookie });
    t.equal(res.status, 403, `${name}: 403`);
    t.notOk(res.cookies[SESSION], `${name}: no session`);
  }
  // Control: the same pair is accepted, so the refusals above were about the token.
  const ok = await formLogin(gw, { ...creds, csrf: page.token }, { csrfCookie: page.cookie });
  t.equal(ok.status, 303, 'the valid pair signs in');
});

t.test('a cross-origin POST is 403 even with a valid token', async (t) => {
  const page = await loginPage(gw);
  const fields = { username: 'alice', password: ALICE_PW, csrf: page.token, rd: '/' };
  const post = (headers: Record<string, string>) => formLogin(gw, fields, { csrfCookie: page.cookie, headers });

  const evil = await post({ origin: 'https://evil.example' });
  t.equal(evil.status, 403, 'Origin: https://evil.example');
  t.notOk(evil.cookies[SESSION]);
  const crossSite = await post({ 'sec-fetch-site': 'cross-site' });
  t.equal(crossSite.status, 403, 'Sec-Fetch-Site: cross-site');
  t.notOk(crossSite.cookies[SESSION]);
  const sameOriginOtherPort = await post({ origin: 'http://127.0.0.1:1' });
  t.equal(sameOriginOtherPort.status, 403, 'another port is another origin');
  const jsonEvil = await jsonLogin(gw, { username: 'alice', password: ALICE_PW }, { origin: 'https://evil.example' });
  t.equal(jsonEvil.status, 403, 'JSON login from another origin');
  t.match(jsonEvil.json(), { error: String });
  t.notOk(jsonEvil.cookies[SESSION]);

  // Controls: what a real browser sends on a same-origin submit is accepted.
  t.equal((await post({ origin: gw.url, 'sec-fetch-site': 'same-origin' })).status, 303, 'same origin accepted');
  t.equal((await post({ 'sec-fetch-site': 'none' })).status, 303, 'user-initiated (Sec-Fetch-Site: none) accepted');
});

t.test('rd: same-origin paths are honoured, anything else falls back to /', async (t) => {
  const page = await loginPage(gw);
  const post = (rd?: string) =>
    formLogin(gw, { username: 'alice', password: ALICE_PW, csrf: page.token, ...(rd === undefined ? {} : { rd }) }, { csrfCookie: page.cookie });
  const honoured: Array<[string, string]> = [
    ['/', '/'],
    ['/app/page?x=1&y=two', '/app/page?x=1&y=two'],
    ['/deep/path/', '/deep/path/'],
  ];
  for (const [rd, expected] of honoured) {
    const res = await post(rd);
    t.equal(res.status, 303, `rd=${JSON.stringify(rd)}: 303`);
    t.equal(res.headers.location, expected, `rd=${JSON.stringify(rd)} honoured`);
  }
  const refused = ['//evil.com', '///evil.com', '/\\evil.com', '\\\\evil.com', 'https://evil.com', 'javascript:alert(1)', '%2F%2Fevil', '/\t/evil.com', '/\n/evil.com', '/\r\n/evil.com', 'evil.com', ''];
  for (const rd of refused) {
    const res = await post(rd);
    t.equal(res.status, 303, `rd=${JSON.stringify(rd)}: 303`);
    t.equal(res.headers.location, '/', `rd=${JSON.stringify(rd)} falls back to /`);
  }
  const none = await post();
  t.equal(none.headers.location, '/', 'no rd: /');

  const evilPage = await loginPage(gw, `/_auth/login?rd=${encodeURIComponent('//evil.com')}`);
  t.equal(evilPage.rd, '/', 'the login page does not carry a foreign rd either');
});

// ---------------------------------------------------------------------------
// Session fixation
// ---------------------------------------------------------------------------

t.test('every login issues a new session id and ends the one presented', async (t) => {
  const first = await login(gw, 'alice', ALICE_PW);
  t.equal((await apiGet(gw, '/api/me', first)).status, 200, 'the first session works');

  const again = await jsonLogin(gw, { username: 'alice', password: ALICE_PW }, withSession(gw, first));
  t.equal(again.status, 200);
  const second = again.cookies[SESSION];
  t.ok(second, 'a cookie is set');
  t.not(second, first, 'a different cookie');
  t.equal((await apiGet(gw, '/api/me', first)).status, 401, 'the old cookie no longer works');
  t.equal((await apiGet(gw, '/api/me', second)).status, 200, 'the new one does');

  // The same through the HTML form.
  const third = await browserLogin(gw, 'alice', ALICE_PW, '/', { cookies: { [SESSION]: second ?? '' } });
  t.equal(third.status, 303);
  t.ok(third.cookies[SESSION]);
  t.not(third.cookies[SESSION], second, 'form login: a different cookie');
  t.equal((await apiGet(gw, '/api/me', second)).status, 401, 'form login: the old cookie no longer works');
  t.equal((await apiGet(gw, '/api/me', third.cookies[SESSION])).status, 200);

  // A value the gateway never issued is not adopted.
  const planted = 'attacker-chosen-session-value';
  const fixed = await jsonLogin(gw, { username: 'alice', password: ALICE_PW }, { cookie: cookieHeader({ [SESSION]: planted }) });
  t.equal(fixed.status, 200);
  t.not(fixed.cookies[SESSION], planted, 'a planted cookie value is replaced');
  t.equal((await apiGet(gw, '/api/me', planted)).status, 401, 'the planted value does not open the app');
});

// ---------------------------------------------------------------------------
// JSON negotiation
// ---------------------------------------------------------------------------

t.test('JSON login answers JSON', async (t) => {
  const ok = await jsonLogin(gw, { username: 'alice', password: ALICE_PW, rd: '//evil.com' });
  t.equal(ok.status, 200);
  t.match(ok.headers['content-type'], /^application\/json/);
  t.match(ok.json(), { user: 'alice', email: 'alice@example.com', groups: ['staff'] });
  t.notOk(ok.headers.location, 'no redirect for JSON');
  t.ok(ok.cookies[SESSION]);

  const charset = await jsonLogin(gw, { username: 'alice', password: ALICE_PW }, { 'content-type': 'application/json; charset=utf-8' });
  t.equal(charset.status, 200, 'application/json with a charset is JSON too');
  t.equal(charset.json().user, 'alice');

  const fail = await jsonLogin(gw, { username: 'alice', password: 'Alice-wrong-horse-72' });
  t.equal(fail.status, 401);
  t.match(fail.headers['content-type'], /^application\/json/);
  t.match(fail.json(), { error: String });
});

t.test('a JSON body without Content-Type: application/json is not treated as JSON', async (t) => {
  const body = JSON.stringify({ username: 'alice', password: ALICE_PW });
  for (const contentType of ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded']) {
    const res = remember(await send(`${gw.url}/_auth/login`, { method: 'POST', headers: { 'content-type': contentType }, body }));
    t.ok(res.status >= 400 && res.status < 500, `${contentType}: refused with ${res.status}`);
    t.notOk(res.cookies[SESSION], `${contentType}: no session`);
    t.notMatch(res.headers['content-type'], /json/, `${contentType}: the answer is not JSON`);
  }
  const none = remember(await send(`${gw.url}/_auth/login`, { method: 'POST', body }));
  t.ok(none.status >= 400 && none.status < 500, `no Content-Type: refused with ${none.status}`);
  t.notOk(none.cookies[SESSION], 'no Content-Type: no session');
});

// ---------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------

t.test('bad input is a 4xx, never a 5xx', async (t) => {
  const badJson: Array<[string, string]> = [
    ['{}', '{}'],
    ['username only', JSON.stringify({ username: 'alice' })],
    ['password only', JSON.stringify({ password: ALICE_PW })],
    ['empty strings', JSON.stringify({ username: '', password: '' })],
    ['numeric username', JSON.stringify({ username: 42, password: ALICE_PW })],
    ['array password', JSON.stringify({ username: 'alice', password: [ALICE_PW] })],
    ['object username', JSON.stringify({ username: { $ne: null }, password: ALICE_PW })],
    ['null fields', JSON.stringify({ username: null, password: null })],
    ['boolean password', JSON.stringify({ username: 'alice', password: true })],
    ['null body', 'null'],
    ['array body', '[]'],
    ['string body', '"alice"'],
    ['number body', '42'],
    ['username too long', JSON.stringify({ username: 'u'.repeat(5_000), password: ALICE_PW })],
  ];
  for (const [name, body] of badJson) {
    const res = await jsonLogin(gw, body);
    t.equal(res.status, 400, `${name}: 400`);
    t.match(res.json(), { error: String }, `${name}: JSON error`);
    t.notOk(res.cookies[SESSION]);
  }

  for (const [name, body] of [
    ['invalid JSON', '{"username": "alice", "password": '],
    ['empty body', ''],
    ['trailing garbage', `${JSON.stringify({ username: 'alice', password: ALICE_PW })}}`],
    ['__proto__ key', '{"username":"alice","password":"x","__proto__":{"admin":true}}'],
  ]) {
    const res = await jsonLogin(gw, body as string);
    t.equal(res.status, 400, `${name}: 400`);
    t.match(res.json(), { error: String }, `${name}: JSON error`);
  }

  const page = await loginPage(gw);
  for (const [name, body] of [
    ['form without password', `username=alice&csrf=${page.token}`],
    ['form without username', `password=${encodeURIComponent(ALICE_PW)}&csrf=${page.token}`],
    ['repeated username', `username=alice&username=bob&password=${encodeURIComponent(ALICE_PW)}&csrf=${page.token}`],
    ['repeated password', `username=alice&password=a&password=${encodeURIComponent(ALICE_PW)}&csrf=${page.token}`],
    ['empty form', ''],
  ]) {
    const res = remember(
      await send(`${gw.url}/_auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html', cookie: cookieHeader({ [CSRF]: page.cookie }) },
        body: body as string,
      }),
    );
    t.equal(res.status, 400, `${name}: 400`);
    t.match(res.headers['content-type'], /^text\/html/, `${name}: the login page again`);
    t.notOk(res.cookies[SESSION]);
  }

  const big = 'x'.repeat(100 * 1024);
  const bigJson = await jsonLogin(gw, { username: 'alice', password: ALICE_PW, padding: big });
  t.equal(bigJson.status, 413, '100 KB JSON body: 413');
  t.notOk(bigJson.cookies[SESSION]);
  const bigForm = await formLogin(gw, { username: 'alice', password: ALICE_PW, csrf: page.token, padding: big }, { csrfCookie: page.cookie });
  t.equal(bigForm.status, 413, '100 KB form body: 413');
  t.notOk(bigForm.cookies[SESSION]);

  // The gateway is unharmed.
  t.equal((await jsonLogin(gw, { username: 'alice', password: ALICE_PW })).status, 200, 'a normal login still works');
});

// ---------------------------------------------------------------------------
// Throttling
// ---------------------------------------------------------------------------

function retryAfter(assert: Pick<typeof t, 'match' | 'ok'>, res: Response, label: string): void {
  const header = res.headers['retry-after'];
  assert.match(header, /^\d+$/, `${label}: Retry-After in whole seconds`);
  const seconds = Number(header);
  assert.ok(seconds > 0 && seconds <= 60, `${label}: Retry-After ${seconds} within the 1m window`);
}

t.test('throttling per user and per IP, shared by every replica through Redis', async (t) => {
  for (const name of ['thr-alice', 'thr-bob', 'thr-dave']) await insertUser(name, await hashPassword(`${name}-Pw-Right`));
  for (const name of ['thr-alice', 'thr-bob', 'thr-dave']) secrets.add(`${name}-Pw-Right`);
  const env = { GATEWAY_REDIS_PREFIX: uniquePrefix(), GATEWAY_LOGIN_MAX_ATTEMPTS: '3', GATEWAY_LOGIN_WINDOW: '1m', GATEWAY_LOGIN_MAX_ATTEMPTS_PER_IP: '4' };
  const a = await startGateway(t, env);
  const b = await startGateway(t, env); // a second replica on the same Redis

  for (let i = 1; i <= 3; i++) {
    t.equal((await jsonLogin(a, { username: 'thr-alice', password: `wrong-${i}-xyz` })).status, 401, `failure ${i}: 401`);
  }
  const blocked = await jsonLogin(a, { username: 'thr-alice', password: 'thr-alice-Pw-Right' });
  t.equal(blocked.status, 429, '4th attempt with the right password: 429');
  t.notOk(blocked.cookies[SESSION], 'no session while throttled');
  t.match(blocked.json(), { error: String });
  retryAfter(t, blocked, 'per user');

  const otherReplica = await jsonLogin(b, { username: 'thr-alice', password: 'thr-alice-Pw-Right' });
  t.equal(otherReplica.status, 429, 'the other replica sees the same block');
  retryAfter(t, otherReplica, 'other replica');

  const formBlocked = await browserLogin(b, 'thr-alice', 'thr-alice-Pw-Right', '/');
  t.equal(formBlocked.status, 429, 'the form is throttled too');
  retryAfter(t, formBlocked, 'form');
  t.notOk(formBlocked.cookies[SESSION]);

  const bob = await jsonLogin(a, { username: 'thr-bob', password: 'thr-bob-Pw-Right' });
  t.equal(bob.status, 200, 'another user from the same IP is not blocked by the per-user limit');

  t.equal((await jsonLogin(b, { username: 'thr-carol', password: 'wrong-4-xyz' })).status, 401, '4th failure from this IP');
  const dave = await jsonLogin(a, { username: 'thr-dave', password: 'thr-dave-Pw-Right' });
  t.equal(dave.status, 429, 'per-IP limit reached: a fresh user with the right password is refused');
  retryAfter(t, dave, 'per IP');
  t.equal((await jsonLogin(b, { username: 'thr-dave', password: 'thr-dave-Pw-Right' })).status, 429, 'on every replica');

  const audit = auditLines(a, 'thr-alice').concat(auditLines(b, 'thr-alice'));
  t.ok(audit.some((e) => e.outcome === 'throttled'), 'throttled attempts are audited');
});

t.test('a successful login resets the user\'s failure count', async (t) => {
  await insertUser('rst-erin', await hashPassword(secret('rst-erin-Pw-Right')));
  const g = await startGateway(t, { GATEWAY_LOGIN_MAX_ATTEMPTS: '3', GATEWAY_LOGIN_WINDOW: '1m' });
  const attempt = (password: string) => jsonLogin(g, { username: 'rst-erin', password });
  t.equal((await attempt('wrong-a-xyz')).status, 401);
  t.equal((await attempt('wrong-b-xyz')).status, 401);
  t.equal((await attempt('rst-erin-Pw-Right')).status, 200, 'success after 2 failures');
  t.equal((await attempt('wrong-c-xyz')).status, 401);
  t.equal((await attempt('wrong-d-xyz')).status, 401, 'two more failures are allowed: the count was reset');
  t.equal((await attempt('rst-erin-Pw-Right')).status, 200, 'and the right password still works');
  // Control: the limit is live in this gateway.
  for (const p of ['wrong-e-xyz', 'wrong-f-xyz', 'wrong-g-xyz']) t.equal((await attempt(p)).status, 401);
  t.equal((await attempt('rst-erin-Pw-Right')).status, 429, 'three failures in a row do block');
});

// ---------------------------------------------------------------------------
// PostgreSQL outage (stops the shared server: keep last among the tests that use it)
// ---------------------------------------------------------------------------

t.test('PostgreSQL down: logins 503 with a clear message, sessions keep working, logins recover', async (t) => {
  const cookie = await login(gw, 'alice', ALICE_PW);
  const page = await loginPage(gw);
  await db.stop();
  let restarted = false;
  t.teardown(async () => {
    if (!restarted) await db.start();
  });

  const json = await jsonLogin(gw, { username: 'alice', password: ALICE_PW });
  t.equal(json.status, 503, 'JSON login: 503');
  t.match(json.json(), { error: /unavailable/i }, 'JSON login: a clear message');
  t.notOk(json.cookies[SESSION]);

  const form = await formLogin(gw, { username: 'alice', password: ALICE_PW, csrf: page.token, rd: '/' }, { csrfCookie: page.cookie });
  t.equal(form.status, 503, 'form login: 503');
  t.match(form.headers['content-type'], /^text\/html/, 'form login: a page');
  t.match(form.body, /unavailable/i, 'form login: a clear message');
  t.notOk(form.cookies[SESSION]);

  const app = await apiGet(gw, '/during-outage', cookie);
  t.equal(app.status, 200, 'an existing session still opens the app');
  t.equal(app.json<Echo>().headers['x-forwarded-user'], 'alice');

  await db.start();
  restarted = true;
  const back = await jsonLogin(gw, { username: 'alice', password: ALICE_PW });
  t.equal(back.status, 200, 'login works again after PostgreSQL returns');
  t.ok(back.cookies[SESSION]);
});

// ---------------------------------------------------------------------------
// Secrets never logged (checks every gateway's log from the whole file)
// ---------------------------------------------------------------------------

t.test('no log line contains a password, a session cookie or a CSRF token', async (t) => {
  const lines = gateways.flatMap((g) => g.logs);
  t.ok(lines.length > 50, `${lines.length} log lines checked`);
  t.ok(secrets.size > 20, `${secrets.size} secret values checked`);
  const leaks: string[] = [];
  for (const line of lines) {
    for (const value of secrets) {
      if (value.length >= 8 && line.includes(value)) leaks.push(`${value.slice(0, 6)}… in ${line.slice(0, 160)}`);
    }
  }
  t.same(leaks, [], 'nothing secret in the logs');
  t.ok(lines.some((l) => l.includes('"audit":"login"')), 'while the audit lines are there');
});

t.test('a burst of parallel guesses cannot get past the limit', async (t) => {
  await insertUser('burst-fay', await hashPassword(secret('burst-fay-Pw-Right')));
  const g = await startGateway(t, { GATEWAY_REDIS_PREFIX: uniquePrefix(), GATEWAY_LOGIN_MAX_ATTEMPTS: '3', GATEWAY_LOGIN_WINDOW: '1m' });
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => jsonLogin(g, { username: 'burst-fay', password: `wrong-${i}-xyz` })));
  const statuses = answers.map((r) => r.status);
  const checked = statuses.filter((s) => s === 401).length;
  t.ok(checked >= 1 && checked <= 3, `${checked} of 20 parallel guesses had their password checked (at most 3)`);
  // 503 + Retry-After: more sign-ins in flight from one address than it is given (hash-queue-flood).
  t.equal(statuses.filter((s) => s === 429 || s === 503).length, 20 - checked, 'the rest were refused: throttled, or shed while the address had sign-ins in flight');
});
