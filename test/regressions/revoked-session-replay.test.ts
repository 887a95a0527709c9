// Attack: replay a session cookie after it was ended — copied earlier from a shared machine, a
// proxy log or malware — against any replica, in particular one that still holds the session in
// its in-process cache.
// Defence: src/session/manager.ts + src/session/redis-store.ts: logout and `sessions revoke` delete
// the Redis key and publish the id hash on `<prefix>invalidate`, so every replica drops its cached
// copy; a replica that cannot hear invalidations does not trust its cache.
import t from 'tap';
import { ensureBuilt, runCli } from '../helpers/cli.js';
import { login, TEST_SECRET, withSession, type TestGateway } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import { apiGet, sleep, testBed } from './setup.js';

type Assert = Pick<typeof t, 'equal'>;
await ensureBuilt();
const bed = await testBed(t, [
  { username: 'alice', password: 'alice-Pw-0012' },
  { username: 'bob', password: 'bob-Pw-0012' },
]);
const a = await bed.gateway();
const b = await bed.gateway();
const env = { REDIS_URL: bed.redis.url, DATABASE_URL: bed.pg.url, GATEWAY_REDIS_PREFIX: bed.prefix, GATEWAY_SESSION_SECRET: TEST_SECRET };

/** Replicas learn of a revocation over pub/sub: allow it a moment to arrive, then insist. */
async function refusedBy(gateway: TestGateway, cookie: string): Promise<number> {
  let status = 0;
  for (let i = 0; i < 20 && status !== 401; i++) {
    status = (await apiGet(gateway, '/data', cookie)).status;
    if (status !== 401) await sleep(50);
  }
  return status;
}

/** Every way a stolen cookie could be used, on one replica. */
async function everyUse(t: Assert, gateway: TestGateway, cookie: string, label: string): Promise<void> {
  t.equal(await refusedBy(gateway, cookie), 401, `${label}: the app path is refused`);
  t.equal((await send(`${gateway.url}/_auth/session`, { headers: withSession(gateway, cookie) })).status, 401, `${label}: /_auth/session`);
  t.equal((await send(`${gateway.url}/_auth/verify`, { headers: withSession(gateway, cookie) })).status, 401, `${label}: /_auth/verify`);
  const nav = await send(`${gateway.url}/data`, { headers: withSession(gateway, cookie, { accept: 'text/html' }) });
  t.equal(nav.status, 302, `${label}: a browser is sent to log in`);
}

t.test('after logout, the old cookie is refused by every replica, warm cache or not', async (t) => {
  const cookie = await login(a, 'alice', 'alice-Pw-0012');
  t.equal((await apiGet(a, '/data', cookie)).status, 200, 'works on A');
  t.equal((await apiGet(b, '/data', cookie)).status, 200, 'works on B (now cached there)');
  const out = await send(`${a.url}/_auth/logout`, { method: 'POST', headers: withSession(a, cookie) });
  t.equal(out.status, 303);
  const before = bed.upstream.received.length;
  await everyUse(t, a, cookie, 'A');
  await everyUse(t, b, cookie, 'B');
  await everyUse(t, await bed.gateway(), cookie, 'a replica started later');
  t.equal(bed.upstream.received.length, before, 'the app received nothing with the dead cookie');
});

t.test('after `session-gateway sessions revoke`, every session of the user is refused everywhere', async (t) => {
  const first = await login(a, 'bob', 'bob-Pw-0012');
  const second = await login(b, 'bob', 'bob-Pw-0012');
  const alice = await login(a, 'alice', 'alice-Pw-0012');
  for (const g of [a, b]) for (const c of [first, second]) t.equal((await apiGet(g, '/data', c)).status, 200, 'warm on every replica');

  const revoke = await runCli(['sessions', 'revoke', 'bob'], { env });
  t.equal(revoke.code, 0, revoke.stderr);
  t.same(revoke.out, ['2'], 'two sessions revoked');
  for (const [label, g] of [['A', a], ['B', b]] as const) {
    await everyUse(t, g, first, `${label}, first session`);
    await everyUse(t, g, second, `${label}, second session`);
  }
  t.equal((await apiGet(b, '/data', alice)).status, 200, "another user's session is untouched");
  t.ok(await login(a, 'bob', 'bob-Pw-0012'), 'bob can sign in again with a new session');
});
