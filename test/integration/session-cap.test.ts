// GATEWAY_MAX_SESSIONS_PER_USER (issue 15.3) against real Redis and PostgreSQL, with two gateway
// replicas sharing them: concurrent sign-ins of one user on both replicas leave exactly the cap
// alive (standalone and Cluster), the oldest sessions are the ones ended, both replicas refuse them at once (their caches
// had them), an open WebSocket of an ended session is closed, and each ending is audited.
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import t from 'tap';
import { hashSessionId, createCookieSigner } from '../../src/session/id.js';
import { seedUsers, startTestGateway, TEST_SECRET, uniquePrefix, withSession, type TestGateway } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import { startCluster } from '../helpers/redis-topologies.js';
import { services, startRedis } from '../helpers/services.js';
import { openSocket, startWebSocketUpstream, wsUrl } from '../helpers/websocket.js';

const PASSWORD = 'correct horse battery';
const CAP = 2;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
type Asserts = Pick<typeof t, 'equal' | 'ok' | 'notOk' | 'same' | 'match' | 'teardown'>;

const { redis, pg } = await services(t);
await seedUsers(t, pg.url, [
  { username: 'alice', password: PASSWORD },
  { username: 'bob', password: PASSWORD },
]);
const app = await startWebSocketUpstream();
t.teardown(() => app.close());
const base = { DATABASE_URL: pg.url, GATEWAY_UPSTREAM: app.url };

interface SignIn {
  cookie: string;
  idHash: string;
  expiresAt: number;
}

