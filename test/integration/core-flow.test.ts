// The vertical slice end to end: a user in PostgreSQL signs in, the session lives in Redis,
// and the app behind the gateway receives X-Forwarded-User.
import t from 'tap';
import { Redis } from 'ioredis';
import { send } from '../helpers/http.js';
import { login, seedUsers, startTestGateway, uniquePrefix, withSession } from '../helpers/gateway.js';
import { services } from '../helpers/services.js';
import { startEchoUpstream, type Echo } from '../helpers/upstream.js';

const { redis, pg } = await services(t);
await seedUsers(t, pg.url, [{ username: 'alice', password: 'correct horse', email: 'alice@example.com', groups: ['staff', 'ops'] }]);
const upstream = await startEchoUpstream();
t.teardown(() => upstream.close());
const prefix = uniquePrefix();
const env = { REDIS_URL: redis.url, DATABASE_URL: pg.url, GATEWAY_UPSTREAM: upstream.url, GATEWAY_REDIS_PREFIX: prefix };
const gw = await startTestGateway(t, env);

t.test('login → Redis session → identity headers reach the app', async (t) => {
  const cookie = await login(gw, 'alice', 'correct horse');
  const res = await send(`${gw.url}/reports?year=2026`, { headers: withSession(gw, cookie) });
  t.equal(res.status, 200);
  const echo = res.json<Echo>();
  t.equal(echo.url, '/reports?year=2026');
  t.equal(echo.headers['x-forwarded-user'], 'alice');
  t.equal(echo.headers['x-forwarded-email'], 'alice@example.com');
  t.equal(echo.headers['x-forwarded-groups'], 'staff,ops');
  t.notOk(echo.headers.cookie, 'the gateway cookie is not forwarded');
});

t.test('the session is in Redis under a hash of its id, with a TTL', async (t) => {
  const cookie = await login(gw, 'alice', 'correct horse');
  const id = cookie.slice(0, cookie.lastIndexOf('.'));
  const client = new Redis(redis.url);
  t.teardown(() => client.quit());
  const keys = await client.keys(`${prefix}s:*`);
  t.ok(keys.length > 0, 'session keys exist');
  t.notOk(keys.some((k) => k.includes(id)), 'no key contains the raw session id');
  for (const key of keys) {
    const value = (await client.get(key)) ?? '';
    t.notOk(value.includes(id), 'no value contains the raw session id');
    const ttl = await client.pttl(key);
    t.ok(ttl > 0 && ttl <= gw.config.idleTimeoutMs, `TTL ${ttl} ms is bounded by the idle timeout`);
  }
});

t.test('anonymous visitors write nothing to Redis', async (t) => {
  const client = new Redis(redis.url);
  t.teardown(() => client.quit());
  const before = (await client.keys(`${prefix}*`)).length;
  for (let i = 0; i < 5; i++) {
    await send(`${gw.url}/page${i}`, { headers: { accept: 'text/html' } });
    await send(`${gw.url}/_auth/login`);
  }
  t.equal((await client.keys(`${prefix}*`)).length, before);
});
