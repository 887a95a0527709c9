// The gateway on the two other Redis deployments SPEC section 2 names: Sentinel
// (REDIS_SENTINELS + REDIS_SENTINEL_NAME) and Cluster (REDIS_CLUSTER_NODES). Real processes:
// a master, a replica and a sentinel; three cluster masters. Same behaviour as on a standalone
// Redis: logins, identity headers, invalidations between replicas over pub/sub, throttling Lua
// scripts, readiness — and, on Sentinel, recovery after a failover.
import t from 'tap';
import { Redis } from 'ioredis';
import { send } from '../helpers/http.js';
import { login, seedUsers, startTestGateway, uniquePrefix, withSession, type TestGateway } from '../helpers/gateway.js';
import { startCluster, startSentinelSetup } from '../helpers/redis-topologies.js';
import { services } from '../helpers/services.js';
import { startEchoUpstream, type Echo } from '../helpers/upstream.js';

const { pg } = await services(t);
const USERS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'].map((username) => ({
  username,
  password: `${username}-Pw-Right`,
  email: `${username}@example.com`,
  groups: ['staff'],
}));
await seedUsers(t, pg.url, USERS);
const password = (user: string) => `${user}-Pw-Right`;
const upstream = await startEchoUpstream();
t.teardown(() => upstream.close());

type Asserts = Pick<typeof t, 'equal' | 'ok' | 'notOk'>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const api = (gw: TestGateway, cookie: string | null, path = '/api') =>
  send(`${gw.url}${path}`, { headers: cookie ? withSession(gw, cookie, { accept: 'application/json' }) : { accept: 'application/json' } });
