// The first hour of a new user (issue 14 section 3), tried as they would: each trap cost an
// afternoon because what the user saw did not name the cause. Each subtest asserts that the page,
// the log or the one error line now names the cause and the variable that fixes it, against real
// Redis and PostgreSQL, through the real CLI where the user would use the CLI.
import { readFileSync } from 'node:fs';
import { createServer, connect, type Server } from 'node:net';
import { join } from 'node:path';
import pgLib from 'pg';
import t from 'tap';
import { verifyPassword } from '../../src/users/passwords.js';
import { loadConfig, type ConfigError } from '../../src/config/config.js';
import { createLogger } from '../../src/logger.js';
import { startGateway } from '../../src/server.js';
import { ensureBuilt, freePort, ROOT, runCli, type CliResult } from '../helpers/cli.js';
import { startTestGateway, TEST_SECRET, uniquePrefix } from '../helpers/gateway.js';
import { cookieHeader, send } from '../helpers/http.js';
import { services } from '../helpers/services.js';
import { startEchoUpstream } from '../helpers/upstream.js';

await ensureBuilt();
const { redis, pg } = await services(t);
const pool = new pgLib.Pool({ connectionString: pg.url, max: 2 });
t.teardown(() => pool.end());
// A legacy app's table; the gateway's own gateway_users is deliberately never created here.
await pool.query('CREATE TABLE accounts (user_id varchar PRIMARY KEY, pass varchar)');
const ANN_PLAIN = 'ann-Plain-Pw-0001';
await pool.query('INSERT INTO accounts VALUES ($1, $2)', ['ann', ANN_PLAIN]);
const LEGACY_QUERY = 'SELECT user_id AS username, pass AS password_hash FROM accounts WHERE user_id = $1';
const LEGACY_UPDATE = 'UPDATE accounts SET pass = $2 WHERE user_id = $1';

const upstream = await startEchoUpstream();
t.teardown(() => upstream.close());
const production = { REDIS_URL: redis.url, DATABASE_URL: pg.url, GATEWAY_UPSTREAM: upstream.url, GATEWAY_USER_QUERY: LEGACY_QUERY };
const gateway = (env: Record<string, string> = {}) => startTestGateway(t, { ...production, GATEWAY_REDIS_PREFIX: uniquePrefix(), ...env });

const describe = (r: CliResult) => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
const logged = (logs: string[]) => logs.map((line) => JSON.parse(line) as Record<string, unknown>);

/** One line on stderr, exit 1, no stack trace: what an operator should get for a configuration mistake. */
function oneLineFailure(t: Tap, r: CliResult, pattern: RegExp, label: string): void {
  t.equal(r.code, 1, `${label}: exit 1\n${describe(r)}`);
  t.equal(r.err.length, 1, `${label}: one line on stderr\n${describe(r)}`);
  t.match(r.err[0] ?? '', pattern, label);
  t.notMatch(r.stderr, /\n\s+at /, `${label}: no stack trace`);
}
type Tap = Pick<typeof t, 'equal' | 'match' | 'notMatch'>;

