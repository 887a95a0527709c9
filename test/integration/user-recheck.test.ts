// Sessions follow the users table (GATEWAY_USER_RECHECK_INTERVAL): two proxy replicas and a
// forward-auth one on real Redis and a real PostgreSQL whose legacy table (GATEWAY_USER_QUERY) is
// changed by plain SQL, as the app that owns it would, with no CLI call. Disabled, deleted or a new
// password hash: the session is refused on every replica and door within 2 s at a 1 s interval; a new e-mail or groups reach the app's headers and
// the identity token. PostgreSQL down: sessions go on and the error is counted. Many sessions of one
// user cost one query per interval per replica (counted by the query itself, in PostgreSQL).
import { jwtVerify } from 'jose';
import pg from 'pg';
import t from 'tap';
import { hashPassword } from '../../src/users/passwords.js';
import { startTestGateway, uniquePrefix, withSession, type TestGateway } from '../helpers/gateway.js';
import { callVerify } from '../helpers/forward-auth.js';
import { send, type Response } from '../helpers/http.js';
import { scrapeMetric } from '../helpers/metrics.js';
import { sleep, startPostgres, startRedis } from '../helpers/services.js';
import { startEchoUpstream, type Echo } from '../helpers/upstream.js';
import { openSocket, startWebSocketUpstream, wsUrl } from '../helpers/websocket.js';

const PASSWORD = 'correct horse battery';
const HMAC_SECRET = 'identity-hmac-secret-0123456789-abcdefgh';
const INTERVAL_MS = 1_000;
const DEADLINE_MS = 2_000;

// This test stops PostgreSQL: always servers of its own.
const redis = await startRedis();
t.teardown(() => redis.stop());
const db = await startPostgres({ local: true });
t.teardown(() => db.stop());

// The app's own table, in its own shape; every read of it by a replica is counted in PostgreSQL.
const pool = new pg.Pool({ connectionString: db.url, max: 2 });
pool.on('error', () => undefined);
t.teardown(() => pool.end());
await pool.query(`
  CREATE TABLE app_accounts (login text PRIMARY KEY, pass text NOT NULL, mail text, roles text, active boolean NOT NULL DEFAULT true);
  CREATE TABLE account_reads (replica text NOT NULL, login text NOT NULL);
  CREATE FUNCTION count_read(replica text, login text) RETURNS boolean LANGUAGE sql VOLATILE AS
    $$ INSERT INTO account_reads VALUES (replica, login) RETURNING true $$;
`);
const hash = await hashPassword(PASSWORD);
const USERS = ['dana', 'dave', 'pat', 'eve', 'olga', 'nick', 'walt'];
for (const login of USERS) await pool.query('INSERT INTO app_accounts VALUES ($1, $2, $3, $4, true)', [login, hash, `${login}@example.com`, 'staff']);
const reads = async (replica: string, login: string) =>
  Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM account_reads WHERE replica = $1 AND login = $2', [replica, login])).rows[0]?.n);

const upstream = await startEchoUpstream();
t.teardown(() => upstream.close());
const prefix = uniquePrefix();
const userQuery = (replica: string) =>
  `SELECT login AS username, pass AS password_hash, mail AS email, roles AS groups, NOT active AS disabled, count_read('${replica}', login) AS counted FROM app_accounts WHERE login = $1`;
const replica = (name: string, door: Record<string, string> = { GATEWAY_UPSTREAM: upstream.url }) =>
  startTestGateway(t, {
    ...door,
    REDIS_URL: redis.url,
    DATABASE_URL: db.url,
    GATEWAY_REDIS_PREFIX: prefix,
    GATEWAY_USER_QUERY: userQuery(name),
    GATEWAY_USER_RECHECK_INTERVAL: `${INTERVAL_MS / 1_000}s`,
    GATEWAY_IDENTITY_JWT: 'true',
    GATEWAY_IDENTITY_HMAC_SECRET: HMAC_SECRET,
  });
const a = await replica('a');
const b = await replica('b');
// A third door on the same sessions: forward-auth (no upstream; a proxy on 127.0.0.1 asks /_auth/verify).
const c = await replica('c', { GATEWAY_TRUSTED_PROXIES: '127.0.0.1' });
const replicas: Array<[string, TestGateway]> = [['a', a], ['b', b]];

