// A real `session-gateway serve`: by default its libuv pool threads, where sign-ins hash
// passwords, run at nice 19 under SCHED_IDLE while the event-loop thread that proxies requests
// stays at 0 under SCHED_OTHER; GATEWAY_HASH_THREAD_IDLE=false keeps the nice value only,
// GATEWAY_HASH_THREAD_NICE=0 with it leaves them all alone, and a value out of range stops the start.
import { readdirSync, readFileSync } from 'node:fs';
import t from 'tap';
import { SCHED_IDLE, schedulingPolicy } from '../../src/users/hash-threads.js';
import { ensureBuilt, loopbackServe, runCli, spawnCli, waitForStatus } from '../helpers/cli.js';
import { seedUsers, TEST_SECRET, uniquePrefix } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import { services } from '../helpers/services.js';
import { startEchoUpstream } from '../helpers/upstream.js';

await ensureBuilt();

const PASSWORD = 'correct horse battery';
const { redis, pg } = await services(t);
await seedUsers(t, pg.url, [{ username: 'alice', password: PASSWORD }]);
const upstream = await startEchoUpstream();
t.teardown(() => upstream.close());

/** The nice value this test runs at; a child process starts with the same. */
const inherited = niceByThread(process.pid).find((th) => th.tid === process.pid)?.nice ?? 0;

/** nice value and scheduling policy of each of a process's threads, by thread name ("MainThread", "libuv-worker", ...). */
function niceByThread(pid: number): Array<{ tid: number; name: string; nice: number; policy: number | undefined }> {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    return {
      tid: Number(tid),
      name: readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim(),
      nice: Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]),
      policy: schedulingPolicy(Number(tid), pid),
    };
  });
}

async function serveAndSignIn(extra: Record<string, string>) {
  const { port, adminPort, env } = await loopbackServe(upstream.url);
  const proc = spawnCli(t, ['serve'], {
    ...env,
    REDIS_URL: redis.url,
    DATABASE_URL: pg.url,
    GATEWAY_SESSION_SECRET: TEST_SECRET,
    GATEWAY_REDIS_PREFIX: uniquePrefix(),
    GATEWAY_COOKIE_SECURE: 'false',
    LOG_LEVEL: 'info',
    ...extra,
  });
  await waitForStatus(`http://127.0.0.1:${adminPort}/readyz`, 200, { process: proc, timeoutMs: 30_000 });
  const res = await send(`http://127.0.0.1:${port}/_auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'alice', password: PASSWORD }),
  });
  t.equal(res.status, 200, 'a real argon2id sign-in works');
  return { proc, threads: niceByThread(proc.child.pid as number) };
}

t.test('by default the hashing threads run at nice 19 under SCHED_IDLE, the proxy thread at 0 under SCHED_OTHER', async (t) => {
  const { proc, threads } = await serveAndSignIn({});
  const pool = threads.filter((th) => th.name === 'libuv-worker');
  t.equal(pool.length, 4, "libuv's four pool threads");
  t.same(
    pool.map((th) => th.nice),
    [19, 19, 19, 19],
  );
  t.same(
    pool.map((th) => th.policy),
    [SCHED_IDLE, SCHED_IDLE, SCHED_IDLE, SCHED_IDLE],
    'preempted as soon as any other thread wakes',
  );
  t.equal(threads.find((th) => th.tid === proc.child.pid)?.nice, inherited, 'the event-loop thread keeps its nice value');
  t.same(
    threads.filter((th) => th.name !== 'libuv-worker').map((th) => th.policy),
    threads.filter((th) => th.name !== 'libuv-worker').map(() => 0),
    'and every other thread its policy',
  );
  t.match(proc.stdout(), /"nice":19,"idle":true,"threads":4.*password hashing threads run at a lower priority/);
});

t.test('GATEWAY_HASH_THREAD_IDLE=false: nice 19 only', async (t) => {
  const { proc, threads } = await serveAndSignIn({ GATEWAY_HASH_THREAD_IDLE: 'false' });
  const pool = threads.filter((th) => th.name === 'libuv-worker');
  t.same(
    pool.map((th) => [th.nice, th.policy]),
    pool.map(() => [19, 0]),
  );
  t.match(proc.stdout(), /"nice":19,"idle":false,"threads":4/);
});

t.test('GATEWAY_HASH_THREAD_NICE=0 and GATEWAY_HASH_THREAD_IDLE=false leave every thread alone', async (t) => {
  const { threads } = await serveAndSignIn({ GATEWAY_HASH_THREAD_NICE: '0', GATEWAY_HASH_THREAD_IDLE: 'false' });
  t.ok(threads.some((th) => th.name === 'libuv-worker'));
  t.same(
    threads.map((th) => [th.nice, th.policy]),
    threads.map(() => [inherited, 0]),
  );
});

t.test('a value outside 0–19 stops the start with the variable named', async (t) => {
  const result = await runCli(['serve'], { env: { GATEWAY_HASH_THREAD_NICE: '20', GATEWAY_PORT: '0', GATEWAY_ADMIN_PORT: '0' } });
  t.not(result.code, 0);
  t.match(result.stderr + result.stdout, /GATEWAY_HASH_THREAD_NICE/);
});
