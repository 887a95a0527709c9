// The admin listener's session API (SPEC section 6, issue 15.5) against real Redis and PostgreSQL
// with two replicas: the list is exactly what `sessions list` prints, a revocation reaches the
// other replica's cache at once and is audited like the CLI's, a wrong or missing token gets one
// fixed 401 that says nothing about the user, bad names get 400, the token is never logged, and
// without GATEWAY_ADMIN_TOKEN the API does not exist.
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { ensureBuilt, runCli } from '../helpers/cli.js';
import { login, seedUsers, startTestGateway, TEST_SECRET, uniquePrefix, withSession, type TestGateway } from '../helpers/gateway.js';
import { send, type Response } from '../helpers/http.js';
import { services, startRedis } from '../helpers/services.js';
import { startEchoUpstream } from '../helpers/upstream.js';

await ensureBuilt();

const PASSWORD = 'correct horse battery';
const TOKEN = randomBytes(32).toString('base64url');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const { redis, pg } = await services(t);
await seedUsers(t, pg.url, [
  { username: 'alice', password: PASSWORD },
  { username: 'bob', password: PASSWORD },
  { username: 'carol', password: PASSWORD },
]);
const upstream = await startEchoUpstream();
t.teardown(() => upstream.close());
const prefix = uniquePrefix();
const base = { REDIS_URL: redis.url, DATABASE_URL: pg.url, GATEWAY_UPSTREAM: upstream.url, GATEWAY_REDIS_PREFIX: prefix };
// Replica A serves the API; replica B, the same store and no token, does not.
const a = await startTestGateway(t, { ...base, GATEWAY_ADMIN_TOKEN: TOKEN });
const b = await startTestGateway(t, base);
const cliEnv = { REDIS_URL: redis.url, GATEWAY_REDIS_PREFIX: prefix, GATEWAY_SESSION_SECRET: TEST_SECRET, LOG_LEVEL: 'info' };

const admin = (method: string, path: string, authorization?: string, gateway: TestGateway = a): Promise<Response> =>
  send(`${gateway.adminUrl}${path}`, { method, headers: authorization === undefined ? {} : { authorization } });
const bearer = `Bearer ${TOKEN}`;

const statusWith = async (gateway: TestGateway, cookie: string) => (await send(`${gateway.url}/app`, { headers: withSession(gateway, cookie, { accept: 'application/json' }) })).status;
async function statusSoon(gateway: TestGateway, cookie: string, expected: number, ms: number): Promise<{ status: number; afterMs: number }> {
  const started = Date.now();
  let status = await statusWith(gateway, cookie);
  while (status !== expected && Date.now() - started < ms) {
    await sleep(5);
    status = await statusWith(gateway, cookie);
  }
  return { status, afterMs: Date.now() - started };
}
const parsedLogs = (gateway: TestGateway) => gateway.logs.map((line) => JSON.parse(line) as Record<string, unknown>);

const aliceOnA = await login(a, 'alice', PASSWORD);
const aliceOnB = await login(b, 'alice', PASSWORD);
const bobOnB = await login(b, 'bob', PASSWORD);

t.test('GET /sessions/<user> lists exactly what `sessions list` prints', async (t) => {
  const res = await admin('GET', '/sessions/alice', bearer);
  t.equal(res.status, 200, res.body);
  t.match(res.headers['content-type'], /^application\/json/);
  t.equal(res.headers['cache-control'], 'no-store');
  const listed = res.json<Array<Record<string, string>>>();
  t.equal(listed.length, 2);
  for (const s of listed) {
    t.same(Object.keys(s), ['id', 'user', 'created', 'lastSeen', 'expires']);
    t.match(s, { id: /^[A-Za-z0-9_-]{12}$/, user: 'alice' });
  }
  const cli = await runCli(['sessions', 'list', 'alice'], { env: cliEnv });
  t.equal(cli.code, 0, cli.stderr);
  const sortById = (list: Array<Record<string, string>>) => [...list].sort((x, y) => ((x.id ?? '') < (y.id ?? '') ? -1 : 1));
  t.same(sortById(listed), sortById(cli.out.map((line) => JSON.parse(line) as Record<string, string>)), 'same sessions, same fields, same values');
  for (const cookie of [aliceOnA, aliceOnB]) t.notOk(res.body.includes(cookie.split('.')[0] ?? cookie), 'no session id in the answer');

  const none = await admin('GET', '/sessions/nobody', bearer);
  t.equal(none.status, 200);
  t.same(none.json(), []);
  t.match(parsedLogs(a).find((l) => l.audit === 'session_list' && l.user === 'alice'), { by: 'admin_api', sessions: 2, outcome: 'success' }, 'a listing is audited too');
});