const signer = createCookieSigner([TEST_SECRET]);
async function signIn(gateway: TestGateway, username: string): Promise<SignIn> {
  const res = await send(`${gateway.url}/_auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: PASSWORD }),
  });
  const cookie = res.cookies[gateway.config.cookieName];
  if (res.status !== 200 || !cookie) throw new Error(`sign-in failed: ${res.status} ${res.body}`);
  const id = signer.unsign(cookie)?.id;
  if (!id) throw new Error('unexpected cookie');
  return { cookie, idHash: hashSessionId(id), expiresAt: Date.parse(res.json<{ expiresAt: string }>().expiresAt) };
}

/** 200 when the replica forwards the request with this session, 401 when it refuses it. */
async function statusWith(gateway: TestGateway, cookie: string): Promise<number> {
  return (await send(`${gateway.url}/app`, { headers: withSession(gateway, cookie, { accept: 'application/json' }) })).status;
}

/** Polls for up to `ms`: an ending reaches the other replica's cache over pub/sub, within milliseconds. */
async function statusSoon(gateway: TestGateway, cookie: string, expected: number, ms = 1_000): Promise<number> {
  const deadline = Date.now() + ms;
  let status = await statusWith(gateway, cookie);
  while (status !== expected && Date.now() < deadline) {
    await sleep(10);
    status = await statusWith(gateway, cookie);
  }
  return status;
}

const capAudits = (gateway: TestGateway, user: string) =>
  gateway.logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((l) => l.audit === 'revocation' && l.reason === 'session_cap' && l.user === user);

/** Two replicas on one store, a WebSocket open on an old session, then four sign-ins at once. */
async function concurrentSignIns(t: Asserts, store: Record<string, string>): Promise<void> {
  const env = { ...base, ...store, GATEWAY_REDIS_PREFIX: uniquePrefix(), GATEWAY_MAX_SESSIONS_PER_USER: String(CAP) };
  const a = await startTestGateway(t, env);
  const b = await startTestGateway(t, env);

  const first = await signIn(a, 'alice');
  const second = await signIn(b, 'alice');
  const bobs = await signIn(a, 'bob');
  // Both replicas have both sessions in their caches: an ending must reach the caches, not only Redis.
  for (const gw of [a, b]) for (const s of [first, second]) t.equal(await statusWith(gw, s.cookie), 200, 'within the cap, both work everywhere');
  const socket = await openSocket(wsUrl(b.url, '/ws'), { headers: { ...withSession(b, first.cookie), origin: b.url } });
  t.equal(await socket.next(), 'hello');

  // Two sign-ins at once on each replica (a replica runs at most two per client address at a time).
  const concurrent = await Promise.all([signIn(a, 'alice'), signIn(b, 'alice'), signIn(a, 'alice'), signIn(b, 'alice')]);
  const all = [first, second, ...concurrent];
  const newestFirst = [...all].sort((x, y) => y.expiresAt - x.expiresAt || (y.idHash < x.idHash ? -1 : 1));
  const kept = newestFirst.slice(0, CAP);
  const ended = newestFirst.slice(CAP);

  const alive = await a.running.deps.sessions.listByUser('alice');
  t.equal(alive.length, CAP, 'exactly the cap is alive in the store');
  t.same(alive.map((s) => s.idHash).sort(), kept.map((s) => s.idHash).sort(), 'the newest sign-ins are the ones kept');
  t.ok(ended.includes(first) && ended.includes(second), 'the sessions from before are among the ended');

  for (const gw of [a, b]) {
    for (const s of kept) t.equal(await statusWith(gw, s.cookie), 200, 'a kept session works on both replicas');
    for (const s of ended) t.equal(await statusSoon(gw, s.cookie, 401), 401, 'an ended session is refused on both replicas');
  }
  t.same(await socket.closed(), { code: 1008, reason: 'session ended' }, 'the oldest session\'s WebSocket was closed');
  t.equal(await statusWith(a, bobs.cookie), 200, 'another user\'s session is untouched');

  const audits = [...capAudits(a, 'alice'), ...capAudits(b, 'alice')];
  t.equal(audits.reduce((sum, l) => sum + Number(l.sessions), 0), ended.length, 'audit lines account for every ended session');
  for (const line of audits) t.match(line, { audit: 'revocation', user: 'alice', by: 'login', reason: 'session_cap', outcome: 'success', ip: '127.0.0.1' });
  const logs = [...a.logs, ...b.logs].join('\n');
  for (const s of all) t.notOk(logs.includes(s.cookie), 'no session cookie in any log line');
}

t.test('concurrent sign-ins on two replicas: exactly the cap alive, the oldest ended everywhere, its WebSocket closed', async (t) => {
  await concurrentSignIns(t, { REDIS_URL: redis.url });
});

t.test('the same on Redis Cluster (the script touches the index key only; sessions live on other nodes)', async (t) => {
  const cluster = await startCluster(t);
  await concurrentSignIns(t, { REDIS_CLUSTER_NODES: cluster.nodes });
});

t.test('without GATEWAY_MAX_SESSIONS_PER_USER there is no cap', async (t) => {
  const gw = await startTestGateway(t, { ...base, REDIS_URL: redis.url, GATEWAY_REDIS_PREFIX: uniquePrefix() });
  const sessions = [await signIn(gw, 'bob'), await signIn(gw, 'bob'), await signIn(gw, 'bob'), await signIn(gw, 'bob')];
  for (const s of sessions) t.equal(await statusWith(gw, s.cookie), 200);
  t.equal((await gw.running.deps.sessions.listByUser('bob')).length, 4);
  t.same(capAudits(gw, 'bob'), []);
});

t.test('a cap of 1: each sign-in ends the previous session, the new one works', async (t) => {
  const gw = await startTestGateway(t, { ...base, REDIS_URL: redis.url, GATEWAY_REDIS_PREFIX: uniquePrefix(), GATEWAY_MAX_SESSIONS_PER_USER: '1' });
  const older = await signIn(gw, 'bob');
  const newer = await signIn(gw, 'bob');
  t.equal(await statusWith(gw, older.cookie), 401);
  t.equal(await statusWith(gw, newer.cookie), 200);
  t.match(capAudits(gw, 'bob'), [{ sessions: 1 }]);
});

t.test('with exactly the least-privilege ACL line of docs/sessions.md (the script runs under it)', async (t) => {
  const own = await startRedis();
  t.teardown(() => own.stop());
  const line = /^user gateway on >\S+ (.+)$/m.exec(readFileSync(new URL('../../docs/sessions.md', import.meta.url), 'utf8'));
  t.ok(line, 'docs/sessions.md has the ACL line');
  const PW = 'Acl-Cap-Pw-3b7e';
  const admin = new Redis(own.url);
  t.teardown(() => admin.quit());
  await admin.call('ACL', 'SETUSER', 'gateway', 'reset', 'on', `>${PW}`, ...(line?.[1] ?? '').split(' '));
  await admin.call('ACL', 'LOG', 'RESET');
  // The line grants keys and channels under the default prefix `sgw:` only.
  const gw = await startTestGateway(t, { ...base, REDIS_URL: own.url, REDIS_USERNAME: 'gateway', REDIS_PASSWORD: PW, GATEWAY_MAX_SESSIONS_PER_USER: '1' });
  const older = await signIn(gw, 'bob');
  t.equal(await statusWith(gw, older.cookie), 200);
  const newer = await signIn(gw, 'bob');
  t.equal(await statusWith(gw, older.cookie), 401, 'the cap ended the older session');
  t.equal(await statusWith(gw, newer.cookie), 200);
  const denied = ((await admin.call('ACL', 'LOG')) as unknown[][] | null) ?? [];
  // CLIENT SETINFO (ioredis, Redis 7.2+) is optional and its refusal ignored (docs/sessions.md).
  const relevant = denied.map((entry) => String(entry[entry.indexOf('object') + 1])).filter((object) => !object.startsWith('client'));
  t.same(relevant, [], 'Redis refused nothing the cap needs');
});