t.test('1. plain http on a staging host name with Secure cookies: the page and the log name the cause and the fix', async (t) => {
  const gw = await gateway();
  t.equal(gw.config.cookieSecure, true, 'Redis configured: cookies are Secure by default');
  const host = `staging.example:${new URL(gw.url).port}`;
  const page = await send(`${gw.url}/_auth/login`, { headers: { host, accept: 'text/html' } });
  t.match(page.setCookie('sgw_csrf') ?? '', /;\s*Secure/i, 'the pre-login cookie is Secure, so a browser on http://staging.example drops it');

  // What the browser sends next: the form's token, but no cookie.
  const token = /name="csrf" value="([^"]+)"/.exec(page.body)?.[1] ?? '';
  const post = await send(`${gw.url}/_auth/login`, {
    method: 'POST',
    headers: { host, origin: `http://${host}`, accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username: 'ann', password: 'whatever-pw', csrf: token }).toString(),
  });
  t.equal(post.status, 403);
  t.match(post.body, /GATEWAY_COOKIE_SECURE=false/, 'the page names GATEWAY_COOKIE_SECURE=false');
  t.match(post.body, /GATEWAY_PUBLIC_URL=https:\/\//, 'the page names an https GATEWAY_PUBLIC_URL');
  t.notMatch(post.body, /sign-in form expired/i, 'not the misleading "form expired"');
  const line = logged(gw.logs).find((e) => e.outcome === 'csrf_cookie_missing');
  t.ok(line, 'a log line for the refused sign-in');
  t.match(String(line?.msg), /GATEWAY_COOKIE_SECURE=false/, 'the log names the fix too');

  // The cookie arrived but the token is wrong: a real expired or forged form keeps its message.
  const forged = await send(`${gw.url}/_auth/login`, {
    method: 'POST',
    headers: { host, accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded', cookie: cookieHeader({ sgw_csrf: 'x'.repeat(32) }) },
    body: new URLSearchParams({ username: 'ann', password: 'whatever-pw', csrf: 'y'.repeat(43) }).toString(),
  });
  t.equal(forged.status, 403);
  t.match(forged.body, /sign-in form expired/i, 'a mismatched pair is still "expired"');
});

t.test('1. GATEWAY_PUBLIC_URL=http://… with Secure cookies: a start-up warning names both variables', async (t) => {
  const gw = await gateway({ GATEWAY_PUBLIC_URL: 'http://staging.example:8000' });
  const warning = logged(gw.logs).find((e) => /GATEWAY_PUBLIC_URL is http/.test(String(e.msg)));
  t.ok(warning, 'warned at start-up');
  t.match(String(warning?.msg), /GATEWAY_COOKIE_SECURE=false/);
  const quiet = await gateway({ GATEWAY_PUBLIC_URL: 'https://app.example' });
  t.notOk(logged(quiet.logs).some((e) => /GATEWAY_PUBLIC_URL is http/.test(String(e.msg))), 'no warning for https');
});

t.test('the Kubernetes/ECS examples\' placeholder GATEWAY_TRUSTED_PROXIES left in: a start-up warning says to replace it', async (t) => {
  const gw = await gateway({ GATEWAY_TRUSTED_PROXIES: '192.0.2.0/28,10.1.2.0/24' });
  const warning = logged(gw.logs).find((e) => /documentation range/.test(String(e.msg)));
  t.ok(warning, 'warned at start-up');
  t.same(warning?.placeholders, ['192.0.2.0/28'], 'naming the placeholder, not the real range');
  const quiet = await gateway({ GATEWAY_TRUSTED_PROXIES: '10.1.2.0/24' });
  t.notOk(logged(quiet.logs).some((e) => /documentation range/.test(String(e.msg))), 'no warning for a real range');
});