t.test('a wrong or missing token: 401, one fixed body, nothing revealed or done', async (t) => {
  const refusals: Response[] = [];
  for (const [method, path] of [['GET', '/sessions/alice'], ['GET', '/sessions/nobody'], ['DELETE', '/sessions/alice'], ['DELETE', '/sessions/nobody'], ['GET', '/sessions/%20bad']]) {
    for (const authorization of [undefined, '', 'Bearer', `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}`, TOKEN, `Bearer ${TOKEN} extra`]) {
      const res = await admin(method as string, path as string, authorization);
      t.equal(res.status, 401, `${method} ${path} with ${authorization === undefined ? 'no header' : JSON.stringify(authorization.slice(0, 8))}`);
      refusals.push(res);
    }
  }
  t.equal(new Set(refusals.map((r) => r.body)).size, 1, 'the same body whether or not the user exists');
  t.same(refusals[0]?.json(), { error: 'unauthorized' });
  t.match(refusals[0]?.headers['www-authenticate'], /^Bearer /);
  t.equal(await statusWith(a, aliceOnA), 200, 'the refused DELETEs revoked nothing');
  t.equal((await admin('GET', '/sessions/alice', `bearer  ${TOKEN}`)).status, 200, 'the scheme is case-insensitive (RFC 7235)');
});

t.test('bad user names: 400 with the token (and 401 without it)', async (t) => {
  for (const path of ['/sessions/%20alice', '/sessions/alice%20', '/sessions/a%00b', '/sessions/a%0Ab', `/sessions/${'x'.repeat(257)}`]) {
    const res = await admin('GET', path, bearer);
    t.equal(res.status, 400, `${path.slice(0, 30)}: ${res.body}`);
    t.type(res.json().error, 'string');
    t.equal((await admin('DELETE', path, bearer)).status, 400);
  }
  t.equal((await admin('GET', '/sessions/', bearer)).status < 500, true, 'no user name: never a 5xx');
});

t.test('DELETE /sessions/<user> revokes on every replica at once, audited like the CLI', async (t) => {
  // B has both of alice's sessions in its cache: the revocation must reach the cache, not only Redis.
  t.equal(await statusWith(b, aliceOnB), 200);
  t.equal(await statusWith(b, aliceOnA), 200);
  const res = await admin('DELETE', '/sessions/alice', bearer);
  t.equal(res.status, 200, res.body);
  t.same(res.json(), { user: 'alice', revoked: 2 });
  for (const cookie of [aliceOnA, aliceOnB]) {
    const onB = await statusSoon(b, cookie, 401, 1_000);
    t.equal(onB.status, 401, `the other replica refuses the revoked cookie (after ${onB.afterMs} ms)`);
    t.ok(onB.afterMs < 500, 'within the invalidation bound');
    t.equal(await statusWith(a, cookie), 401);
  }
  t.equal(await statusWith(b, bobOnB), 200, 'other users are untouched');
  t.same((await admin('GET', '/sessions/alice', bearer)).json(), []);
  t.same((await admin('DELETE', '/sessions/alice', bearer)).json(), { user: 'alice', revoked: 0 });

  const line = parsedLogs(a).find((l) => l.audit === 'revocation' && l.user === 'alice');
  t.match(line, { audit: 'revocation', user: 'alice', sessions: 2, by: 'admin_api', outcome: 'success', ip: '127.0.0.1' });
  // The CLI's own line for the same act, to hold the two to one shape.
  await login(b, 'carol', PASSWORD);
  const cli = await runCli(['sessions', 'revoke', 'carol'], { env: cliEnv });
  t.equal(cli.code, 0, cli.stderr);
  const cliLine = JSON.parse(cli.err.find((l) => l.includes('"audit":"revocation"')) ?? '{}') as Record<string, unknown>;
  t.match(cliLine, { audit: 'revocation', user: 'carol', sessions: 1, by: 'cli', outcome: 'success', msg: line?.msg });
});

t.test('the token never reaches a log line', async (t) => {
  const everything = [...a.logs, ...b.logs].join('\n');
  t.notOk(everything.includes(TOKEN), 'not the token');
  t.notOk(everything.includes(TOKEN.slice(0, 16)), 'not a prefix of it');
  t.ok(parsedLogs(a).some((l) => l.audit === 'admin_api' && l.outcome === 'wrong_token'), 'refusals are logged, without the token');
});

t.test('without GATEWAY_ADMIN_TOKEN the API does not exist', async (t) => {
  for (const [method, path] of [['GET', '/sessions/bob'], ['DELETE', '/sessions/bob']]) {
    const res = await admin(method as string, path as string, bearer, b);
    t.equal(res.status, 404, `${method} ${path} on a replica without the token`);
  }
  t.equal(await statusWith(b, bobOnB), 200, 'nothing was revoked');
  t.equal((await admin('GET', '/healthz', undefined, b)).status, 200);
  t.equal((await admin('GET', '/metrics', undefined, a)).status, 200, 'the other admin routes stay open, with or without the token');
});

t.test('Redis down: 503 with a clear body, never a 500; the token is still checked first', async (t) => {
  const own = await startRedis();
  t.teardown(() => own.stop());
  const gw = await startTestGateway(t, { ...base, REDIS_URL: own.url, GATEWAY_ADMIN_TOKEN: TOKEN, GATEWAY_REDIS_COMMAND_TIMEOUT: '300ms' });
  await own.stop();
  for (const method of ['GET', 'DELETE']) {
    const res = await admin(method, '/sessions/alice', bearer, gw);
    t.equal(res.status, 503, `${method}: ${res.body}`);
    t.same(res.json(), { error: 'session store unavailable' });
    t.equal((await admin(method, '/sessions/alice', 'Bearer wrong', gw)).status, 401);
  }
  t.match(parsedLogs(gw).find((l) => l.audit === 'revocation'), { user: 'alice', by: 'admin_api', outcome: 'error' }, 'a failed revocation is audited as such');
});
