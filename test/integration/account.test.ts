// Self-service (SPEC 9): a user changes their own password and ends their own sessions, through
// two replicas sharing a real Redis and a real PostgreSQL. The gateway's own table, and a legacy
// table written through GATEWAY_USER_PASSWORD_QUERY.
import t from 'tap';
import { hashPassword, verifyPassword } from '../../src/users/passwords.js';
import { seedUsers, startTestGateway, uniquePrefix, withSession, type TestGateway } from '../helpers/gateway.js';
import { cookieHeader, send, type Response } from '../helpers/http.js';
import { services } from '../helpers/services.js';
import { startEchoUpstream } from '../helpers/upstream.js';

const OLD = 'correct horse battery';
const NEW = 'a much longer and newer secret';
const FIREFOX = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0';
const CHROME_MAC = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

const { redis, pg: db } = await services(t);
const pool = await seedUsers(t, db.url, [
  { username: 'alice', password: OLD },
  { username: 'bob', password: OLD },
  { username: 'carol', password: OLD },
  { username: 'dave', password: OLD },
  { username: 'erin', password: OLD },
]);
const upstream = await startEchoUpstream();
t.teardown(() => upstream.close());
const prefix = uniquePrefix();
const env = { GATEWAY_UPSTREAM: upstream.url, REDIS_URL: redis.url, DATABASE_URL: db.url, GATEWAY_REDIS_PREFIX: prefix, GATEWAY_LOGIN_MAX_ATTEMPTS: '3' };
const a = await startTestGateway(t, env);
const b = await startTestGateway(t, env);

