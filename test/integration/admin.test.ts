// The admin listener (SPEC section 6) and failure behaviour (SPEC section 7): liveness,
// readiness per dependency through real PostgreSQL and Redis outages, fail-closed proxying while
// Redis is down, recovery without a restart, and Prometheus metrics that move.
import { Redis } from 'ioredis';
import t from 'tap';
import { login, seedUsers, startTestGateway, uniquePrefix, withSession } from '../helpers/gateway.js';
import { send, type Response } from '../helpers/http.js';
import { metricSum } from '../helpers/metrics.js';
import { services } from '../helpers/services.js';
import { startEchoUpstream } from '../helpers/upstream.js';

const { redis, pg } = await services(t);
const seedPool = await seedUsers(t, pg.url, [{ username: 'alice', password: 'correct horse', email: 'alice@example.com', groups: ['staff'] }]);
// seedUsers' pool has no 'error' listener; an idle client dying with PostgreSQL must not crash the test.
seedPool.on('error', () => undefined);
const upstream = await startEchoUpstream();
t.teardown(() => upstream.close());
const gw = await startTestGateway(t, { REDIS_URL: redis.url, DATABASE_URL: pg.url, GATEWAY_UPSTREAM: upstream.url, GATEWAY_REDIS_PREFIX: uniquePrefix() });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const readyz = () => send(`${gw.adminUrl}/readyz`);
const scrape = async () => (await send(`${gw.adminUrl}/metrics`)).body;
const loginJson = (password: string) =>
  send(`${gw.url}/_auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', password }) });

/** Polls until `accept` holds for a response (a dependency coming or going is not instant). */
async function until(what: string, probe: () => Promise<Response>, accept: (res: Response) => boolean, timeoutMs = 20_000): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  let last: Response | undefined;
  while (Date.now() < deadline) {
    last = await probe();
    if (accept(last)) return last;
    await sleep(100);
  }
  throw new Error(`${what}: not reached in ${timeoutMs} ms (last: ${last?.status} ${last?.body})`);
}

const metric = metricSum;

t.test('/healthz answers 200 while the process serves', async (t) => {
  const res = await send(`${gw.adminUrl}/healthz`);
  t.equal(res.status, 200);
  t.same(res.json(), { status: 'ok' });
});

t.test('/readyz is 200 and reports redis and postgres up', async (t) => {
  const res = await readyz();
  t.equal(res.status, 200, res.body);
  t.match(res.json(), { status: 'ready', redis: 'up', postgres: 'up' });
});

t.test('the admin routes are not served by the proxy listener', async (t) => {
  const res = await send(`${gw.url}/metrics`);
  t.equal(res.status, 401, 'on the proxy port /metrics is just a protected app path');
  t.notMatch(res.body, /gateway_/);
});

t.test('/metrics is Prometheus text with the documented metrics', async (t) => {
  const res = await send(`${gw.adminUrl}/metrics`);
  t.equal(res.status, 200);
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  const types: Array<[string, string]> = [
    ['gateway_session_cache_requests_total', 'counter'],
    ['gateway_session_validations_total', 'counter'],
    ['gateway_request_duration_seconds', 'histogram'],
    ['gateway_upstream_request_duration_seconds', 'histogram'],
    ['gateway_logins_total', 'counter'],
    ['gateway_store_errors_total', 'counter'],
    ['gateway_session_cache_entries', 'gauge'],
    ['process_cpu_seconds_total', 'counter'],
  ];
  for (const [name, type] of types) t.match(res.body, new RegExp(`^# TYPE ${name} ${type}$`, 'm'), `${name} is a ${type}`);
  t.match(res.body, /^process_cpu_seconds_total \d/m, 'default process metrics have values');
});

