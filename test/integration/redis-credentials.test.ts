// Managed Redis (SPEC section 2: REDIS_USERNAME / REDIS_PASSWORD and their _FILE forms,
// REDIS_SENTINEL_PASSWORD), against real redis-server and redis-sentinel processes started here on
// free 127.0.0.1 ports: a `requirepass` server, an ACL user holding exactly the least-privilege
// line README.md documents (read from README, so the two cannot drift) with the `default` user
// off, and a Sentinel deployment with passwords on the data nodes and on the sentinel.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Redis } from 'ioredis';
import { send } from '../helpers/http.js';
import { login, seedUsers, startTestGateway, withSession, type TestGateway } from '../helpers/gateway.js';
import { startCluster, startSentinelSetup } from '../helpers/redis-topologies.js';
import { askRedisOnce, findExecutable, freePort, onProcessExit, services, sleep } from '../helpers/services.js';
import { startEchoUpstream } from '../helpers/upstream.js';

const { pg } = await services(t);
const USERS = ['alice', 'bob', 'carol', 'dave'].map((username) => ({ username, password: `${username}-Pw-Right`, email: `${username}@example.com`, groups: ['staff'] }));
await seedUsers(t, pg.url, USERS);
const password = (user: string) => `${user}-Pw-Right`;
const upstream = await startEchoUpstream();
t.teardown(() => upstream.close());
const dir = mkdtempSync(join(tmpdir(), 'sgw-redis-cred-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

type Asserts = Pick<typeof t, 'equal' | 'notOk' | 'teardown'>;

const REDIS_PASSWORD = 'Req-Pass-7f3c9a1e';
const base = { DATABASE_URL: pg.url, GATEWAY_UPSTREAM: upstream.url, GATEWAY_ACCESS_LOG: 'false' };

const api = (gw: TestGateway, cookie: string | null) => send(`${gw.url}/api`, { headers: cookie ? withSession(gw, cookie, { accept: 'application/json' }) : { accept: 'application/json' } });
const jsonLogin = (gw: TestGateway, username: string, pw: string) =>
  send(`${gw.url}${gw.config.authPrefix}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: pw }) });
const logout = (gw: TestGateway, cookie: string) => send(`${gw.url}${gw.config.authPrefix}/logout`, { method: 'POST', headers: withSession(gw, cookie) });

/** A private redis-server with extra arguments (e.g. --requirepass), stopped by its PID. */
async function startRedisServer(t: Asserts, args: string[], readyUrl: (port: number) => string): Promise<number> {
  const bin = findExecutable('redis-server', ['/usr/bin', '/usr/sbin', '/usr/local/bin']);
  if (!bin) throw new Error('test setup: redis-server not found on PATH (install Debian package redis-server)');
  const port = await freePort();
  const child = spawn(bin, ['--save', '', '--appendonly', 'no', '--bind', '127.0.0.1', '--port', String(port), '--dir', dir, ...args], { stdio: 'ignore' });
  child.unref();
  const kill = () => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL');
  const unregister = onProcessExit(kill);
  t.teardown(() => {
    unregister();
    kill();
  });
  for (let i = 0; i < 150; i++) {
    if ((await askRedisOnce(readyUrl(port), 'PING')) === 'PONG') return port;
    await sleep(100);
  }
  throw new Error(`test setup: redis-server on port ${port} did not start`);
}

/** Polls until `gw` refuses `cookie` (401): invalidations travel over pub/sub. */
async function refusedSoon(gw: TestGateway, cookie: string): Promise<number> {
  let status = 0;
  for (let i = 0; i < 40 && status !== 401; i++) {
    status = (await api(gw, cookie)).status;
    if (status !== 401) await sleep(50);
  }
  return status;
}

/** Invalidations B received over pub/sub (gateway_session_cache_invalidations_total{kind="session"}). */
async function invalidationsReceived(gw: TestGateway): Promise<number> {
  const text = (await send(`${gw.adminUrl}/metrics`)).body;
  const line = text.split('\n').find((l) => l.startsWith('gateway_session_cache_invalidations_total{kind="session"}'));
  return Number(line?.split(' ').pop() ?? 0);
}

/** Sign in, a protected request forwarded, logout, refused afterwards. */
async function fullSession(t: Asserts, gw: TestGateway, user: string): Promise<void> {
  const cookie = await login(gw, user, password(user));
  const res = await api(gw, cookie);
  t.equal(res.status, 200, 'a protected request is forwarded');
  t.equal(res.json<{ headers: Record<string, string> }>().headers['x-forwarded-user'], user);
  t.equal((await logout(gw, cookie)).status, 303, 'logout');
  t.equal((await api(gw, cookie)).status, 401, 'the session is gone');
}

t.test('standalone Redis with requirepass', async (t) => {
  const port = await startRedisServer(t, ['--requirepass', REDIS_PASSWORD], (p) => `redis://:${REDIS_PASSWORD}@127.0.0.1:${p}`);
  const url = `redis://127.0.0.1:${port}`;

  t.test('REDIS_PASSWORD signs in: login, session survives, logout', async (t) => {
    const gw = await startTestGateway(t, { ...base, REDIS_URL: url, REDIS_PASSWORD });
    const ready = await send(`${gw.adminUrl}/readyz`);
    t.equal(ready.status, 200, ready.body);
    await fullSession(t, gw, 'alice');
    t.notOk(gw.logs.join('\n').includes(REDIS_PASSWORD), 'the password is never logged');
  });

  t.test('REDIS_PASSWORD_FILE works the same', async (t) => {
    const file = join(dir, 'redis-password');
    writeFileSync(file, `${REDIS_PASSWORD}\n`);
    const gw = await startTestGateway(t, { ...base, REDIS_URL: url, REDIS_PASSWORD_FILE: file });
    await fullSession(t, gw, 'bob');
  });

  t.test('without the password (or a wrong one) the gateway fails closed', async (t) => {
    const good = await startTestGateway(t, { ...base, REDIS_URL: url, REDIS_PASSWORD });
    const cookie = await login(good, 'carol', password('carol'));
    for (const [label, env] of [
      ['no password', { REDIS_URL: url }],
      ['wrong password', { REDIS_URL: url, REDIS_PASSWORD: 'Wrong-Pw-0b5e' }],
    ] as const) {
      const gw = await startTestGateway(t, { ...base, ...env });
      const ready = await send(`${gw.adminUrl}/readyz`);
      t.equal(ready.status, 503, `${label}: not ready`);
      t.match(ready.json(), { redis: 'down' }, `${label}: readiness names Redis`);
      t.equal((await api(gw, cookie)).status, 503, `${label}: a valid session gets 503, never forwarded or logged out`);
      t.equal((await jsonLogin(gw, 'dave', password('dave'))).status, 503, `${label}: sign-in answers 503`);
      t.notOk(gw.logs.join('\n').includes('Wrong-Pw-0b5e'), `${label}: the password is never logged`);
      await gw.stop();
    }
    t.equal((await api(good, cookie)).status, 200, 'the session is still valid');
  });
});

t.test('an ACL user with exactly the documented least-privilege line, default user off', async (t) => {
  const readme = readFileSync(new URL('../../docs/sessions.md', import.meta.url), 'utf8');
  const line = /^user gateway on (>\S+) (.+)$/m.exec(readme);
  t.ok(line, 'README documents `user gateway on >… …`');
  if (!line) return;
  const rules = line[2]!.split(' ');
  t.ok(rules.includes('~sgw:*') && rules.includes('&sgw:*'), 'keys and channels under the default prefix');
  const ADMIN = 'Admin-Pw-4d2a';
  const GATEWAY_PW = 'Acl-Gw-Pw-91c2';
  const port = await startRedisServer(t, [], (p) => `redis://127.0.0.1:${p}`);
  const admin = new Redis({ host: '127.0.0.1', port, lazyConnect: true });
  await admin.connect();
  await admin.call('ACL', 'SETUSER', 'admin', 'on', `>${ADMIN}`, '~*', '&*', '+@all');
  await admin.call('ACL', 'SETUSER', 'gateway', 'reset', 'on', `>${GATEWAY_PW}`, ...rules);
  await admin.call('ACL', 'SETUSER', 'default', 'off');
  admin.disconnect();
  const asAdmin = (command: string, ...args: string[]) => askRedisOnce(`redis://admin:${ADMIN}@127.0.0.1:${port}`, command, ...args);
  t.equal(await askRedisOnce(`redis://127.0.0.1:${port}`, 'PING'), null, 'the default user is off');
  await asAdmin('ACL', 'LOG', 'RESET');

  const env = { ...base, REDIS_URL: `redis://127.0.0.1:${port}`, REDIS_USERNAME: 'gateway', REDIS_PASSWORD: GATEWAY_PW, GATEWAY_LOGIN_MAX_ATTEMPTS: '2' };
  const a = await startTestGateway(t, env);
  const b = await startTestGateway(t, env);
  t.equal((await send(`${a.adminUrl}/readyz`)).status, 200, 'ready');

  await fullSession(t, a, 'alice');

  // Logout on A reaches B's cache over pub/sub on `sgw:invalidate`.
  const cookie = await login(a, 'bob', password('bob'));
  t.equal((await api(b, cookie)).status, 200, 'B validates the session');
  t.equal((await api(b, cookie)).status, 200, 'B serves it from its cache');
  const before = await invalidationsReceived(b);
  t.equal((await logout(a, cookie)).status, 303);
  t.equal(await refusedSoon(b, cookie), 401, 'B refuses the logged-out session (invalidation received)');
  t.ok((await invalidationsReceived(b)) > before, 'B received the invalidation over pub/sub');

  // Throttle: the Lua scripts run with this user's rights.
  const statuses: number[] = [];
  for (let i = 0; i < 3; i++) statuses.push((await jsonLogin(a, 'carol', 'wrong-password')).status);
  t.same(statuses, [401, 401, 429], 'failed logins are throttled');
  t.equal((await jsonLogin(b, 'carol', password('carol'))).status, 429, 'on every replica (counter in Redis)');

  const denied = ((await asAdmin('ACL', 'LOG')) as unknown[][] | null) ?? [];
  // CLIENT SETINFO (ioredis, Redis 7.2+) is optional and its refusal ignored (README).
  const relevant = denied.map((entry) => String(entry[entry.indexOf('object') + 1])).filter((object) => !object.startsWith('client'));
  t.same(relevant, [], 'Redis refused nothing the gateway needs');
  t.notOk([...a.logs, ...b.logs].join('\n').includes(GATEWAY_PW), 'the password is never logged');
});

t.test('Sentinel with passwords on the data nodes and on the sentinel', async (t) => {
  const SENTINEL_PASSWORD = 'Sentinel-Pw-5e8f';
  const sentinel = await startSentinelSetup(t, { password: REDIS_PASSWORD, sentinelPassword: SENTINEL_PASSWORD });
  const env = { ...base, REDIS_SENTINELS: sentinel.sentinels, REDIS_SENTINEL_NAME: sentinel.name, REDIS_PASSWORD };
  const noSentinelPw = await startTestGateway(t, env);
  t.equal((await send(`${noSentinelPw.adminUrl}/readyz`)).status, 503, 'without REDIS_SENTINEL_PASSWORD the sentinel refuses: not ready');
  await noSentinelPw.stop();

  const gw = await startTestGateway(t, { ...env, REDIS_SENTINEL_PASSWORD: SENTINEL_PASSWORD });
  const ready = await send(`${gw.adminUrl}/readyz`);
  t.equal(ready.status, 200, ready.body);
  await fullSession(t, gw, 'dave');
  const logs = gw.logs.join('\n');
  t.notOk(logs.includes(REDIS_PASSWORD) || logs.includes(SENTINEL_PASSWORD), 'no password logged');
});

t.test('Cluster with requirepass on every node', async (t) => {
  const cluster = await startCluster(t, { password: REDIS_PASSWORD });
  const env = { ...base, REDIS_CLUSTER_NODES: cluster.nodes, REDIS_PASSWORD, GATEWAY_LOGIN_MAX_ATTEMPTS: '2' };
  const a = await startTestGateway(t, env);
  const b = await startTestGateway(t, env);
  for (const gw of [a, b]) t.equal((await send(`${gw.adminUrl}/readyz`)).status, 200, 'ready');
  await fullSession(t, a, 'alice');
  // The invalidation subscriber is a connection of its own: it must sign in too.
  const cookie = await login(a, 'bob', password('bob'));
  t.equal((await api(b, cookie)).status, 200, 'B validates the session');
  const before = await invalidationsReceived(b);
  t.equal((await logout(a, cookie)).status, 303);
  t.equal(await refusedSoon(b, cookie), 401, 'B refuses the logged-out session');
  t.ok((await invalidationsReceived(b)) > before, 'B received the invalidation over pub/sub');
  const statuses: number[] = [];
  for (let i = 0; i < 3; i++) statuses.push((await jsonLogin(a, 'carol', 'wrong-password')).status);
  t.same(statuses, [401, 401, 429], 'failed logins are throttled');
  t.notOk([...a.logs, ...b.logs].join('\n').includes(REDIS_PASSWORD), 'the password is never logged');
});
