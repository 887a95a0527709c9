// `session-gateway serve` as a real child process: the SIGTERM sequence of SPEC section 7
// (readiness off at once, keep serving for the delay, drain in-flight requests, exit 0, JSON logs
// without secrets) and the embedded default mode of SPEC section 1.
import t from 'tap';
import { ensureBuilt, freePort, spawnCli, waitForStatus, type ServeProcess } from '../helpers/cli.js';
import { seedUsers, TEST_SECRET, uniquePrefix } from '../helpers/gateway.js';
import { cookieHeader, send } from '../helpers/http.js';
import { services } from '../helpers/services.js';
import { startEchoUpstream, type Echo } from '../helpers/upstream.js';

await ensureBuilt();

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const COOKIE = 'sgw_session';
type Asserts = Pick<typeof t, 'fail'>;

async function waitFor(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not reached in ${timeoutMs} ms`);
    await sleep(10);
  }
}

/** Every non-empty stdout line parsed as JSON (a line that is not JSON fails the test). */
function jsonLines(t: Asserts, proc: ServeProcess): Array<Record<string, unknown>> {
  return proc
    .stdout()
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        t.fail(`stdout line is not JSON: ${line}`);
        return {};
      }
    });
}

async function gatewayPorts(): Promise<{ port: number; adminPort: number; env: Record<string, string> }> {
  const port = await freePort();
  let adminPort = await freePort();
  while (adminPort === port) adminPort = await freePort();
  const env = { GATEWAY_HOST: '127.0.0.1', GATEWAY_PORT: String(port), GATEWAY_ADMIN_HOST: '127.0.0.1', GATEWAY_ADMIN_PORT: String(adminPort) };
  return { port, adminPort, env };
}

t.test('SIGTERM: not ready at once, keep serving for the delay, drain, exit 0', async (t) => {
  const { redis, pg } = await services(t);
  await seedUsers(t, pg.url, [{ username: 'alice', password: 'correct horse battery', groups: ['staff'] }]);
  const upstream = await startEchoUpstream((echo, res) => {
    if (!echo.url.startsWith('/slow')) return false;
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(echo));
    }, 1_500);
    return true;
  });
  t.teardown(() => upstream.close());

  const { port, adminPort, env } = await gatewayPorts();
  const proc = spawnCli(t, ['serve'], {
    ...env,
    GATEWAY_UPSTREAM: upstream.url,
    GATEWAY_SHUTDOWN_DELAY: '1s',
    GATEWAY_SHUTDOWN_TIMEOUT: '5s',
    REDIS_URL: redis.url,
    DATABASE_URL: pg.url,
    GATEWAY_SESSION_SECRET: TEST_SECRET,
    GATEWAY_REDIS_PREFIX: uniquePrefix(),
  });
  const proxy = `http://127.0.0.1:${port}`;
  const readyz = `http://127.0.0.1:${adminPort}/readyz`;
  await waitForStatus(readyz, 200, { process: proc });

  const wrong = await send(`${proxy}/_auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', password: 'wrong horse staple' }) });
  t.equal(wrong.status, 401);
  const ok = await send(`${proxy}/_auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', password: 'correct horse battery' }) });
  t.equal(ok.status, 200, ok.body);
  const cookie = ok.cookies[COOKIE] ?? '';
  t.ok(cookie, 'session cookie issued');
  const headers = { cookie: cookieHeader({ [COOKIE]: cookie }), authorization: 'Bearer top-secret-token-123' };

  const slow = send(`${proxy}/slow`, { headers });
  await waitFor('slow request reached the upstream', () => upstream.received.some((e) => e.url === '/slow'));
  const sigterm = Date.now();
  t.ok(proc.child.pid !== undefined && process.kill(proc.child.pid, 'SIGTERM'), 'SIGTERM sent');

  // Readiness turns off as soon as the signal is handled, well inside the 1 s delay.
  let ready = await send(readyz);
  while (ready.status === 200 && Date.now() - sigterm < 800) {
    await sleep(10);
    ready = await send(readyz);
  }
  t.equal(ready.status, 503, '/readyz is 503 right after SIGTERM');
  t.match(ready.json(), { status: 'shutting down' });

  const during = await send(`${proxy}/during-delay`, { headers });
  t.equal(during.status, 200, 'the proxy still answers during the shutdown delay');
  t.equal(during.json<Echo>().headers['x-forwarded-user'], 'alice');

  const finished = await slow;
  t.equal(finished.status, 200, 'the in-flight slow request completes');
  t.equal(finished.json<Echo>().url, '/slow');

  const exit = await proc.exited;
  t.same(exit, { code: 0, signal: null }, `exit 0\n${proc.stderr()}`);
  await t.rejects(send(`${proxy}/after`, { headers }), 'the proxy no longer accepts connections');
  await t.rejects(send(readyz), 'neither does the admin listener');

  const logs = jsonLines(t, proc);
  t.ok(logs.length > 0, 'stdout has log lines');
  const msgs = logs.map((l) => l.msg);
  t.ok(msgs.includes('session-gateway listening'));
  t.ok(logs.some((l) => l.msg === 'signal received' && l.signal === 'SIGTERM'), 'SIGTERM logged');
  t.ok(msgs.includes('shutdown complete'), 'shutdown completed');
  t.ok(logs.some((l) => l.audit === 'login' && l.outcome === 'success' && l.user === 'alice'), 'audit line for the login');
  t.ok(logs.some((l) => l.audit === 'login' && l.outcome === 'failure' && l.user === 'alice'), 'audit line for the failed login');
  t.ok(logs.some((l) => l.msg === 'request' && l.path === '/slow' && l.status === 200 && typeof l.reqId === 'string'), 'access log line for the drained request');
  const everything = proc.stdout() + proc.stderr();
  const id = cookie.slice(0, cookie.lastIndexOf('.'));
  for (const [what, secret] of [
    ['password', 'correct horse battery'],
    ['wrong password', 'wrong horse staple'],
    ['cookie value', cookie],
    ['session id', id],
    ['url-encoded cookie', encodeURIComponent(cookie)],
    ['Authorization', 'top-secret-token-123'],
    ['session secret', TEST_SECRET],
  ] as const) {
    t.notOk(everything.includes(secret), `no ${what} in the output`);
  }
});