async function signIn(gateway: TestGateway, username: string, password = PASSWORD): Promise<string> {
  const res = await send(`${gateway.url}/_auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) });
  const cookie = res.cookies[gateway.config.cookieName];
  if (res.status !== 200 || !cookie) throw new Error(`sign-in as ${username}: ${res.status} ${res.body}`);
  return cookie;
}
const get = (gateway: TestGateway, cookie: string): Promise<Response> => send(`${gateway.url}/app`, { headers: withSession(gateway, cookie, { accept: 'application/json' }) });
/** What each door says of a session: true when it lets the request through. */
const doors: Array<[string, (cookie: string) => Promise<boolean>]> = [
  ...replicas.map(([name, gateway]): [string, (cookie: string) => Promise<boolean>] => [name, async (cookie) => statusOk((await get(gateway, cookie)).status, 200, name)]),
  ['c (forward-auth)', async (cookie) => statusOk((await callVerify(c, { ...withSession(c, cookie), 'x-forwarded-uri': '/app', 'x-forwarded-host': 'app.example.com', 'x-forwarded-proto': 'https' }, { from: '127.0.0.1' })).status, 204, 'c')],
];
function statusOk(status: number, ok: number, name: string): boolean {
  if (status === ok) return true;
  if (status === 401) return false;
  throw new Error(`${name}: unexpected ${status}`);
}

/**
 * Requests the app through every replica every 100 ms until each has refused the session; returns
 * how long after `since` each first refused (Infinity: not within `limitMs`). Once refused, it
 * must stay refused.
 */
async function refusalTimes(cookie: string, since: number, limitMs: number): Promise<Record<string, number>> {
  const refusedAt: Record<string, number> = {};
  while (Object.keys(refusedAt).length < doors.length && performance.now() - since < limitMs) {
    for (const [name, passes] of doors) {
      if (!(await passes(cookie))) refusedAt[name] ??= performance.now() - since;
      else if (refusedAt[name] !== undefined) throw new Error(`${name} accepted a session it had refused`);
    }
    await sleep(100);
  }
  return Object.fromEntries(doors.map(([name]) => [name, refusedAt[name] ?? Infinity]));
}

async function everyDoorAccepts(cookie: string): Promise<void> {
  for (const [name, passes] of doors) if (!(await passes(cookie))) throw new Error(`${name} refused a valid session`);
}

const auditLines = () =>
  [...a.logs, ...b.logs, ...c.logs].map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.audit === 'revocation' && l.by === 'user_recheck');

t.test('a user disabled in the table is refused on every replica and door within 2 s', async (t) => {
  const cookie = await signIn(a, 'dana');
  await everyDoorAccepts(cookie);
  await sleep(1_200);
  await everyDoorAccepts(cookie); // still the user's: the recheck read an active user
  await pool.query('UPDATE app_accounts SET active = false WHERE login = $1', ['dana']);
  const times = await refusalTimes(cookie, performance.now(), 4_000);
  for (const [name, ms] of Object.entries(times)) t.ok(ms <= DEADLINE_MS, `replica ${name} refused after ${Math.round(ms)} ms`);
  t.match(auditLines().filter((l) => l.user === 'dana'), [{ user: 'dana', reason: 'disabled', outcome: 'success', sessions: 1 }], 'one audit line');
});

t.test('a user deleted from the table is refused on every replica and door within 2 s', async (t) => {
  const cookie = await signIn(b, 'dave');
  await everyDoorAccepts(cookie);
  await pool.query('DELETE FROM app_accounts WHERE login = $1', ['dave']);
  const times = await refusalTimes(cookie, performance.now(), 4_000);
  for (const [name, ms] of Object.entries(times)) t.ok(ms <= DEADLINE_MS, `replica ${name} refused after ${Math.round(ms)} ms`);
  t.match(auditLines().filter((l) => l.user === 'dave'), [{ reason: 'deleted' }]);
});

t.test('a password hash changed in the table ends the old sessions on every replica within 2 s, not a new one', async (t) => {
  const old = await signIn(a, 'pat');
  await everyDoorAccepts(old);
  await pool.query('UPDATE app_accounts SET pass = $2 WHERE login = $1', ['pat', await hashPassword('a brand new passphrase')]);
  const since = performance.now();
  const fresh = await signIn(b, 'pat', 'a brand new passphrase');
  const times = await refusalTimes(old, since, 4_000);
  for (const [name, ms] of Object.entries(times)) t.ok(ms <= DEADLINE_MS, `replica ${name} refused the old session after ${Math.round(ms)} ms`);
  await sleep(1_200);
  await everyDoorAccepts(fresh);
  t.pass('the session signed in with the new password lives on');
  t.match(auditLines().filter((l) => l.user === 'pat'), [{ reason: 'password_changed', sessions: 1 }]);
  const stored = await send(`${a.url}/_auth/session`, { headers: withSession(a, fresh) });
  t.equal(stored.status, 200);
});

t.test('a changed e-mail and groups reach the headers and the identity token on every replica', async (t) => {
  const cookie = await signIn(a, 'eve');
  await everyDoorAccepts(cookie);
  await pool.query('UPDATE app_accounts SET mail = $2, roles = $3 WHERE login = $1', ['eve', 'eve@new.example', 'ops,auditors']);
  const since = performance.now();
  const seenAt: Record<string, number> = {};
  let last: Record<string, Echo> = {};
  while (Object.keys(seenAt).length < 2 && performance.now() - since < 4_000) {
    for (const [name, gateway] of replicas) {
      const res = await get(gateway, cookie);
      t.equal(res.status, 200);
      const echo = res.json<Echo>();
      last = { ...last, [name]: echo };
      if (echo.headers['x-forwarded-email'] === 'eve@new.example') seenAt[name] ??= performance.now() - since;
    }
    await sleep(100);
  }
  for (const [name] of replicas) {
    t.ok((seenAt[name] ?? Infinity) <= DEADLINE_MS, `replica ${name} forwarded the new e-mail after ${Math.round(seenAt[name] ?? Infinity)} ms`);
    const echo = last[name] as Echo;
    t.equal(echo.headers['x-forwarded-groups'], 'ops,auditors', `replica ${name}: the new groups`);
    const { payload } = await jwtVerify(String(echo.headers['x-gateway-identity']), new TextEncoder().encode(HMAC_SECRET));
    t.match(payload, { sub: 'eve', email: 'eve@new.example', groups: ['ops', 'auditors'] }, `replica ${name}: the identity token`);
  }
});

t.test('an open WebSocket of a user disabled in the table closes with 1008, with no request at all', async (t) => {
  const app = await startWebSocketUpstream();
  t.teardown(() => app.close());
  const d = await replica('d', { GATEWAY_UPSTREAM: app.url, GATEWAY_WEBSOCKET_REVALIDATE_INTERVAL: '1s' });
  const cookie = await signIn(d, 'walt');
  const socket = await openSocket(wsUrl(d.url, '/feed'), { headers: withSession(d, cookie) });
  t.equal(await socket.next(), 'hello');
  await pool.query('UPDATE app_accounts SET active = false WHERE login = $1', ['walt']);
  const since = performance.now();
  t.same(await socket.closed(4_000), { code: 1008, reason: 'session ended' });
  const ms = performance.now() - since;
  t.ok(ms <= 3_000, `closed ${Math.round(ms)} ms after the UPDATE (revalidated every 1 s, user read every 1 s)`);
});

t.test('many sessions of one user: one query per interval per replica', async (t) => {
  const sessions: string[] = [];
  for (let i = 0; i < 5; i++) sessions.push(await signIn(i % 2 ? a : b, 'nick'));
  const before = { a: await reads('a', 'nick'), b: await reads('b', 'nick') };
  const started = performance.now();
  let requests = 0;
  let refused = 0;
  while (performance.now() - started < 3_500) {
    await Promise.all(sessions.flatMap((cookie) => replicas.map(async ([, gateway]) => {
      if ((await get(gateway, cookie)).status !== 200) refused++;
      requests++;
    })));
    await sleep(20);
  }
  t.equal(refused, 0, 'every request served');
  const used = { a: (await reads('a', 'nick')) - before.a, b: (await reads('b', 'nick')) - before.b };
  t.comment(`${requests} requests of 5 sessions over 3.5 s at a 1 s interval: ${used.a} queries on replica a, ${used.b} on b`);
  for (const [name, n] of Object.entries(used)) t.ok(n >= 2 && n <= 4, `replica ${name}: ${n} queries (one per interval, never one per session)`);
});

t.test('PostgreSQL stopped: sessions keep working, the error is counted, the check is retried', async (t) => {
  const cookie = await signIn(a, 'olga');
  await everyDoorAccepts(cookie);
  const errorsBefore = await scrapeMetric(a.adminUrl, 'gateway_store_errors_total', { store: 'postgres' });
  await db.stop();
  try {
    const started = performance.now();
    while (performance.now() - started < 3_000) {
      await everyDoorAccepts(cookie);
      await sleep(100);
    }
    t.pass('accepted on both replicas for 3 s with PostgreSQL down');
    t.ok((await scrapeMetric(a.adminUrl, 'gateway_store_errors_total', { store: 'postgres' })) > errorsBefore, 'gateway_store_errors_total{store="postgres"} counted');
    t.ok((await scrapeMetric(b.adminUrl, 'gateway_store_errors_total', { store: 'postgres' })) > 0, 'on the other replica too');
  } finally {
    await db.start();
  }
  await pool.query('UPDATE app_accounts SET active = false WHERE login = $1', ['olga']);
  // A pooled connection may fail once more after the restart; the next interval's read gets through.
  const times = await refusalTimes(cookie, performance.now(), 6_000);
  for (const [name, ms] of Object.entries(times)) t.ok(ms < 6_000, `replica ${name} refused after ${Math.round(ms)} ms once PostgreSQL was back`);
});