t.test('the counters move with logins and requests', async (t) => {
  const before = await scrape();
  const cookie = await login(gw, 'alice', 'correct horse');
  t.equal((await loginJson('wrong horse')).status, 401);
  for (let i = 0; i < 2; i++) t.equal((await send(`${gw.url}/app`, { headers: withSession(gw, cookie) })).status, 200);
  t.equal((await send(`${gw.url}/app`)).status, 401, 'no cookie');
  t.equal((await send(`${gw.url}/app`, { headers: withSession(gw, 'forged.value') })).status, 401, 'forged cookie');
  const after = await scrape();

  const delta = (name: string, labels: Record<string, string> = {}) => metric(after, name, labels) - metric(before, name, labels);
  t.equal(delta('gateway_logins_total', { outcome: 'success' }), 1, 'a login: success +1');
  t.equal(delta('gateway_logins_total', { outcome: 'failure' }), 1, 'a wrong password: failure +1');
  t.equal(delta('gateway_session_cache_requests_total', { result: 'hit' }), 2, 'the fresh session is served from the cache');
  t.equal(delta('gateway_session_cache_requests_total', { result: 'miss' }), 1, 'the forged cookie missed');
  t.equal(delta('gateway_session_validations_total', { outcome: 'valid' }), 2);
  t.equal(delta('gateway_session_validations_total', { outcome: 'missing' }), 1);
  t.equal(delta('gateway_session_validations_total', { outcome: 'invalid' }), 1);
  t.equal(delta('gateway_request_duration_seconds_count', { method: 'GET', status_class: '2xx' }), 2);
  t.equal(delta('gateway_request_duration_seconds_count', { method: 'GET', status_class: '4xx' }), 2);
  t.equal(delta('gateway_request_duration_seconds_count', { method: 'POST', status_class: '2xx' }), 1, 'gateway routes are counted too');
  t.equal(delta('gateway_request_duration_seconds_count', { method: 'POST', status_class: '4xx' }), 1);
  t.equal(delta('gateway_upstream_request_duration_seconds_count', { status_class: '2xx' }), 2, 'only forwarded requests reach the upstream histogram');
  t.ok(metric(after, 'gateway_session_cache_entries') >= 1, 'cache size is exported');
  t.notMatch(after, /\/app|alice/, 'no raw paths or user names in labels');
  t.equal(delta('gateway_store_operation_duration_seconds_count', { store: 'postgres', operation: 'find_user' }), 2, 'each login looked the user up in PostgreSQL');
});

t.test('without DATABASE_URL, no PostgreSQL latency series is invented for the generated user', async (t) => {
  const solo = await startTestGateway(t, { REDIS_URL: redis.url, GATEWAY_UPSTREAM: upstream.url, GATEWAY_REDIS_PREFIX: uniquePrefix() });
  const announced = solo.announced.join('\n');
  const user = /demo user:\s*(\S+)/.exec(announced)?.[1] ?? '';
  const password = /password \(shown once\):\s*(\S+)/.exec(announced)?.[1] ?? '';
  t.not(password, '', 'the generated credentials were announced');
  await login(solo, user, password);
  const text = (await send(`${solo.adminUrl}/metrics`)).body;
  t.equal(metric(text, 'gateway_logins_total', { outcome: 'success' }), 1);
  t.equal(metric(text, 'gateway_store_operation_duration_seconds_count', { store: 'postgres' }), 0);
});

t.test('PostgreSQL down: still ready, postgres reported down, sessions keep working, logins 503', async (t) => {
  const cookie = await login(gw, 'alice', 'correct horse');
  const before = await scrape();
  await pg.stop();
  let restarted = false;
  t.teardown(async () => {
    if (!restarted) await pg.start();
  });

  const res = await until('postgres reported down', readyz, (r) => r.json().postgres !== 'up');
  t.equal(res.status, 200, 'PostgreSQL down does not take the replica out of the load balancer');
  t.match(res.json(), { status: 'ready', redis: 'up', postgres: /^down/ });

  const app = await send(`${gw.url}/app`, { headers: withSession(gw, cookie) });
  t.equal(app.status, 200, 'an existing session keeps working');
  const failed = await loginJson('correct horse');
  t.equal(failed.status, 503, failed.body);
  t.match(failed.json(), { error: /temporarily unavailable/ }, 'a clear message');
  const after = await scrape();
  t.ok(metric(after, 'gateway_store_errors_total', { store: 'postgres' }) > metric(before, 'gateway_store_errors_total', { store: 'postgres' }), 'postgres errors counted');
  t.equal(metric(after, 'gateway_logins_total', { outcome: 'error' }) - metric(before, 'gateway_logins_total', { outcome: 'error' }), 1, 'login error counted');

  await pg.start();
  restarted = true;
  await until('postgres back up', readyz, (r) => r.status === 200 && r.json().postgres === 'up');
  await until('logins work again', () => loginJson('correct horse'), (r) => r.status === 200);
});

