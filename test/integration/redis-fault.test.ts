// Fault injection (SPEC sections 5 and 7): Redis goes away under steady authenticated load and
// comes back. A Redis outage must fail closed (503), never log anyone out (no 302/401), never
// forward a request without identity, and the gateway must recover by itself. With
// GATEWAY_STALE_SESSION_GRACE, recently confirmed sessions ride out the outage from the local
// cache, while revoked and never-seen sessions do not.
import { Redis } from 'ioredis';
import t from 'tap';
import { login, seedUsers, startTestGateway, uniquePrefix, withSession, type TestGateway } from '../helpers/gateway.js';
import { send, type Response } from '../helpers/http.js';
import { services } from '../helpers/services.js';
import { startEchoUpstream, type Echo } from '../helpers/upstream.js';

const { redis, pg } = await services(t);
const USERS = ['alice', 'bob', 'carol', 'dave', 'erin'] as const;
const PASSWORD = 'correct horse battery';
const seedPool = await seedUsers(
  t,
  pg.url,
  USERS.map((username) => ({ username, password: PASSWORD })),
);
seedPool.on('error', () => undefined);
const upstream = await startEchoUpstream();
t.teardown(() => upstream.close());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `accept` holds (a dependency coming or going is not instant). */
async function until(what: string, probe: () => Promise<Response>, accept: (res: Response) => boolean, timeoutMs = 15_000): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  let last: Response | undefined;
  while (Date.now() < deadline) {
    last = await probe();
    if (accept(last)) return last;
    await sleep(50);
  }
  throw new Error(`${what}: not reached in ${timeoutMs} ms (last: ${last?.status} ${last?.body})`);
}

/** SAVE so the restarted disposable redis-server loads the sessions back (like RDB/AOF would), then stop it. */
async function snapshotAndStop(t: { teardown(fn: () => unknown): void }): Promise<() => Promise<void>> {
  const client = new Redis(redis.url, { lazyConnect: true });
  await client.connect();
  const saved = await client.save();
  client.disconnect();
  if (saved !== 'OK') throw new Error(`SAVE answered ${saved}`);
  await redis.stop();
  let restarted = false;
  t.teardown(async () => {
    if (!restarted) await redis.start();
  });
  return async () => {
    await redis.start();
    restarted = true;
  };
}

/** Every request the app received for `/<tag>/<user>/...` carried exactly that user. */
function misattributed(since: number, tag: string): string[] {
  return upstream.received
    .slice(since)
    .filter((echo) => echo.url.startsWith(`/${tag}/`))
    .filter((echo) => {
      const expected = echo.url.split('/')[2];
      return !expected || echo.headers['x-forwarded-user'] !== expected;
    })
    .map((echo) => `${echo.url} as ${String(echo.headers['x-forwarded-user'])}`);
}

t.test('Redis outage under load: only 200 and 503, nobody logged out, recovery by itself', async (t) => {
  const gw = await startTestGateway(t, { REDIS_URL: redis.url, DATABASE_URL: pg.url, GATEWAY_UPSTREAM: upstream.url, GATEWAY_REDIS_PREFIX: uniquePrefix() });
  const loaders = ['alice', 'bob', 'carol'];
  const cookies = new Map<string, string>();
  for (const user of loaders) cookies.set(user, await login(gw, user, PASSWORD));
  const since = upstream.received.length;

  const statuses = new Map<string, number>();
  const problems: string[] = [];
  let running = true;
  const loop = async (user: string, html: boolean) => {
    const cookie = cookies.get(user) as string;
    for (let i = 0; running; i++) {
      const path = `/load/${user}/${i}`;
      const headers = withSession(gw, cookie, html ? { accept: 'text/html' } : {});
      try {
        const res = await send(`${gw.url}${path}`, { headers });
        statuses.set(String(res.status), (statuses.get(String(res.status)) ?? 0) + 1);
        if (res.status === 200 && res.json<Echo>().headers['x-forwarded-user'] !== user) problems.push(`${path}: 200 for the wrong identity`);
        if (res.status === 503 && res.headers['set-cookie']?.some((c) => c.startsWith(`${gw.config.cookieName}=;`))) problems.push(`${path}: 503 cleared the cookie`);
      } catch (err) {
        problems.push(`${path}: ${(err as Error).message}`);
      }
      await sleep(5);
    }
  };
  // Browser-like (accept: text/html) and API loops: neither may be bounced to the login page.
  const loops = loaders.flatMap((user) => [loop(user, true), loop(user, false)]);

  await sleep(1_000);
  const restart = await snapshotAndStop(t);
  await sleep(2_000);
  await restart();
  // The gateway reconnects by itself: every session works again within a few seconds.
  for (const user of loaders) {
    await until(`${user} served again after Redis returned`, () => send(`${gw.url}/recovered/${user}`, { headers: withSession(gw, cookies.get(user) as string) }), (r) => r.status === 200, 10_000);
  }
  await sleep(500);
  running = false;
  await Promise.all(loops);

  const seen = Object.fromEntries(statuses);
  t.same(problems, [], 'no wrong identity, no cleared cookie, no connection errors');
  t.same(
    Object.keys(seen).sort(),
    ['200', '503'],
    `only 200 and 503 were answered, both seen (${JSON.stringify(seen)})`,
  );
  t.same(misattributed(since, 'load'), [], 'the app never received a request without or with the wrong X-Forwarded-User');
  t.notOk(
    upstream.received.slice(since).some((echo) => !echo.headers['x-forwarded-user']),
    'nothing reached the app without identity',
  );
  for (const user of loaders) {
    const res = await send(`${gw.url}/after/${user}`, { headers: withSession(gw, cookies.get(user) as string, { accept: 'text/html' }) });
    t.equal(res.status, 200, `${user}'s session works again`);
    if (res.status === 200) t.equal(res.json<Echo>().headers['x-forwarded-user'], user);
  }
  t.equal((await send(`${gw.adminUrl}/readyz`)).status, 200, 'ready again');
  await gw.stop();
});

