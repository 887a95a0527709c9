// Redis Cluster as managed services run it (SPEC section 2): TLS only, a password on every node,
// three masters each with a replica, real redis-server processes. Two gateways sign users in and
// pass invalidations; then a master is lost (SIGKILL, no goodbye) while traffic runs and its
// replica is promoted. Nothing reaches the app without a valid session, no valid session is lost,
// and the invalidation subscriber follows (it is seen receiving again, not only assumed).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { login, seedUsers, startTestGateway, uniquePrefix, withSession, type TestGateway } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import { scrapeMetric } from '../helpers/metrics.js';
import { startCluster } from '../helpers/redis-topologies.js';
import { askRedisOnce, services, sleep } from '../helpers/services.js';
import { startEchoUpstream } from '../helpers/upstream.js';

const REDIS_PASSWORD = 'Cluster-Pass-4e1d8b';
const USERS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'];
const password = (user: string) => `${user}-Pw-Right`;

const { pg } = await services(t);
await seedUsers(t, pg.url, USERS.map((username) => ({ username, password: password(username) })));
const upstream = await startEchoUpstream();
t.teardown(() => upstream.close());

const dir = mkdtempSync(join(tmpdir(), 'sgw-cluster-tls-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const certFile = join(dir, 'cert.pem');
const keyFile = join(dir, 'key.pem');
// A private CA, as managed Redis has: self-signed, for 127.0.0.1 (the nodes' announced address).
execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=redis-cluster', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });

const cluster = await startCluster(t, { password: REDIS_PASSWORD, tls: { certFile, keyFile, caFile: certFile }, replicas: 1 });
const prefix = uniquePrefix();
const channel = `${prefix}invalidate`;
const env = {
  REDIS_CLUSTER_NODES: cluster.nodes,
  REDIS_PASSWORD,
  REDIS_TLS: 'true',
  REDIS_CA_FILE: certFile,
  DATABASE_URL: pg.url,
  GATEWAY_UPSTREAM: upstream.url,
  GATEWAY_REDIS_PREFIX: prefix,
  GATEWAY_ACCESS_LOG: 'false',
};
const a = await startTestGateway(t, env);
const b = await startTestGateway(t, env);
const gateways: Array<[string, TestGateway]> = [['a', a], ['b', b]];

const api = (gw: TestGateway, cookie: string | null, path = '/api') =>
  send(`${gw.url}${path}`, { headers: cookie ? withSession(gw, cookie, { accept: 'application/json' }) : { accept: 'application/json' } });
const logout = (gw: TestGateway, cookie: string) => send(`${gw.url}${gw.config.authPrefix}/logout`, { method: 'POST', headers: withSession(gw, cookie) });
const invalidations = (gw: TestGateway, kind: 'session' | 'reset') => scrapeMetric(gw.adminUrl, 'gateway_session_cache_invalidations_total', { kind });

/** Waits until `gw` has counted more than `before` invalidations of `kind` (it heard one on pub/sub). */
async function heard(gw: TestGateway, kind: 'session' | 'reset', before: number, limitMs = 5_000): Promise<boolean> {
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    if ((await invalidations(gw, kind)) > before) return true;
    await sleep(100);
  }
  return false;
}

/** Sessions whose keys live on the node at `port` (each node holds only its own slots' keys). */
async function keysOn(port: number): Promise<string[]> {
  const keys = await cluster.ask(port, 'KEYS', `${prefix}s:*`);
  return Array.isArray(keys) ? (keys as string[]) : [];
}

t.test('TLS only and a password on every node', async (t) => {
  for (const port of cluster.allPorts) {
    t.equal(await askRedisOnce({ port }, 'PING'), null, `node ${port} answers no plain-text client`);
    t.equal(await cluster.ask(port, 'PING'), 'PONG', `node ${port} answers over TLS with the password`);
  }
  for (const [name, gw] of gateways) {
    const ready = await send(`${gw.adminUrl}/readyz`);
    t.equal(ready.status, 200, `${name} ready: ${ready.body}`);
  }
  const cookie = await login(a, 'alice', password('alice'));
  for (const [name, gw] of gateways) {
    const res = await api(gw, cookie);
    t.equal(res.status, 200, `${name} forwards`);
    t.equal(res.json<{ headers: Record<string, string> }>().headers['x-forwarded-user'], 'alice');
  }
  // The invalidation subscriber is a connection of its own: it must speak TLS and sign in too.
  const before = await invalidations(b, 'session');
  t.equal((await logout(a, cookie)).status, 303);
  t.ok(await heard(b, 'session', before), 'B heard the logout over pub/sub');
  t.equal((await api(b, cookie)).status, 401, 'B refuses the logged-out session');
  const logs = [...a.logs, ...b.logs].join('\n');
  t.notOk(logs.includes(REDIS_PASSWORD), 'the password is never logged');
});

t.test('a master lost while traffic runs: its replica takes over, nothing unauthenticated gets through, no valid session is lost', async (t) => {
  // Two sessions per user, one signed in on each gateway, so the keys spread over all masters.
  const sessions: Array<{ user: string; cookie: string }> = [];
  for (const user of USERS) for (const [, gw] of gateways) sessions.push({ user, cookie: await login(gw, user, password(user)) });
  const ended = await login(a, 'alice', password('alice'));
  t.equal((await logout(a, ended)).status, 303);

  // The master to lose: one holding a gateway's invalidation subscriber if any does (so the
  // subscriber must move), and session keys (so they must survive on the replica).
  const subscribersOn = async (port: number) => {
    const reply = await cluster.ask(port, 'PUBSUB', 'NUMSUB', channel);
    return Array.isArray(reply) ? Number(reply[1]) : 0;
  };
  const candidates = [];
  for (const port of cluster.ports) candidates.push({ port, subscribers: await subscribersOn(port), keys: (await keysOn(port)).length });
  t.comment(`masters: ${JSON.stringify(candidates)}`);
  const victim = [...candidates].sort((x, y) => y.subscribers - x.subscribers || y.keys - x.keys)[0];
  if (!victim) throw new Error('no master');
  t.ok(victim.keys > 0, `the master to lose (port ${victim.port}) holds ${victim.keys} sessions`);
  t.ok(victim.subscribers > 0, `and ${victim.subscribers} gateway invalidation subscriber(s)`);
  // Replication is asynchronous: what was written a moment ago must have reached the replica.
  for (let i = 0; i < 50; i++) {
    const info = String(await cluster.ask(victim.port, 'INFO', 'replication'));
    const offset = /master_repl_offset:(\d+)/.exec(info)?.[1];
    const replicaOffset = /slave0:.*offset=(\d+)/.exec(info)?.[1];
    if (offset !== undefined && offset === replicaOffset) break;
    await sleep(100);
  }
  const resetsBefore = { a: await invalidations(a, 'reset'), b: await invalidations(b, 'reset') };

  // Traffic: every valid session on both gateways, anonymous requests and a logged-out cookie.
  const forwardedBefore = upstream.received.length;
  const statuses = { valid: new Map<number, number>(), anonymous: new Map<number, number>(), ended: new Map<number, number>() };
  const count = (map: Map<number, number>, status: number) => map.set(status, (map.get(status) ?? 0) + 1);
  let running = true;
  const traffic = (async () => {
    while (running) {
      await Promise.all([
        ...sessions.flatMap(({ cookie }) => gateways.map(async ([, gw]) => count(statuses.valid, (await api(gw, cookie, '/traffic')).status))),
        ...gateways.map(async ([, gw]) => count(statuses.anonymous, (await api(gw, null, '/traffic')).status)),
        ...gateways.map(async ([, gw]) => count(statuses.ended, (await api(gw, ended, '/traffic')).status)),
      ]);
      await sleep(50);
    }
  })();

  await sleep(500);
  const killedAt = performance.now();
  await cluster.killNode(victim.port);
  const promoted = await cluster.waitForFailover(victim.port);
  const failedOverMs = performance.now() - killedAt;
  t.ok(promoted > 0, `replica ${promoted} promoted after ${Math.round(failedOverMs)} ms`);

  // Until every session is served again by both gateways.
  let recoveredMs = Infinity;
  for (const deadline = performance.now() + 30_000; performance.now() < deadline; ) {
    const results = await Promise.all(sessions.flatMap(({ cookie }) => gateways.map(async ([, gw]) => (await api(gw, cookie)).status)));
    if (results.every((s) => s === 200)) {
      recoveredMs = performance.now() - killedAt;
      break;
    }
    await sleep(200);
  }
  await sleep(1_000);
  running = false;
  await traffic;
  t.ok(recoveredMs < 30_000, `every session served again on both gateways ${Math.round(recoveredMs)} ms after the master was lost`);
  t.comment(`valid sessions: ${JSON.stringify([...statuses.valid])}; anonymous: ${JSON.stringify([...statuses.anonymous])}; logged out: ${JSON.stringify([...statuses.ended])}`);

  t.same([...statuses.valid.keys()].filter((s) => s !== 200 && s !== 503), [], 'valid sessions got 200, or 503 while their master was gone (fail closed), never 401');
  t.same([...statuses.anonymous.keys()], [401], 'anonymous requests: always 401');
  t.same([...statuses.ended.keys()].filter((s) => s !== 401 && s !== 503), [], 'the logged-out cookie: 401 (or 503), never forwarded');
  const forwarded = upstream.received.slice(forwardedBefore);
  const users = new Set(USERS);
  t.ok(forwarded.length > 0);
  t.ok(forwarded.every((echo) => users.has(String(echo.headers['x-forwarded-user']))), `all ${forwarded.length} forwarded requests carried a signed-in user`);

  for (const { user, cookie } of sessions) {
    for (const [name, gw] of gateways) {
      const res = await api(gw, cookie);
      if (res.status !== 200 || res.json<{ headers: Record<string, string> }>().headers['x-forwarded-user'] !== user) t.fail(`${user}'s session lost on ${name}: ${res.status}`);
    }
  }
  t.pass(`all ${sessions.length} sessions from before the failover still valid on both gateways`);

  // The subscriber that lived on the lost master moved: its gateway flushed its cache (it may have
  // missed invalidations) and hears them again.
  const flushed = (await invalidations(a, 'reset')) > resetsBefore.a || (await invalidations(b, 'reset')) > resetsBefore.b;
  t.ok(flushed, 'the gateway whose subscriber was cut flushed its cache once it was back');
  for (const [from, to] of [[a, b], [b, a]] as const) {
    const cookie = await login(from, 'erin', password('erin'));
    t.equal((await api(to, cookie)).status, 200, 'cached on the other gateway');
    const before = await invalidations(to, 'session');
    t.equal((await logout(from, cookie)).status, 303);
    t.ok(await heard(to, 'session', before), 'the other gateway heard the logout over pub/sub after the failover');
    t.equal((await api(to, cookie)).status, 401, 'and refuses the session');
  }
});