t.test('Redis down: not ready, fail closed with 503, then recovery by itself', async (t) => {
  const cookie = await login(gw, 'alice', 'correct horse');
  t.equal((await send(`${gw.url}/app`, { headers: withSession(gw, cookie) })).status, 200, 'valid and cached before the outage');
  // Snapshot now, so the restarted disposable redis-server (started without persistence
  // settings) loads this session back, as a Redis with RDB/AOF persistence would.
  const client = new Redis(redis.url, { lazyConnect: true });
  await client.connect();
  t.equal(await client.save(), 'OK');
  client.disconnect();

  const before = await scrape();
  const forwarded = upstream.received.length;
  await redis.stop();
  let restarted = false;
  t.teardown(async () => {
    if (!restarted) await redis.start();
  });

  const notReady = await until('readyz 503', readyz, (r) => r.status === 503);
  t.match(notReady.json(), { status: /redis/, redis: 'down' }, 'the body names redis');
  t.equal(notReady.json().postgres, 'up', 'and still reports postgres');

  const api = await send(`${gw.url}/app`, { headers: withSession(gw, cookie) });
  t.equal(api.status, 503, `API request with a valid session: ${api.body}`);
  t.match(api.json(), { code: 'GW_ERR_SESSION_STORE_UNAVAILABLE' });
  const page = await send(`${gw.url}/app`, { headers: withSession(gw, cookie, { accept: 'text/html' }) });
  t.equal(page.status, 503, 'a browser navigation gets 503, never a 302 to the login page');
  t.notOk(page.headers.location, 'no redirect');
  t.notOk(page.headers['set-cookie']?.some((c) => c.startsWith(`${gw.config.cookieName}=;`)), 'the session cookie is not cleared');
  const post = await send(`${gw.url}/app`, { method: 'POST', headers: withSession(gw, cookie, { 'content-type': 'text/plain' }), body: 'x' });
  t.equal(post.status, 503);
  const verify = await send(`${gw.url}/_auth/verify`, { headers: withSession(gw, cookie) });
  t.equal(verify.status, 503, 'forward-auth answers 503 too');
  const session = await send(`${gw.url}/_auth/session`, { headers: withSession(gw, cookie) });
  t.equal(session.status, 503, '/_auth/session does not claim "not signed in"');
  const signIn = await loginJson('correct horse');
  t.equal(signIn.status, 503, `a login while Redis is down answers 503: ${signIn.body}`);
  t.equal(upstream.received.length, forwarded, 'nothing was forwarded to the upstream');
  const during = await scrape();
  t.ok(metric(during, 'gateway_store_errors_total', { store: 'redis' }) > metric(before, 'gateway_store_errors_total', { store: 'redis' }), 'redis errors counted');
  t.equal(metric(during, 'gateway_logins_total', { outcome: 'error' }) - metric(before, 'gateway_logins_total', { outcome: 'error' }), 1, 'the login counted as an error');

  await redis.start();
  restarted = true;
  const ready = await until('readyz 200 after Redis returns', readyz, (r) => r.status === 200);
  t.match(ready.json(), { status: 'ready', redis: 'up', postgres: 'up' });
  const again = await send(`${gw.url}/app`, { headers: withSession(gw, cookie) });
  t.equal(again.status, 200, `the previously valid session works again without a gateway restart: ${again.body}`);
  t.equal(upstream.received.length, forwarded + 1, 'and is forwarded');
  const fresh = await login(gw, 'alice', 'correct horse');
  t.equal((await send(`${gw.url}/app`, { headers: withSession(gw, fresh) })).status, 200, 'a new login works after recovery');
});
