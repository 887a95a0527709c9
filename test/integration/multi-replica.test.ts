// The load-balancer scenario (SPEC sections 5 and 7): three real `session-gateway serve`
// processes share Redis, PostgreSQL, the session secret and one app, behind a round-robin TCP
// balancer. Every client request opens a new connection, so consecutive requests land on
// different replicas: a session works everywhere, a logout reaches every replica's cache, and a
// replica dying mid-stream logs nobody out and never lets a request reach the app without identity.
import t from 'tap';
import { startBalancer } from '../helpers/balancer.js';
import { ensureBuilt, freePort, spawnCli, waitForStatus, type ServeProcess } from '../helpers/cli.js';
import { seedUsers, TEST_SECRET, uniquePrefix } from '../helpers/gateway.js';
import { cookieHeader, send, type Response } from '../helpers/http.js';
import { services } from '../helpers/services.js';
import { startEchoUpstream, type Echo } from '../helpers/upstream.js';

await ensureBuilt();

const COOKIE = 'sgw_session';
const USERS = ['alice', 'bob', 'carol', 'dave'] as const;
const PASSWORD = 'correct horse battery';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const { redis, pg } = await services(t);
await seedUsers(
  t,
  pg.url,
  USERS.map((username) => ({ username, password: PASSWORD })),
);
const upstream = await startEchoUpstream();
t.teardown(() => upstream.close());
const prefix = uniquePrefix();

interface Replica {
  name: string;
  port: number;
  adminPort: number;
  url: string;
  adminUrl: string;
  proc: ServeProcess;
}

async function startReplica(name: string, taken: Set<number>): Promise<Replica> {
  const pick = async () => {
    let port = await freePort();
    while (taken.has(port)) port = await freePort();
    taken.add(port);
    return port;
  };
  const port = await pick();
  const adminPort = await pick();
  const proc = spawnCli(t, ['serve'], {
    GATEWAY_HOST: '127.0.0.1',
    GATEWAY_PORT: String(port),
    GATEWAY_ADMIN_HOST: '127.0.0.1',
    GATEWAY_ADMIN_PORT: String(adminPort),
    REDIS_URL: redis.url,
    DATABASE_URL: pg.url,
    GATEWAY_UPSTREAM: upstream.url,
    GATEWAY_SESSION_SECRET: TEST_SECRET,
    GATEWAY_REDIS_PREFIX: prefix,
    LOG_LEVEL: 'info',
  });
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  await waitForStatus(`${adminUrl}/readyz`, 200, { process: proc, timeoutMs: 30_000 });
  return { name, port, adminPort, url: `http://127.0.0.1:${port}`, adminUrl, proc };
}

const taken = new Set<number>();
const replicas: Replica[] = [];
for (const name of ['gw-a', 'gw-b', 'gw-c']) replicas.push(await startReplica(name, taken));
const balancer = await startBalancer(replicas.map((r) => ({ port: r.port })));
t.teardown(() => balancer.close());

const session = (cookie: string, extra: Record<string, string> = {}) => ({ cookie: cookieHeader({ [COOKIE]: cookie }), ...extra });

