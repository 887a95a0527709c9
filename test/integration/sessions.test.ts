// Session lifecycle across real Redis and several gateway instances: shared sessions, restarts,
// idle and max timeouts, logout everywhere, the local cache and its invalidation.
import t from 'tap';
import { Redis } from 'ioredis';
import { send } from '../helpers/http.js';
import { login, seedUsers, startTestGateway, uniquePrefix, withSession, type TestGateway } from '../helpers/gateway.js';
import { services } from '../helpers/services.js';
import { startEchoUpstream } from '../helpers/upstream.js';

const { redis, pg } = await services(t);
await seedUsers(t, pg.url, [{ username: 'bob', password: 'pw-bob-1234' }]);
const upstream = await startEchoUpstream();
t.teardown(() => upstream.close());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const baseEnv = (prefix: string) => ({ REDIS_URL: redis.url, DATABASE_URL: pg.url, GATEWAY_UPSTREAM: upstream.url, GATEWAY_REDIS_PREFIX: prefix, GATEWAY_ACCESS_LOG: 'false' });
const api = (gw: TestGateway, cookie: string, path = '/api') => send(`${gw.url}${path}`, { headers: withSession(gw, cookie, { accept: 'application/json' }) });

async function commandCalls(client: Redis, command: string): Promise<number> {
  const info = await client.info('commandstats');
  const match = new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info);
  return Number(match?.[1] ?? 0);
}

t.test('two gateways share sessions; a restarted gateway keeps them', async (t) => {
  const prefix = uniquePrefix();
  const a = await startTestGateway(t, baseEnv(prefix));
  const b = await startTestGateway(t, baseEnv(prefix));
  const cookie = await login(a, 'bob', 'pw-bob-1234');
  t.equal((await api(a, cookie)).status, 200, 'works on the replica that logged in');
  t.equal((await api(b, cookie)).status, 200, 'works on another replica');
  await a.stop();
  const c = await startTestGateway(t, baseEnv(prefix));
  t.equal((await api(c, cookie)).status, 200, 'works on a replica started after the first one stopped');
});

t.test('logout on one replica is refused on another whose cache was warm', async (t) => {
  const prefix = uniquePrefix();
  const a = await startTestGateway(t, baseEnv(prefix));
  const b = await startTestGateway(t, baseEnv(prefix));
  const cookie = await login(a, 'bob', 'pw-bob-1234');
  t.equal((await api(b, cookie)).status, 200, 'B has validated (and cached) the session');
  const out = await send(`${a.url}/_auth/logout`, { method: 'POST', headers: withSession(a, cookie) });
  t.equal(out.status, 303);
  t.match(out.setCookie('sgw_session') ?? '', /Max-Age=0|Expires=Thu, 01 Jan 1970/, 'the cookie is expired');
  let status = 0;
  for (let i = 0; i < 20 && status !== 401; i++) {
    status = (await api(b, cookie)).status;
    if (status !== 401) await sleep(50);
  }
  t.equal(status, 401, 'B refuses the session within a second');
  t.equal((await api(a, cookie)).status, 401, 'A refuses it too');
});

t.test('idle timeout is rolling; max lifetime is absolute', async (t) => {
  const prefix = uniquePrefix();
  const gw = await startTestGateway(t, {
    ...baseEnv(prefix),
    GATEWAY_SESSION_IDLE_TIMEOUT: '1500ms',
    GATEWAY_SESSION_TOUCH_INTERVAL: '100ms',
    GATEWAY_SESSION_MAX_LIFETIME: '4s',
  });
  const idle = await login(gw, 'bob', 'pw-bob-1234');
  await sleep(2_000);
  t.equal((await api(gw, idle)).status, 401, 'a session unused for longer than the idle timeout has ended');

  const active = await login(gw, 'bob', 'pw-bob-1234');
  const started = Date.now();
  // Activity every ~500 ms keeps it alive well past one idle timeout…
  while (Date.now() - started < 3_000) {
    t.equal((await api(gw, active)).status, 200, `still valid after ${Date.now() - started} ms of activity`);
    await sleep(500);
  }
  // …but never past the max lifetime.
  await sleep(Math.max(0, 4_200 - (Date.now() - started)));
  t.equal((await api(gw, active)).status, 401, 'refused after the max lifetime despite activity');
});