async function signIn(gateway: TestGateway, username: string, password: string, userAgent = FIREFOX): Promise<Response> {
  return send(`${gateway.url}/_auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': userAgent }, body: JSON.stringify({ username, password }) });
}
async function session(gateway: TestGateway, username: string, password = OLD, userAgent = FIREFOX): Promise<string> {
  const res = await signIn(gateway, username, password, userAgent);
  const cookie = res.cookies[gateway.config.cookieName];
  if (res.status !== 200 || !cookie) throw new Error(`sign-in as ${username}: ${res.status} ${res.body}`);
  return cookie;
}
const app = (gateway: TestGateway, cookie: string) => send(`${gateway.url}/app`, { headers: withSession(gateway, cookie, { accept: 'application/json' }) });
const changePassword = (gateway: TestGateway, cookie: string, body: Record<string, string>) =>
  send(`${gateway.url}/_auth/account/password`, { method: 'POST', headers: withSession(gateway, cookie, { 'content-type': 'application/json' }), body: JSON.stringify(body) });
const listSessions = (gateway: TestGateway, cookie: string) => send(`${gateway.url}/_auth/account/sessions`, { headers: withSession(gateway, cookie, { accept: 'application/json' }) });
const endSession = (gateway: TestGateway, cookie: string, target: string) =>
  send(`${gateway.url}/_auth/account/sessions`, { method: 'POST', headers: withSession(gateway, cookie, { 'content-type': 'application/json' }), body: JSON.stringify({ session: target }) });
const storedHash = async (username: string) => (await pool.query<{ password_hash: string }>('SELECT password_hash FROM gateway_users WHERE username = $1', [username])).rows[0]?.password_hash;
const auditLines = (gateway: TestGateway, audit: string) => gateway.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.audit === audit);

t.test('changing the password: old refused, new accepted, the other session ended on both replicas, this one kept', async (t) => {
  const mine = await session(a, 'alice');
  const other = await session(b, 'alice', OLD, CHROME_MAC);
  t.equal((await app(b, other)).status, 200, 'the other session works before');

  const res = await changePassword(a, mine, { current: OLD, new: NEW, confirm: NEW });
  t.equal(res.status, 200, res.body);
  t.same(res.json(), { changed: true, sessionsEnded: 1 });
  const renewed = res.cookies[a.config.cookieName];
  t.ok(renewed, 'this session goes on under a new cookie');

  t.equal((await app(a, renewed!)).status, 200, 'this session works on replica a');
  t.equal((await app(b, renewed!)).status, 200, 'and on replica b');
  t.equal((await app(a, other)).status, 401, 'the other session is refused on replica a');
  t.equal((await app(b, other)).status, 401, 'and on replica b, which had it cached');
  t.equal((await app(b, mine)).status, 401, 'the pre-change cookie no longer works');

  t.equal((await signIn(b, 'alice', OLD)).status, 401, 'the old password is refused');
  t.equal((await signIn(b, 'alice', NEW)).status, 200, 'the new password is accepted');
  t.match(await storedHash('alice'), /^\$argon2id\$/, 'stored as argon2id');
  const line = auditLines(a, 'password_change').find((l) => l.outcome === 'success');
  t.match(line, { user: 'alice', ip: '127.0.0.1', outcome: 'success' }, 'audited');
  t.notOk(a.logs.some((l) => l.includes(NEW) || l.includes(OLD)), 'no password in the logs');
});

t.test('too short, common or mismatched: 400 with a reason, nothing written, sessions untouched', async (t) => {
  const mine = await session(a, 'bob');
  const other = await session(b, 'bob');
  const before = await storedHash('bob');
  const cases: Array<[string, Record<string, string>, string]> = [
    ['too short', { current: OLD, new: 'short pass', confirm: 'short pass' }, 'too_short'],
    ['common', { current: OLD, new: 'qwerty123456', confirm: 'qwerty123456' }, 'common'],
    ['common, other case', { current: OLD, new: 'QWERTY123456', confirm: 'QWERTY123456' }, 'common'],
    ['mismatched', { current: OLD, new: NEW, confirm: `${NEW}!` }, 'mismatch'],
    ['missing confirmation', { current: OLD, new: NEW }, 'missing'],
  ];
  for (const [name, body, reason] of cases) {
    const res = await changePassword(a, mine, body);
    t.equal(res.status, 400, name);
    t.equal(res.json().reason, reason, `${name}: ${String(res.json().error)}`);
  }
  t.equal(await storedHash('bob'), before, 'nothing written');
  t.equal((await app(b, other)).status, 200, 'the other session still works');
  t.equal((await signIn(a, 'bob', OLD)).status, 200, 'the old password still works');
});

t.test('a wrong current password: 401, one generic answer, throttled like a sign-in', async (t) => {
  const mine = await session(a, 'carol');
  const before = await storedHash('carol');
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) {
    const res = await changePassword(i % 2 === 0 ? a : b, mine, { current: `wrong password ${i}`, new: NEW, confirm: NEW });
    statuses.push(res.status);
    if (res.status === 401) t.same(res.json(), { error: 'The current password is not correct.' });
    if (res.status === 429) t.ok(res.headers['retry-after'], 'Retry-After');
  }
  t.same(statuses, [401, 401, 401, 429], 'the third failure uses up the shared budget on both replicas');
  const res = await changePassword(a, mine, { current: OLD, new: NEW, confirm: NEW });
  t.equal(res.status, 429, 'even the right password waits out the window');
  t.equal(await storedHash('carol'), before, 'nothing written');
  t.equal((await app(a, mine)).status, 200, 'the session itself is not ended by wrong guesses');
});

t.test('not signed in: 401 as JSON, to the login page as HTML; another origin refused', async (t) => {
  t.equal((await changePassword(a, 'nonsense', { current: OLD, new: NEW, confirm: NEW })).status, 401);
  const page = await send(`${a.url}/_auth/account/sessions`, { headers: { accept: 'text/html' } });
  t.equal(page.status, 303);
  t.equal(page.headers.location, '/_auth/login?rd=%2F_auth%2Faccount%2Fsessions');
  const mine = await session(a, 'dave');
  const cross = await send(`${a.url}/_auth/account/password`, {
    method: 'POST',
    headers: withSession(a, mine, { 'content-type': 'application/json', origin: 'https://evil.example' }),
    body: JSON.stringify({ current: OLD, new: NEW, confirm: NEW }),
  });
  t.equal(cross.status, 403);
  const form = await send(`${a.url}/_auth/account/sessions`, {
    method: 'POST',
    headers: withSession(a, mine, { 'content-type': 'application/x-www-form-urlencoded' }),
    body: 'session=others',
  });
  t.equal(form.status, 403, 'a form without the CSRF token is refused');
});

t.test('where am I signed in: both sessions, the current marked; ending the other one on both replicas', async (t) => {
  const mine = await session(a, 'erin', OLD, FIREFOX);
  const other = await session(b, 'erin', OLD, CHROME_MAC);
  const listed = (await listSessions(b, mine)).json<{ sessions: Array<{ id: string; client: string; current: boolean; created: string; lastSeen: string }> }>().sessions;
  const current = listed.filter((s) => s.current);
  t.equal(current.length, 1, 'one current session');
  t.equal(current[0]?.client, 'Firefox on Linux');
  const chrome = listed.find((s) => s.client === 'Chrome on macOS');
  t.ok(chrome, 'the other client is described');
  t.match(chrome, { id: /^[A-Za-z0-9_-]{12}$/, created: /^\d{4}-/, lastSeen: /^\d{4}-/, current: false });
  t.notOk(JSON.stringify(listed).includes('Mozilla'), 'never the raw User-Agent');

  t.equal((await endSession(a, mine, current[0]!.id)).status, 400, 'this session is ended by signing out, not here');
  t.equal((await endSession(a, mine, 'AAAAAAAAAAAA')).status, 404, 'an unknown handle');
  const ended = await endSession(a, mine, chrome!.id);
  t.same(ended.json(), { ended: 1 });
  t.equal((await app(b, other)).status, 401, 'refused on replica b');
  t.equal((await app(a, other)).status, 401, 'refused on replica a');
  t.equal((await app(b, mine)).status, 200, 'this one goes on');

  const third = await session(b, 'erin');
  const fourth = await session(a, 'erin');
  t.same((await endSession(b, mine, 'others')).json(), { ended: 2 }, 'all others');
  t.equal((await app(a, third)).status, 401);
  t.equal((await app(b, fourth)).status, 401);
  t.equal((await app(a, mine)).status, 200);
  t.match(auditLines(b, 'revocation').at(-1), { user: 'erin', by: 'self', sessions: 2 });
});

t.test('the HTML pages work as plain forms (CSRF token, 303 back with a notice)', async (t) => {
  const mine = await session(a, 'bob');
  await session(b, 'bob', OLD, CHROME_MAC);
  const page = await send(`${a.url}/_auth/account/sessions`, { headers: withSession(a, mine, { accept: 'text/html' }) });
  t.equal(page.status, 200);
  t.match(page.headers['content-security-policy'], /default-src 'none'/);
  t.notMatch(page.body, /<script/);
  const token = /name="csrf" value="([^"]+)"/.exec(page.body)?.[1];
  t.ok(token);
  t.match(page.body, /This session/);
  const res = await send(`${a.url}/_auth/account/sessions`, {
    method: 'POST',
    headers: { cookie: cookieHeader({ [a.config.cookieName]: mine, sgw_csrf: page.cookies.sgw_csrf! }), 'content-type': 'application/x-www-form-urlencoded' },
    body: `csrf=${encodeURIComponent(token!)}&session=others`,
  });
  t.equal(res.status, 303);
  t.match(res.headers.location, /\/_auth\/account\/sessions\?ended=[1-9]/);
  const after = await send(`${a.url}${res.headers.location}`, { headers: withSession(a, mine, { accept: 'text/html' }) });
  t.match(after.body, /signed out\./);
  t.match(after.body, /signed in nowhere else/);
});

t.test('a legacy table: the new hash is written through GATEWAY_USER_PASSWORD_QUERY', async (t) => {
  await pool.query('CREATE TABLE legacy_accounts (login text PRIMARY KEY, pass text NOT NULL)');
  await pool.query('INSERT INTO legacy_accounts VALUES ($1, $2)', ['lena', await hashPassword(OLD)]);
  const legacyEnv = {
    ...env,
    GATEWAY_REDIS_PREFIX: uniquePrefix(),
    GATEWAY_USER_QUERY: 'SELECT login AS username, pass AS password_hash FROM legacy_accounts WHERE login = $1',
    GATEWAY_USER_PASSWORD_QUERY: 'UPDATE legacy_accounts SET pass = $2 WHERE login = $1',
  };
  const c = await startTestGateway(t, legacyEnv);
  const d = await startTestGateway(t, legacyEnv);
  const mine = await session(c, 'lena');
  const other = await session(d, 'lena');
  const res = await changePassword(c, mine, { current: OLD, new: NEW, confirm: NEW });
  t.equal(res.status, 200, res.body);
  const stored = (await pool.query<{ pass: string }>('SELECT pass FROM legacy_accounts WHERE login = $1', ['lena'])).rows[0]!.pass;
  t.ok((await verifyPassword(stored, NEW, { allowPlaintext: false })).ok, 'the legacy row holds a hash of the new password');
  t.equal((await app(d, other)).status, 401, 'the other session is refused on the other replica');
  t.equal((await signIn(d, 'lena', NEW)).status, 200);
  t.equal((await signIn(d, 'lena', OLD)).status, 401);

  // Without the query the change is refused cleanly and nothing is written.
  const e = await startTestGateway(t, { ...legacyEnv, GATEWAY_USER_PASSWORD_QUERY: '' });
  const third = await session(e, 'lena', NEW);
  const refused = await changePassword(e, third, { current: NEW, new: `${NEW} again`, confirm: `${NEW} again` });
  t.equal(refused.status, 503);
  t.equal((await pool.query<{ pass: string }>('SELECT pass FROM legacy_accounts WHERE login = $1', ['lena'])).rows[0]!.pass, stored);
});