const jsonLogin = (gw: TestGateway, username: string, pw: string) =>
  send(`${gw.url}${gw.config.authPrefix}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: pw }) });

/** Polls until `gw` refuses `cookie` (401): invalidations travel over pub/sub, so allow 1 s. */
async function refusedWithinASecond(gw: TestGateway, cookie: string): Promise<number> {
  let status = 0;
  for (let i = 0; i < 20 && status !== 401; i++) {
    status = (await api(gw, cookie)).status;
    if (status !== 401) await sleep(50);
  }
  return status;
}

/** A counter from the gateway's /metrics, e.g. ('gateway_session_cache_requests_total', 'result="hit"'). */
async function counter(gw: TestGateway, name: string, labels: string): Promise<number> {
  const text = (await send(`${gw.adminUrl}/metrics`)).body;
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return Number(line?.split(' ').pop() ?? 0);
}

/**
 * `end` ends the sessions through another gateway (or the store); gateway `b`, whose cache holds
 * them and trusts it (so the refusal cannot come from a plain store read), must refuse them
 * within a second because the invalidations arrived over pub/sub.
 */
async function invalidatedAcross(t: Asserts, b: TestGateway, cookies: string[], end: () => Promise<unknown>): Promise<void> {
  const hits = () => counter(b, 'gateway_session_cache_requests_total', 'result="hit"');
  for (const cookie of cookies) t.equal((await api(b, cookie)).status, 200, 'B validates the session');
  const hitsBefore = await hits();
  for (const cookie of cookies) t.equal((await api(b, cookie)).status, 200, 'B validates it again');
  t.ok((await hits()) >= hitsBefore + cookies.length, 'B answers from its cache: its invalidation channel is live');
  const received = () => counter(b, 'gateway_session_cache_invalidations_total', 'kind="session"');
  const receivedBefore = await received();
  await end();
  for (const cookie of cookies) t.equal(await refusedWithinASecond(b, cookie), 401, 'B refuses the ended session within a second');
  t.ok((await received()) >= receivedBefore + cookies.length, 'B received the invalidations over pub/sub');
}

/** Asserts the echo app saw the request with this identity. */
async function forwardedAs(t: Asserts, gw: TestGateway, cookie: string, user: string, path: string): Promise<void> {
  const res = await api(gw, cookie, path);
  t.equal(res.status, 200, `${path} is forwarded`);
  const echo = res.json<Echo>();
  t.equal(echo.url, path);
  t.equal(echo.headers['x-forwarded-user'], user, 'the app receives X-Forwarded-User');
  t.equal(echo.headers['x-forwarded-email'], `${user}@example.com`);
  t.notOk(echo.headers.cookie, 'the gateway cookie is not forwarded');
}

t.test('Redis Sentinel', async (t) => {
  const sentinel = await startSentinelSetup(t);
  const env = {
    REDIS_SENTINELS: sentinel.sentinels,
    REDIS_SENTINEL_NAME: sentinel.name,
    DATABASE_URL: pg.url,
    GATEWAY_UPSTREAM: upstream.url,
    GATEWAY_REDIS_PREFIX: uniquePrefix(),
    GATEWAY_ACCESS_LOG: 'false',
  };
  const a = await startTestGateway(t, env);
  const b = await startTestGateway(t, env);
  t.equal(a.config.redis?.mode, 'sentinel');

  t.test('readiness', async (t) => {
    for (const gw of [a, b]) {
      const ready = await send(`${gw.adminUrl}/readyz`);
      t.equal(ready.status, 200, ready.body);
      t.match(ready.json(), { status: 'ready', redis: 'up' });
    }
  });

  t.test('the session lives on the sentinel-managed master', async (t) => {
    const cookie = await login(a, 'alice', password('alice'));
    await forwardedAs(t, a, cookie, 'alice', '/sentinel/reports?x=1');
    await forwardedAs(t, b, cookie, 'alice', '/sentinel/other-replica');
    const master = new Redis({ host: '127.0.0.1', port: sentinel.masterPort, lazyConnect: true });
    t.teardown(() => master.disconnect());
    await master.connect();
    t.ok((await master.keys(`${env.GATEWAY_REDIS_PREFIX}s:*`)).length > 0, 'session keys are on the master');
  });

  t.test('logout on one gateway is refused on the other (pub/sub through the master)', async (t) => {
    const cookie = await login(a, 'bob', password('bob'));
    await invalidatedAcross(t, b, [cookie], async () => {
      const out = await send(`${a.url}${a.config.authPrefix}/logout`, { method: 'POST', headers: withSession(a, cookie) });
      t.equal(out.status, 303);
    });
    t.equal((await api(a, cookie)).status, 401, 'A refuses it too');
  });

  t.test('failover: the master dies, the sentinel promotes the replica, the gateway recovers', async (t) => {
    const before = await login(a, 'carol', password('carol'));
    const loggedOut = await login(a, 'dave', password('dave'));
    await send(`${a.url}${a.config.authPrefix}/logout`, { method: 'POST', headers: withSession(a, loggedOut) });
    t.equal((await api(a, loggedOut)).status, 401);

    // Replication is asynchronous: make sure the replica has everything written so far.
    const master = new Redis({ host: '127.0.0.1', port: sentinel.masterPort, lazyConnect: true });
    await master.connect();
    t.equal(await master.call('WAIT', '1', '10000'), 1, 'the replica acknowledged the writes');
    master.disconnect();
    await sentinel.stopMaster();
    // Meanwhile nothing without a valid session reaches the app: refused (401) or 503, never forwarded.
    const marker = '/failover-probe';
    const probe = async () => {
      for (const [gw, cookie] of [
        [a, null],
        [b, null],
        [a, loggedOut],
        [b, loggedOut],
      ] as const) {
        const res = await api(gw, cookie, marker);
        t.ok([401, 503].includes(res.status), `during failover: ${res.status} (401 or 503)`);
      }
    };
    // The sentinel is polled in the background while the gateways are probed here.
    const failover: { port?: number; error?: unknown; settled: boolean } = { settled: false };
    void sentinel.waitForFailover().then(
      (port) => Object.assign(failover, { port, settled: true }),
      (error: unknown) => Object.assign(failover, { error, settled: true }),
    );
    while (!failover.settled) {
      await probe();
      await sleep(200);
    }
    if (failover.error !== undefined) throw failover.error;
    const newMaster = failover.port;
    t.equal(newMaster, sentinel.replicaPort, 'the replica is the new master');

    // The gateways reconnect by themselves (asking the sentinel again): new logins work once they have.
    let fresh: string | null = null;
    for (let i = 0; i < 150 && !fresh; i++) {
      const res = await jsonLogin(a, 'erin', password('erin'));
      t.ok([200, 503].includes(res.status), `login while reconnecting: ${res.status} (200 or 503)`);
      fresh = res.status === 200 ? (res.cookies[a.config.cookieName] ?? null) : null;
      if (!fresh) {
        await probe();
        await sleep(200);
      }
    }
    t.ok(fresh, 'a new login works after the failover');
    if (!fresh) return;
    await forwardedAs(t, a, fresh, 'erin', '/after-failover');
    let onB = 0;
    for (let i = 0; i < 150 && onB !== 200; i++) {
      onB = (await api(b, fresh, '/after-failover-b')).status;
      if (onB !== 200) await sleep(200);
    }
    t.equal(onB, 200, 'the other gateway reaches the new master too');
    await probe();
    t.notOk(
      upstream.received.some((e) => e.url.startsWith(marker)),
      'no request without a valid session was forwarded during the failover',
    );
    let ready = 0;
    for (let i = 0; i < 150 && ready !== 200; i++) {
      ready = (await send(`${a.adminUrl}/readyz`)).status;
      if (ready !== 200) await sleep(200);
    }
    t.equal(ready, 200, '/readyz is 200 again');

    // Invalidations flow again after the failover: the subscribers re-subscribed on the new master.
    let live = false;
    for (let i = 0; i < 150 && !live; i++) {
      const hits = await counter(b, 'gateway_session_cache_requests_total', 'result="hit"');
      await api(b, fresh);
      live = (await counter(b, 'gateway_session_cache_requests_total', 'result="hit"')) > hits;
      if (!live) await sleep(200);
    }
    t.ok(live, 'B trusts its cache again (its subscription is back)');
    await invalidatedAcross(t, b, [fresh], () => send(`${a.url}${a.config.authPrefix}/logout`, { method: 'POST', headers: withSession(a, fresh) }));
    t.equal((await api(a, before)).status, 200, 'a session from before the failover (replicated to the promoted replica) still works');
  });
});

t.test('Redis Cluster', async (t) => {
  const cluster = await startCluster(t);
  const prefix = uniquePrefix();
  const env = {
    REDIS_CLUSTER_NODES: cluster.nodes,
    DATABASE_URL: pg.url,
    GATEWAY_UPSTREAM: upstream.url,
    GATEWAY_REDIS_PREFIX: prefix,
    GATEWAY_ACCESS_LOG: 'false',
    GATEWAY_LOGIN_MAX_ATTEMPTS: '3',
    GATEWAY_LOGIN_WINDOW: '1m',
  };
  const a = await startTestGateway(t, env);
  const b = await startTestGateway(t, env);
  t.equal(a.config.redis?.mode, 'cluster');

  t.test('readiness', async (t) => {
    for (const gw of [a, b]) {
      const ready = await send(`${gw.adminUrl}/readyz`);
      t.equal(ready.status, 200, ready.body);
      t.match(ready.json(), { status: 'ready', redis: 'up' });
    }
  });

  t.test('login and identity headers', async (t) => {
    const cookie = await login(a, 'alice', password('alice'));
    await forwardedAs(t, a, cookie, 'alice', '/cluster/reports?year=2026');
    await forwardedAs(t, b, cookie, 'alice', '/cluster/from-b');
  });

  t.test('several users: keys spread over the cluster, listByUser, revokeUser', async (t) => {
    const cookies = new Map<string, string[]>();
    for (const { username } of USERS) {
      const mine = [];
      for (let i = 0; i < 2; i++) mine.push(await login(i === 0 ? a : b, username, password(username)));
      cookies.set(username, mine);
      for (const cookie of mine) await forwardedAs(t, b, cookie, username, `/cluster/${username}`);
    }
    // Where the keys landed: every node answers only for its own slots.
    let nodesWithKeys = 0;
    for (const port of cluster.ports) {
      const node = new Redis({ host: '127.0.0.1', port, lazyConnect: true });
      await node.connect();
      const keys = await node.keys(`${prefix}*`);
      node.disconnect();
      if (keys.length > 0) nodesWithKeys++;
    }
    t.ok(nodesWithKeys >= 2, `session keys are spread over ${nodesWithKeys} of 3 nodes`);

    const listed = await b.running.deps.sessions.listByUser('carol');
    // carol logged in twice in this test.
    t.equal(listed.length, 2, 'listByUser finds both of carol\'s sessions');
    t.ok(listed.every((s) => s.record.user === 'carol'));

    const carol = cookies.get('carol') ?? [];
    await invalidatedAcross(t, b, carol, async () => {
      t.equal(await a.running.deps.sessions.revokeUser('carol'), 2, 'revokeUser ended both sessions');
    });
    for (const cookie of carol) t.equal((await api(a, cookie)).status, 401, 'A refuses it too');
    t.same(await a.running.deps.sessions.listByUser('carol'), [], 'nothing left to list');
    const dave = cookies.get('dave')?.[0] ?? '';
    t.equal((await api(b, dave)).status, 200, 'other users keep their sessions');
  });

  t.test('logout on one gateway is refused on the other', async (t) => {
    const cookie = await login(a, 'bob', password('bob'));
    await invalidatedAcross(t, b, [cookie], async () => {
      const out = await send(`${a.url}${a.config.authPrefix}/logout`, { method: 'POST', headers: withSession(a, cookie) });
      t.equal(out.status, 303);
    });
  });

  t.test('when the invalidation channel drops, the cache is flushed once it is back', async (t) => {
    const gw = await startTestGateway(t, { ...env, GATEWAY_REDIS_PREFIX: uniquePrefix() });
    const cookie = await login(gw, 'dave', password('dave'));
    t.equal((await api(gw, cookie)).status, 200);
    t.ok(gw.running.deps.sessions.cacheSize > 0, 'the session is cached');
    const resets = () => counter(gw, 'gateway_session_cache_invalidations_total', 'kind="reset"');
    const resetsBefore = await resets();
    // Delete the session behind the gateway's back (each node holds its own slots' keys), then
    // cut every pub/sub connection: a revocation the gateway would have missed.
    const nodes = cluster.ports.map((port) => new Redis({ host: '127.0.0.1', port, lazyConnect: true }));
    t.teardown(() => nodes.forEach((n) => n.disconnect()));
    for (const node of nodes) {
      await node.connect();
      const keys = await node.keys(`${gw.config.redisPrefix}s:*`);
      if (keys.length > 0) await node.del(...keys);
    }
    for (const node of nodes) await node.client('KILL', 'TYPE', 'pubsub');
    let status = 200;
    for (let i = 0; i < 40 && status !== 401; i++) {
      await sleep(100);
      status = (await api(gw, cookie)).status;
    }
    t.equal(status, 401, 'the session deleted while the channel was down is refused');
    let flushed = false;
    for (let i = 0; i < 50 && !flushed; i++) {
      flushed = (await resets()) > resetsBefore;
      if (!flushed) await sleep(100);
    }
    t.ok(flushed, 'the cache is flushed once the channel is back, and the flush is counted');
    // Invalidations flow again on the new subscriber connection.
    const other = await login(gw, 'dave', password('dave'));
    const b2 = await startTestGateway(t, { ...env, GATEWAY_REDIS_PREFIX: gw.config.redisPrefix });
    await invalidatedAcross(t, gw, [other], () => b2.running.deps.sessions.revokeUser('dave'));
  });

  t.test('throttling (Lua scripts on the cluster): 429 after GATEWAY_LOGIN_MAX_ATTEMPTS failures', async (t) => {
    for (let i = 1; i <= 3; i++) t.equal((await jsonLogin(a, 'frank', `wrong-${i}-xyz`)).status, 401, `failure ${i}: 401`);
    const blocked = await jsonLogin(a, 'frank', password('frank'));
    t.equal(blocked.status, 429, 'the next attempt, even with the right password, is 429');
    t.ok(Number(blocked.headers['retry-after']) > 0, 'with Retry-After');
    t.notOk(blocked.cookies[a.config.cookieName], 'no session while throttled');
    t.equal((await jsonLogin(b, 'frank', password('frank'))).status, 429, 'the other gateway sees the same count');
    t.equal((await jsonLogin(b, 'erin', password('erin'))).status, 200, 'another user is not blocked');
  });
});
