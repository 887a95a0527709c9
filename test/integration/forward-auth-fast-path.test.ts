// The common forward-auth call is answered before fastify's router (src/forward-auth/fast-path.ts).
// What a proxy and an operator see must not tell the two paths apart: the same 204, each request
// counted once in every metric, and whatever the fast path does not answer itself (no session, a
// refusal, an error) answered by the route exactly as before, without validating twice.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { OutgoingHttpHeaders } from 'node:http';
import { callVerify } from '../helpers/forward-auth.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { login, seedUsers, startTestGateway, uniquePrefix, withSession, type TestGateway } from '../helpers/gateway.js';
import { scrapeMetric } from '../helpers/metrics.js';
import { services } from '../helpers/services.js';

const { redis, pg } = await services(t);
await seedUsers(t, pg.url, [
  { username: 'ada', password: 'ada-fast-password', email: 'ada@example.com', groups: ['admins'] },
  { username: 'bob', password: 'bob-fast-password' },
]);
const dir = mkdtempSync(join(tmpdir(), 'sgw-fast-'));
writeFileSync(join(dir, 'rules.yaml'), '- path: /admin\n  policy: { groups: [admins] }\n');
const gw = await startTestGateway(t, {
  REDIS_URL: redis.url,
  DATABASE_URL: pg.url,
  GATEWAY_REDIS_PREFIX: uniquePrefix(),
  GATEWAY_TRUSTED_PROXIES: '127.0.0.1',
  GATEWAY_ACCESS_RULES: join(dir, 'rules.yaml'),
});
const ada = withSession(gw, await login(gw, 'ada', 'ada-fast-password'));
const bob = withSession(gw, await login(gw, 'bob', 'bob-fast-password'));

const verify = (target: TestGateway, headers: OutgoingHttpHeaders) => callVerify(target, headers);

const metric = (name: string, labels: Record<string, string> = {}) => scrapeMetric(gw.adminUrl, name, labels);

async function counters() {
  return {
    ok: await metric('gateway_request_duration_seconds_count', { method: 'GET', status_class: '2xx' }),
    refused: await metric('gateway_request_duration_seconds_count', { method: 'GET', status_class: '4xx' }),
    valid: await metric('gateway_session_validations_total', { outcome: 'valid' }),
    invalid: await metric('gateway_session_validations_total', { outcome: 'invalid' }),
    hits: await metric('gateway_session_cache_requests_total', { result: 'hit' }),
  };
}

t.test('allowed: each verify counted once in requests, validations and cache hits', async (t) => {
  const before = await counters();
  for (let i = 0; i < 5; i++) {
    const res = await verify(gw, { ...ada, 'x-original-uri': `/admin/page/${i}` });
    t.equal(res.status, 204);
    t.equal(res.headers['x-forwarded-user'], 'ada');
    t.equal(res.headers['x-forwarded-groups'], 'admins');
  }
  const after = await counters();
  t.equal(after.ok - before.ok, 5, 'five 2xx in the request histogram');
  t.equal(after.valid - before.valid, 5, 'five valid validations, not ten');
  t.equal(after.hits - before.hits, 5, 'five cache hits');
});

t.test('handed over (a refused group, a forged cookie): answered by the route, validated once', async (t) => {
  const before = await counters();
  const refused = await verify(gw, { ...bob, 'x-original-uri': '/admin/page' });
  t.equal(refused.status, 403, 'bob is not in admins');
  const forged = await verify(gw, { ...withSession(gw, 'forged.cookie-value'), 'x-original-uri': '/app' });
  t.equal(forged.status, 401);
  t.match(forged.headers.location, /\/_auth\/login\?rd=%2Fapp$/, 'with the login URL, as the route answers');
  const after = await counters();
  t.equal(after.refused - before.refused, 2, 'both counted once as 4xx');
  t.equal(after.valid - before.valid, 1, "bob's session validated once");
  t.equal(after.invalid - before.invalid, 1, 'the forged cookie validated once');
  t.ok(gw.logs.some((line) => /"audit":"access_denied"/.test(line) && /"user":"bob"/.test(line)), 'the refusal is audited by the route');
});

t.test('Redis down, a session this replica has not cached: the route answers 503, as before', async (t) => {
  const shared = { REDIS_URL: redis.url, DATABASE_URL: pg.url, GATEWAY_REDIS_PREFIX: uniquePrefix(), GATEWAY_TRUSTED_PROXIES: '127.0.0.1', GATEWAY_REDIS_COMMAND_TIMEOUT: '300ms' };
  const first = await startTestGateway(t, shared);
  const second = await startTestGateway(t, shared);
  const cookie = withSession(first, await login(first, 'ada', 'ada-fast-password'));
  await redis.stop();
  try {
    const res = await verify(second, { ...cookie, 'x-original-uri': '/app' });
    t.equal(res.status, 503, 'the session store is down: refused, never a 204 or a crash');
  } finally {
    await redis.start();
  }
  // The Redis client reconnects with a backoff: poll, within a bound. The test Redis keeps nothing
  // on disk, so the session itself is gone: the answer turns from 503 to 401.
  let status = 503;
  for (const deadline = Date.now() + 15_000; Date.now() < deadline && status === 503; ) {
    status = (await verify(second, { ...cookie, 'x-original-uri': '/app' })).status;
    if (status === 503) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  t.equal(status, 401, 'answered again once Redis is back');
});