t.test('2. a plaintext legacy table without GATEWAY_ALLOW_PLAINTEXT_PASSWORDS: the log says why, once per user, never the value', async (t) => {
  const gw = await gateway();
  for (let i = 0; i < 3; i++) {
    const res = await send(`${gw.url}/_auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ username: 'ann', password: ANN_PLAIN }),
    });
    t.equal(res.status, 401, `attempt ${i + 1} is refused (plaintext is not allowed)`);
  }
  const entries = logged(gw.logs);
  const hints = entries.filter((e) => /GATEWAY_ALLOW_PLAINTEXT_PASSWORDS=true/.test(String(e.msg)));
  t.equal(hints.length, 1, 'one hint for the user, not one per attempt');
  t.equal(hints[0]?.user, 'ann');
  t.match(String(hints[0]?.msg), /not a recognised hash/);
  const audits = entries.filter((e) => e.audit === 'login' && e.user === 'ann');
  t.same(audits.map((e) => e.reason), ['unrecognised_hash', 'unrecognised_hash', 'unrecognised_hash'], 'the audit reason is not "wrong_password"');
  t.notOk(gw.logs.some((line) => line.includes(ANN_PLAIN)), 'the stored value is never logged');
});

t.test('3. the README walk-through\'s "Check it" command answers what the README says', async (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const step = /\*\*Check it\*\*: `curl -i((?: -H '[^']+')*) http:\/\/localhost:8000\/` answers `(\d{3})`/.exec(readme);
  t.ok(step, 'step 6 states a curl command and its status');
  const headers = Object.fromEntries([...(step?.[1] ?? '').matchAll(/-H '([^:]+):\s*([^']+)'/g)].map((m) => [m[1]?.toLowerCase(), m[2]]));
  const gw = await gateway();
  const res = await send(`${gw.url}/`, { headers: { 'user-agent': 'curl/8.0', accept: '*/*', ...headers } });
  t.equal(String(res.status), step?.[2], 'the status the README promises');
  if (res.status === 302) t.match(res.headers.location ?? '', /^\/_auth\/login/, 'to the login page');
});

t.test('4. users commands against a legacy table go through the configured queries or name the missing one', async (t) => {
  const legacyEnv = { DATABASE_URL: pg.url, GATEWAY_USER_QUERY: LEGACY_QUERY };
  const cli = (args: string[], env: Record<string, string> = {}, stdin?: string) => runCli(args, { env: { ...legacyEnv, ...env }, ...(stdin !== undefined ? { stdin } : {}) });

  for (const args of [['users', 'list'], ['users', 'disable', 'ann'], ['users', 'enable', 'ann'], ['users', 'delete', 'ann'], ['users', 'add', 'bob', '--password-stdin']]) {
    const r = await cli(args, {}, 'bob-New-Pw-0002\n');
    oneLineFailure(t, r, /gateway_users table only.*GATEWAY_USER_QUERY/, args.join(' '));
    t.notMatch(r.stderr, /relation .* does not exist/, `${args.join(' ')}: no raw PostgreSQL error`);
  }

  const noQuery = await cli(['users', 'passwd', 'ann', '--password-stdin'], {}, 'ann-New-Pw-0003\n');
  oneLineFailure(t, noQuery, /GATEWAY_USER_PASSWORD_QUERY/, 'passwd without a password query');

  // GATEWAY_USER_REHASH_QUERY alone serves as the password query (SPEC section 2).
  const viaRehash = await cli(['users', 'passwd', 'ann', '--password-stdin'], { GATEWAY_USER_REHASH_QUERY: LEGACY_UPDATE }, 'ann-New-Pw-0003\n');
  t.equal(viaRehash.code, 0, describe(viaRehash));
  t.match(viaRehash.out[0] ?? '', /password changed for ann/);
  let stored = (await pool.query<{ pass: string }>('SELECT pass FROM accounts WHERE user_id = $1', ['ann'])).rows[0]?.pass;
  t.ok((await verifyPassword(stored, 'ann-New-Pw-0003', { allowPlaintext: false })).ok, 'the new password verifies (argon2id)');

  const viaPasswordQuery = await cli(['users', 'passwd', 'ann', '--password-stdin'], { GATEWAY_USER_PASSWORD_QUERY: 'UPDATE accounts SET pass = $2 WHERE user_id = $1' }, 'ann-New-Pw-0004\n');
  t.equal(viaPasswordQuery.code, 0, describe(viaPasswordQuery));
  stored = (await pool.query<{ pass: string }>('SELECT pass FROM accounts WHERE user_id = $1', ['ann'])).rows[0]?.pass;
  t.ok((await verifyPassword(stored, 'ann-New-Pw-0004', { allowPlaintext: false })).ok, 'GATEWAY_USER_PASSWORD_QUERY wrote it');

  const unknown = await cli(['users', 'passwd', 'nobody', '--password-stdin'], { GATEWAY_USER_PASSWORD_QUERY: LEGACY_UPDATE }, 'x-New-Pw-0005\n');
  oneLineFailure(t, unknown, /no such user "nobody"/, 'passwd for an unknown user');

  // Without GATEWAY_USER_QUERY and without `migrate`: say so instead of a raw PostgreSQL error.
  const noTable = await runCli(['users', 'list'], { env: { DATABASE_URL: pg.url } });
  oneLineFailure(t, noTable, /gateway_users table does not exist: run `session-gateway migrate`/, 'own table never migrated');

  await pool.query('UPDATE accounts SET pass = $2 WHERE user_id = $1', ['ann', ANN_PLAIN]);
});

t.test('6. a port already taken names GATEWAY_ADMIN_PORT / GATEWAY_PORT in one line, exit 1', async (t) => {
  const taken = await occupyPort();
  t.teardown(() => new Promise((resolve) => taken.server.close(resolve)));
  const base = { DATABASE_URL: pg.url, GATEWAY_USER_QUERY: LEGACY_QUERY, GATEWAY_UPSTREAM: upstream.url, GATEWAY_HOST: '127.0.0.1', GATEWAY_ADMIN_HOST: '127.0.0.1' };
  const adminClash = await runCli(['serve'], { env: { ...base, GATEWAY_PORT: String(await freePort()), GATEWAY_ADMIN_PORT: String(taken.port) } });
  oneLineFailure(t, adminClash, new RegExp(`GATEWAY_ADMIN_PORT: 127\\.0\\.0\\.1:${taken.port} is already in use`), 'admin port clash');
  const proxyClash = await runCli(['serve'], { env: { ...base, GATEWAY_PORT: String(taken.port), GATEWAY_ADMIN_PORT: String(await freePort()) } });
  oneLineFailure(t, proxyClash, new RegExp(`GATEWAY_PORT: 127\\.0\\.0\\.1:${taken.port} is already in use`), 'proxy port clash');
  // In-process too: the failed start releases Redis, PostgreSQL and the proxy port (or this file would never end).
  await t.rejects(gateway({ GATEWAY_ADMIN_PORT: String(taken.port) }), { name: 'Error', message: /^GATEWAY_ADMIN_PORT: .* is already in use/ });
});

t.test('6. a REDIS_URL that ioredis would read as a unix socket is refused at start-up', async (t) => {
  const r = await runCli(['serve'], { env: { REDIS_URL: 'redis:/127.0.0.1:6379', GATEWAY_SESSION_SECRET: TEST_SECRET, GATEWAY_PORT: '0', GATEWAY_ADMIN_PORT: '0' } });
  oneLineFailure(t, r, /^config error: REDIS_URL must be redis:\/\/host:port/, 'one slash');
  const problems = (url: string) => {
    try {
      loadConfig({ REDIS_URL: url, GATEWAY_SESSION_SECRET: TEST_SECRET });
      return [];
    } catch (err) {
      return (err as ConfigError).problems;
    }
  };
  for (const bad of ['redis:/127.0.0.1:6379', 'redis:127.0.0.1:6379', 'redis:///tmp/redis.sock', 'rediss:/cache.internal:6380', 'redis://cache.internal:6379/sessions', 'redis://cache.internal:6379?path=/tmp/redis.sock']) {
    t.match(problems(bad).join('\n'), /REDIS_URL must be redis:\/\/host:port/, bad);
  }
  for (const good of ['redis://127.0.0.1:6379', 'redis://cache.internal:6379/2', 'rediss://user:pw@cache.internal:6380', 'redis://:pw@[::1]:6379/', 'REDIS://cache:6379']) {
    t.same(problems(good), [], good);
  }
});

t.test('6. a GATEWAY_USER_QUERY without username/password_hash columns stops start-up naming what is missing', async (t) => {
  const base = { DATABASE_URL: pg.url, GATEWAY_UPSTREAM: upstream.url, GATEWAY_PORT: '0', GATEWAY_ADMIN_PORT: '0', GATEWAY_HOST: '127.0.0.1', GATEWAY_ADMIN_HOST: '127.0.0.1' };
  const noAliases = await runCli(['serve'], { env: { ...base, GATEWAY_USER_QUERY: 'SELECT user_id, pass FROM accounts WHERE user_id = $1' } });
  oneLineFailure(t, noAliases, /GATEWAY_USER_QUERY returns no username or password_hash column \(it returns: user_id, pass\)/, 'no aliases');
  const halfAliased = await runCli(['serve'], { env: { ...base, GATEWAY_USER_QUERY: 'SELECT user_id AS username, pass FROM accounts WHERE user_id = $1' } });
  oneLineFailure(t, halfAliased, /GATEWAY_USER_QUERY returns no password_hash column/, 'password column not aliased');
  const noTable = await runCli(['serve'], { env: { ...base, GATEWAY_USER_QUERY: 'SELECT user_id AS username, pass AS password_hash FROM acounts WHERE user_id = $1' } });
  oneLineFailure(t, noTable, /GATEWAY_USER_QUERY fails: relation "acounts" does not exist/, 'a typo in the table name');
  const badRehash = await runCli(['serve'], { env: { ...base, GATEWAY_USER_QUERY: LEGACY_QUERY, GATEWAY_USER_REHASH_QUERY: 'UPDATE accounts SET password = $2 WHERE user_id = $1' } });
  oneLineFailure(t, badRehash, /GATEWAY_USER_REHASH_QUERY fails: column "password" .*does not exist/, 'a wrong column in the rehash query');
  t.equal((await pool.query<{ pass: string }>('SELECT pass FROM accounts WHERE user_id = $1', ['ann'])).rows[0]?.pass, ANN_PLAIN, 'the check wrote nothing');
});

t.test('6. PostgreSQL down at start-up: the gateway starts, and checks the query once PostgreSQL answers', async (t) => {
  const port = await freePort();
  const target = new URL(pg.url);
  const down = new URL(pg.url);
  down.port = String(port);
  const gw = await gateway({ DATABASE_URL: down.toString(), GATEWAY_USER_QUERY: 'SELECT user_id, pass FROM accounts WHERE user_id = $1' });
  t.ok(logged(gw.logs).some((e) => /will be checked once it is/.test(String(e.msg))), 'says the check is pending');
  // PostgreSQL "comes back" on the configured port: a relay to the real server.
  const relay = createServer((socket) => {
    const upstreamSocket = connect(Number(target.port || 5432), target.hostname);
    socket.pipe(upstreamSocket).pipe(socket);
    socket.on('error', () => upstreamSocket.destroy());
    upstreamSocket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => relay.listen(port, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => relay.close(resolve)));
  t.teardown(() => gw.stop());
  const found = await waitFor(() => logged(gw.logs).find((e) => /GATEWAY_USER_QUERY returns no username or password_hash/.test(String(e.msg))));
  t.ok(found, 'the wrong query is named in the log once PostgreSQL answers');
  t.equal(found?.level, 50, 'as an error');
});

t.test('7. embedded demo mode (a printed password) listens on loopback unless GATEWAY_HOST says otherwise', async (t) => {
  const embedded = loadConfig({});
  t.equal(embedded.host, '127.0.0.1');
  t.equal(embedded.adminHost, '127.0.0.1');
  t.equal(loadConfig({ GATEWAY_HOST: '0.0.0.0' }).host, '0.0.0.0', 'GATEWAY_HOST still wins');
  t.equal(loadConfig({ GATEWAY_UPSTREAM: upstream.url }).host, '0.0.0.0', 'a configured gateway keeps listening on all interfaces');

  const logs: string[] = [];
  const running = await startGateway(loadConfig({ GATEWAY_PORT: '0', GATEWAY_ADMIN_PORT: '0' }), {
    logger: createLogger('info', { write: (line: string) => void logs.push(line) }),
    announce: () => undefined,
  });
  t.teardown(() => running.shutdown());
  const bound = (server: { address(): unknown }) => (server.address() as { address: string }).address;
  t.equal(bound(running.app.server), '127.0.0.1', 'the proxy is bound to loopback');
  t.equal(bound(running.admin.server), '127.0.0.1', 'the admin listener too');
});

async function occupyPort(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port };
}

async function waitFor<T>(probe: () => T | undefined, timeoutMs = 30_000): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return undefined;
}