t.test('a hot session is served with no Redis command; a burst of cold lookups makes one GET', async (t) => {
  const prefix = uniquePrefix();
  const a = await startTestGateway(t, baseEnv(prefix));
  const client = new Redis(redis.url);
  t.teardown(() => client.quit());
  const cookie = await login(a, 'bob', 'pw-bob-1234');
  t.equal((await api(a, cookie)).status, 200);
  const before = await client.info('commandstats');
  for (let i = 0; i < 50; i++) t.equal((await api(a, cookie)).status, 200);
  const after = await client.info('commandstats');
  const total = (info: string) => [...info.matchAll(/cmdstat_(\w+):calls=(\d+)/g)].filter(([, name]) => name !== 'info').reduce((sum, [, , n]) => sum + Number(n), 0);
  t.equal(total(after) - total(before), 0, '50 requests on a hot session sent no command to Redis');

  const cold = await startTestGateway(t, baseEnv(prefix));
  const getsBefore = await commandCalls(client, 'get');
  const responses = await Promise.all(Array.from({ length: 100 }, () => api(cold, cookie)));
  t.ok(responses.every((r) => r.status === 200), 'all 100 concurrent requests succeed');
  t.equal((await commandCalls(client, 'get')) - getsBefore, 1, 'one Redis GET for 100 concurrent cold lookups');
});

t.test('when the invalidation channel drops, the cache is flushed once Redis answers', async (t) => {
  const prefix = uniquePrefix();
  const gw = await startTestGateway(t, baseEnv(prefix));
  const client = new Redis(redis.url);
  t.teardown(() => client.quit());
  const cookie = await login(gw, 'bob', 'pw-bob-1234');
  t.equal((await api(gw, cookie)).status, 200);
  t.ok(gw.running.deps.sessions.cacheSize > 0, 'the session is cached');
  // Delete the session behind the gateway's back, then cut its subscription: a revocation it
  // would have missed. After the reconnect it must not trust the cache any more.
  const keys = await client.keys(`${prefix}s:*`);
  await client.del(...keys);
  await client.client('KILL', 'TYPE', 'pubsub');
  let status = 200;
  for (let i = 0; i < 40 && status !== 401; i++) {
    await sleep(100);
    status = (await api(gw, cookie)).status;
  }
  t.equal(status, 401, 'the session deleted while the channel was down is refused');
  // The 401 may come while the subscription is still down (the cache is bypassed then); the
  // flush itself happens once it is back.
  let flushed = false;
  for (let i = 0; i < 50 && !flushed; i++) {
    flushed = /gateway_session_cache_invalidations_total\{kind="reset"\} [1-9]/.test((await send(`${gw.adminUrl}/metrics`)).body);
    if (!flushed) await sleep(100);
  }
  t.ok(flushed, 'the cache is flushed once the channel is back, and the flush is counted');
  t.equal((await api(gw, cookie)).status, 401, 'still refused after the flush');
});

t.test('secret rotation: a cookie signed with a retired secret still works and is re-signed', async (t) => {
  const prefix = uniquePrefix();
  const oldSecret = 'old-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
  const newSecret = 'new-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
  const before = await startTestGateway(t, { ...baseEnv(prefix), GATEWAY_SESSION_SECRET: oldSecret });
  const cookie = await login(before, 'bob', 'pw-bob-1234');
  const after = await startTestGateway(t, { ...baseEnv(prefix), GATEWAY_SESSION_SECRET: `${newSecret},${oldSecret}` });
  const res = await api(after, cookie);
  t.equal(res.status, 200, 'old cookie accepted after rotation');
  const renewed = res.cookies.sgw_session;
  t.ok(renewed && renewed !== cookie, 'a re-signed cookie is set');
  t.equal((await api(after, renewed ?? '')).status, 200, 'the re-signed cookie works');
  const onlyNew = await startTestGateway(t, { ...baseEnv(prefix), GATEWAY_SESSION_SECRET: newSecret });
  t.equal((await api(onlyNew, cookie)).status, 401, 'once the old secret is dropped, old cookies are refused');
  t.equal((await api(onlyNew, renewed ?? '')).status, 200, 'the re-signed cookie survives dropping the old secret');
});