t.test('embedded default mode: demo user, whoami upstream, insecure cookie', async (t) => {
  const { port, adminPort, env } = await gatewayPorts();
  const proc = spawnCli(t, [], env);
  const proxy = `http://127.0.0.1:${port}`;
  await waitForStatus(`http://127.0.0.1:${adminPort}/readyz`, 200, { process: proc });
  await waitFor('password announced', () => /password \(shown once\):\s+\S+/.test(proc.stderr()));

  const stderr = proc.stderr();
  t.match(stderr, /demo user:\s+demo\b/, 'the demo user is printed to standard error');
  const password = /password \(shown once\):\s+(\S+)/.exec(stderr)?.[1] ?? '';
  t.ok(password.length >= 12, 'a generated password is printed');
  const passwordLine = stderr.split('\n').find((l) => l.includes(password)) ?? '';
  t.throws(() => JSON.parse(passwordLine), 'the password is outside the JSON log');
  t.notOk(proc.stdout().includes(password), 'and never in the JSON log');

  const logs = jsonLines(t, proc);
  t.ok(logs.some((l) => l.level === 40 && /NOT FOR PRODUCTION/.test(String(l.msg))), 'a warning says NOT FOR PRODUCTION');

  const anonymous = await send(`${proxy}/`, { headers: { accept: 'text/html' } });
  t.equal(anonymous.status, 302, 'the whoami app is protected');
  t.match(anonymous.headers.location, /^\/_auth\/login\?rd=/);

  const wrong = await send(`${proxy}/_auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'demo', password: `${password}x` }) });
  t.equal(wrong.status, 401);
  const res = await send(`${proxy}/_auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'demo', password }) });
  t.equal(res.status, 200, res.body);
  const setCookie = res.setCookie(COOKIE) ?? '';
  t.ok(setCookie, 'session cookie set');
  t.notMatch(setCookie, /;\s*Secure/i, 'no Secure attribute, so plain http on localhost works');
  t.match(setCookie, /;\s*HttpOnly/i);

  const page = await send(`${proxy}/`, { headers: { accept: 'text/html', cookie: cookieHeader({ [COOKIE]: res.cookies[COOKIE] ?? '' }) } });
  t.equal(page.status, 200);
  t.match(page.headers['content-type'], /^text\/html/);
  t.match(page.body, /x-forwarded-user<\/th>\s*<td>demo<\/td>/, 'the whoami page shows x-forwarded-user: demo');
  t.match(page.body, /x-forwarded-email<\/th>\s*<td>demo@example\.com<\/td>/);

  t.ok(proc.child.pid !== undefined && process.kill(proc.child.pid, 'SIGTERM'));
  t.same(await proc.exited, { code: 0, signal: null }, 'exits 0 on SIGTERM');
});