t.test('with GATEWAY_STALE_SESSION_GRACE: cached sessions ride out the outage, revoked and unseen ones do not', async (t) => {
  const prefix = uniquePrefix();
  const env = { REDIS_URL: redis.url, DATABASE_URL: pg.url, GATEWAY_UPSTREAM: upstream.url, GATEWAY_REDIS_PREFIX: prefix };
  const gw: TestGateway = await startTestGateway(t, { ...env, GATEWAY_STALE_SESSION_GRACE: '30s' });
  // A second replica: sessions it issues were never seen by `gw`, and it can revoke elsewhere.
  const other = await startTestGateway(t, env);
  const get = (g: TestGateway, path: string, cookie: string, extra: Record<string, string> = {}) => send(`${g.url}${path}`, { headers: withSession(g, cookie, extra) });

  const alice = await login(gw, 'alice', PASSWORD);
  const bob = await login(gw, 'bob', PASSWORD);
  const dave = await login(gw, 'dave', PASSWORD); // logged out on gw itself
  const erin = await login(gw, 'erin', PASSWORD); // revoked through the other replica
  const carol = await login(other, 'carol', PASSWORD); // never presented to gw before the outage
  for (const [user, cookie] of [['alice', alice], ['bob', bob], ['dave', dave], ['erin', erin]] as const) {
    t.equal((await get(gw, `/before/${user}`, cookie)).status, 200, `${user} validated on gw before the outage`);
  }
  t.equal((await send(`${gw.url}/_auth/logout`, { method: 'POST', headers: withSession(gw, dave) })).status, 303, 'dave logs out');
  t.equal((await get(gw, '/before/dave', dave)).status, 401, 'dave is refused');
  t.equal((await send(`${other.url}/_auth/logout`, { method: 'POST', headers: withSession(other, erin) })).status, 303, 'erin logs out on the other replica');
  await until('gw refuses erin after the invalidation', () => get(gw, '/before/erin', erin), (r) => r.status === 401, 2_000);
  // Re-confirm the sessions that must survive right before the outage.
  for (const [user, cookie] of [['alice', alice], ['bob', bob]] as const) t.equal((await get(gw, `/before/${user}`, cookie)).status, 200);

  const since = upstream.received.length;
  const restart = await snapshotAndStop(t);
  await until('gw notices the outage', () => send(`${gw.adminUrl}/readyz`), (r) => r.status === 503, 10_000);

  const during = new Map<string, Map<number, number>>();
  const note = (user: string, status: number) => {
    const byStatus = during.get(user) ?? new Map<number, number>();
    byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
    during.set(user, byStatus);
  };
  const stopAt = Date.now() + 2_000;
  let round = 0;
  while (Date.now() < stopAt) {
    for (const [user, cookie] of [['alice', alice], ['bob', bob], ['dave', dave], ['erin', erin], ['carol', carol]] as const) {
      const res = await get(gw, `/outage/${user}/${round}`, cookie, round % 2 ? { accept: 'text/html' } : {});
      note(user, res.status);
      if (res.status === 200) t.equal(res.json<Echo>().headers['x-forwarded-user'], user, `${user} forwarded as ${user}`);
    }
    round++;
    await sleep(50);
  }
  const summary = (user: string) => Object.fromEntries(during.get(user) ?? []);
  t.same(summary('alice'), { 200: round }, 'alice (confirmed just before) keeps getting 200 from the cache');
  t.same(summary('bob'), { 200: round }, 'bob too');
  // Refused as signed out: 401 for API requests (even rounds), 302 to the login page for navigations.
  const refused = { 401: Math.ceil(round / 2), 302: Math.floor(round / 2) };
  t.same(summary('dave'), refused, 'dave (logged out before the outage) stays refused');
  t.same(summary('erin'), refused, 'erin (revoked on another replica) stays refused');
  t.same(summary('carol'), { 503: round }, 'a cookie gw never saw gets 503 (fail closed, not 401)');
  const forwardedUsers = upstream.received.slice(since).map((echo) => echo.headers['x-forwarded-user']);
  t.same([...new Set(forwardedUsers)].sort(), ['alice', 'bob'], 'only the cached sessions reached the app');
  t.same(misattributed(since, 'outage'), [], 'each with its own identity');

  await restart();
  await until('ready again', () => send(`${gw.adminUrl}/readyz`), (r) => r.status === 200, 10_000);
  await until('carol works on gw after recovery', () => get(gw, '/after/carol', carol), (r) => r.status === 200, 10_000);
  t.equal((await get(gw, '/after/alice', alice)).status, 200, 'alice still works after recovery');
  t.equal((await get(gw, '/after/dave', dave)).status, 401, 'dave is still logged out after recovery');
  t.equal((await get(gw, '/after/erin', erin)).status, 401, 'erin is still revoked after recovery');
});