async function loginVia(base: string, username: string): Promise<string> {
  const res = await send(`${base}/_auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: PASSWORD }),
  });
  const cookie = res.cookies[COOKIE];
  if (res.status !== 200 || !cookie) throw new Error(`login as ${username} failed: ${res.status} ${res.body}`);
  return cookie;
}

/** Requests this replica forwarded to the app so far (its own Prometheus counter). */
async function forwardedBy(replica: Replica): Promise<number> {
  const text = (await send(`${replica.adminUrl}/metrics`)).body;
  let sum = 0;
  for (const line of text.split('\n')) {
    const match = /^gateway_upstream_request_duration_seconds_count(?:\{.*\})?\s+(\S+)$/.exec(line);
    if (match) sum += Number(match[1]);
  }
  return sum;
}

function userOf(res: Response): string | undefined {
  const value = res.json<Echo>().headers['x-forwarded-user'];
  return typeof value === 'string' ? value : undefined;
}

t.test('a session issued through the balancer works on every replica', async (t) => {
  const cookie = await loginVia(balancer.url, 'alice');
  const before = await Promise.all(replicas.map(forwardedBy));
  for (let i = 0; i < 30; i++) {
    const res = await send(`${balancer.url}/rr/${i}`, { headers: session(cookie) });
    t.equal(res.status, 200, `request ${i}: ${res.status} ${res.status === 200 ? '' : res.body}`);
    if (res.status === 200) {
      t.equal(userOf(res), 'alice', `request ${i} carried the identity`);
      t.equal(res.json<Echo>().url, `/rr/${i}`);
    }
  }
  const after = await Promise.all(replicas.map(forwardedBy));
  const served = after.map((n, i) => n - (before[i] ?? 0));
  t.equal(
    served.reduce((a, b) => a + b, 0),
    30,
    'every request was forwarded exactly once',
  );
  served.forEach((n, i) => t.ok(n >= 1, `${replicas[i]?.name} served ${n} of the 30 requests`));
});

t.test('a logout through the balancer is refused on every replica within 1 s', async (t) => {
  const cookie = await loginVia(balancer.url, 'bob');
  // Warm every replica's local cache with this session, straight and through the balancer.
  for (const replica of replicas) t.equal((await send(`${replica.url}/warm`, { headers: session(cookie) })).status, 200, `${replica.name} knows the session`);
  const forwarded = upstream.received.length;

  const out = await send(`${balancer.url}/_auth/logout`, { method: 'POST', headers: session(cookie) });
  t.equal(out.status, 303, 'logout answers with a redirect to the login page');
  const loggedOutAt = Date.now();

  for (const replica of replicas) {
    let last = 0;
    while (Date.now() - loggedOutAt < 1_000) {
      last = (await send(`${replica.url}/after-logout`, { headers: session(cookie) })).status;
      if (last === 401) break;
      await sleep(20);
    }
    t.equal(last, 401, `${replica.name} refuses the logged-out session within 1 s`);
  }
  for (let i = 0; i < 6; i++) {
    const res = await send(`${balancer.url}/after-logout/${i}`, { headers: session(cookie) });
    t.equal(res.status, 401, `request ${i} through the balancer is refused`);
  }
  const leaked = upstream.received.slice(forwarded).filter((echo) => echo.headers['x-forwarded-user'] === 'bob');
  t.same(
    leaked.map((e) => e.url),
    [],
    'nothing of the logged-out session reached the app',
  );
});

t.test('SIGKILL of one replica mid-stream logs nobody out and never forwards without identity', async (t) => {
  const cookies = new Map<string, string>();
  for (const user of USERS) cookies.set(user, await loginVia(balancer.url, user));
  const firstReceived = upstream.received.length;

  const TOTAL = 200;
  const PER_USER = TOTAL / USERS.length;
  const KILL_AFTER = 60;
  const victim = replicas[1] as Replica;
  let completed = 0;
  let killed: Promise<unknown> | undefined;
  const outcomes = new Map<string, number>();
  const problems: string[] = [];
  const count = (key: string) => outcomes.set(key, (outcomes.get(key) ?? 0) + 1);

  const loop = async (user: string) => {
    const cookie = cookies.get(user) as string;
    for (let i = 0; i < PER_USER; i++) {
      const path = `/stream/${user}/${i}`;
      try {
        const res = await send(`${balancer.url}${path}`, { headers: session(cookie, { accept: 'text/html' }) });
        count(String(res.status));
        if (res.status === 200) {
          const echo = res.json<Echo>();
          if (echo.headers['x-forwarded-user'] !== user || echo.url !== path) problems.push(`${path}: 200 for ${String(echo.headers['x-forwarded-user'])} at ${echo.url}`);
        } else if (res.status !== 502) {
          problems.push(`${path}: ${res.status} location=${String(res.headers.location)} ${res.body.slice(0, 120)}`);
        }
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        count(`error:${code}`);
        if (!/ECONNRESET|ECONNREFUSED|EPIPE|socket hang up/.test(`${code} ${(err as Error).message}`)) problems.push(`${path}: unexpected error ${code}`);
      }
      completed++;
      if (completed === KILL_AFTER && !killed) {
        process.kill(victim.proc.child.pid as number, 'SIGKILL');
        killed = victim.proc.exited;
      }
    }
  };
  await Promise.all(USERS.map((user) => loop(user)));
  t.ok(killed, 'the replica was killed during the stream');
  t.match(await victim.proc.exited, { signal: 'SIGKILL' }, 'the victim died by SIGKILL');

  t.same(problems, [], `every answer was a 200 with the right identity or a connection failure (${JSON.stringify(Object.fromEntries(outcomes))})`);
  t.ok((outcomes.get('200') ?? 0) >= TOTAL - 20, `almost every request succeeded (${outcomes.get('200') ?? 0} of ${TOTAL})`);

  const received = upstream.received.slice(firstReceived);
  t.ok(received.length >= (outcomes.get('200') ?? 0), 'every 200 was forwarded');
  const wrong = received.filter((echo) => {
    const match = /^\/stream\/([a-z]+)\//.exec(echo.url);
    return !match || echo.headers['x-forwarded-user'] !== match[1];
  });
  t.same(
    wrong.map((e) => `${e.url} as ${String(e.headers['x-forwarded-user'])}`),
    [],
    'the app never received a request without identity or with the wrong user',
  );

  // Nobody was logged out: every cookie still works on each survivor and through the balancer.
  const survivors = replicas.filter((r) => r !== victim);
  const victimConnections = balancer.assigned.get(victim.port) ?? 0;
  for (const user of USERS) {
    const cookie = cookies.get(user) as string;
    for (const replica of survivors) {
      const res = await send(`${replica.url}/after-kill`, { headers: session(cookie) });
      t.equal(res.status, 200, `${user} still signed in on ${replica.name}`);
      if (res.status === 200) t.equal(userOf(res), user);
    }
    for (let i = 0; i < 3; i++) {
      const res = await send(`${balancer.url}/after-kill/${i}`, { headers: session(cookie) });
      t.equal(res.status, 200, `${user} through the balancer (${i})`);
      if (res.status === 200) t.equal(userOf(res), user);
    }
  }
  t.equal(balancer.assigned.get(victim.port) ?? 0, victimConnections, 'the balancer skipped the dead replica');
});
