// Configuration from the environment (SPEC section 2): defaults, durations, one clear line per
// problem naming the variable, secrets and their _FILE forms, and the embedded default mode.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError, loadConfig } from '../../src/config/config.js';

const SECRET_A = 'a'.repeat(32);
const SECRET_B = 'b'.repeat(40);
/** The assertions the helpers below need; both the root `t` and subtests provide them. */
type Asserts = Pick<typeof t, 'type' | 'fail' | 'equal' | 'match' | 'notMatch'>;

const REDIS = { REDIS_URL: 'redis://127.0.0.1:6379', GATEWAY_SESSION_SECRET: SECRET_A };

/** The problems loadConfig reports for `env`; fails the test when it does not throw. */
function problemsOf(t: Asserts, env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    t.type(err, ConfigError);
    return (err as ConfigError).problems;
  }
  t.fail(`expected a ConfigError for ${JSON.stringify(env)}`);
  return [];
}

/** Exactly one problem line names `variable`, and it is a single line. */
function assertNamed(t: Asserts, problems: string[], variable: string, pattern?: RegExp): void {
  const named = problems.filter((p) => new RegExp(`\\b${variable}\\b`).test(p));
  t.equal(named.length, 1, `one problem names ${variable}: ${JSON.stringify(problems)}`);
  if (named[0] !== undefined) {
    t.notMatch(named[0], /\n/, `${variable}: one line`);
    if (pattern) t.match(named[0], pattern);
  }
}

t.test('defaults with an empty environment', async (t) => {
  const c = loadConfig({});
  t.equal(c.upstream, null, 'built-in whoami');
  t.equal(c.host, '127.0.0.1', 'embedded demo mode listens on loopback');
  t.equal(c.port, 8000);
  t.equal(c.publicUrl, null);
  t.equal(c.trustedProxies, null);
  t.same(c.trustedProxyCidrs, []);
  t.equal(c.upstreamTimeoutMs, 30_000);
  t.equal(c.preserveHost, true);
  t.equal(c.headerUser, 'X-Forwarded-User');
  t.equal(c.headerEmail, 'X-Forwarded-Email');
  t.equal(c.headerGroups, 'X-Forwarded-Groups');
  t.equal(c.accessLog, true);
  t.equal(c.verifyAccessLog, false, 'the proxy in front logs forward-auth requests');
  t.equal(c.shutdownDelayMs, 0);
  t.equal(c.shutdownTimeoutMs, 25_000);
  t.equal(c.staleSessionGraceMs, 0);
  t.equal(c.adminHost, '127.0.0.1');
  t.equal(c.adminPort, 9180);
  t.equal(c.redis, null, 'in-process store');
  t.equal(c.databaseUrl, null, 'generated user');
  t.same(c.sessionSecrets, []);
  t.equal(c.sessionSecretGenerated, true);
  t.equal(c.idleTimeoutMs, 30 * 60_000);
  t.equal(c.maxLifetimeMs, 12 * 3_600_000);
  t.equal(c.cookieName, 'sgw_session');
  t.equal(c.cookieDomain, null);
  t.equal(c.authPrefix, '/_auth');
  t.same(c.publicPaths, []);
  t.same(c.logoutPaths, []);
  t.equal(c.userQuery, null);
  t.equal(c.userRehashQuery, null);
  t.equal(c.allowPlaintextPasswords, false);
  t.equal(c.redisPrefix, 'sgw:');
  t.equal(c.loginMaxAttempts, 5);
  t.equal(c.loginWindowMs, 15 * 60_000);
  t.equal(c.loginMaxAttemptsPerIp, 50, '10 × GATEWAY_LOGIN_MAX_ATTEMPTS');
  t.equal(c.logLevel, 'info');
  t.equal(c.embedded, true);
  t.equal(c.cookieSecure, false, 'embedded mode: plain http on localhost works');
});

t.test('the per-IP login limit follows GATEWAY_LOGIN_MAX_ATTEMPTS unless set', async (t) => {
  t.equal(loadConfig({ GATEWAY_LOGIN_MAX_ATTEMPTS: '3' }).loginMaxAttemptsPerIp, 30);
  t.equal(loadConfig({ GATEWAY_LOGIN_MAX_ATTEMPTS: '3', GATEWAY_LOGIN_MAX_ATTEMPTS_PER_IP: '7' }).loginMaxAttemptsPerIp, 7);
});

t.test('settings are read and trimmed', async (t) => {
  const c = loadConfig({
    ...REDIS,
    GATEWAY_UPSTREAM: 'http://127.0.0.1:8080',
    GATEWAY_HOST: ' 127.0.0.1 ',
    GATEWAY_PORT: '0',
    GATEWAY_ADMIN_PORT: '65535',
    GATEWAY_PUBLIC_URL: 'https://app.example.com',
    GATEWAY_TRUSTED_PROXIES: '10.0.0.0/8, 192.168.1.1 ,fd00::/8',
    GATEWAY_PRESERVE_HOST: 'no',
    GATEWAY_ACCESS_LOG: 'OFF',
    GATEWAY_VERIFY_ACCESS_LOG: 'yes',
    GATEWAY_HEADER_USER: 'Remote-User',
    GATEWAY_COOKIE_NAME: 'app_sess',
    GATEWAY_COOKIE_DOMAIN: 'example.com',
    GATEWAY_AUTH_PREFIX: '/.gateway/auth',
    GATEWAY_PUBLIC_PATHS: '/health, /static/',
    GATEWAY_LOGOUT_PATHS: '/logout',
    GATEWAY_REDIS_PREFIX: 'app1:',
    LOG_LEVEL: 'debug',
  });
  t.equal(c.upstream?.origin, 'http://127.0.0.1:8080');
  t.equal(c.host, '127.0.0.1');
  t.equal(c.port, 0);
  t.equal(c.adminPort, 65535);
  t.equal(c.publicUrl?.origin, 'https://app.example.com');
  t.same(c.trustedProxyCidrs, ['10.0.0.0/8', '192.168.1.1', 'fd00::/8']);
  t.equal(c.trustedProxies?.check('10.1.2.3', 'ipv4'), true);
  t.equal(c.trustedProxies?.check('192.168.1.1', 'ipv4'), true);
  t.equal(c.trustedProxies?.check('192.168.1.2', 'ipv4'), false, 'a bare address is a /32');
  t.equal(c.trustedProxies?.check('fd00::1', 'ipv6'), true);
  t.equal(c.trustedProxies?.check('8.8.8.8', 'ipv4'), false);
  t.equal(c.preserveHost, false);
  t.equal(c.accessLog, false);
  t.equal(c.verifyAccessLog, true);
  t.equal(c.headerUser, 'Remote-User');
  t.equal(c.cookieName, 'app_sess');
  t.equal(c.cookieDomain, 'example.com');
  t.equal(c.authPrefix, '/.gateway/auth');
  t.same(c.publicPaths, ['/health', '/static/']);
  t.same(c.logoutPaths, ['/logout']);
  t.equal(c.redisPrefix, 'app1:');
  t.equal(c.logLevel, 'debug');
  t.same(c.redis, { mode: 'standalone', url: 'redis://127.0.0.1:6379' });
});

t.test('durations: plain seconds or units', async (t) => {
  const idle = (value: string) => loadConfig({ GATEWAY_SESSION_IDLE_TIMEOUT: value }).idleTimeoutMs;
  t.equal(idle('1800'), 1_800_000, '1800 = seconds');
  t.equal(idle('30m'), 30 * 60_000);
  t.equal(idle('12h'), 12 * 3_600_000);
  t.equal(idle('1h30m'), 90 * 60_000);
  t.equal(idle('90s'), 90_000);
  t.equal(idle('1d'), 86_400_000);
  t.equal(idle(' 45m '), 45 * 60_000, 'surrounding spaces are ignored');
  t.equal(loadConfig({ GATEWAY_UPSTREAM_TIMEOUT: '250ms' }).upstreamTimeoutMs, 250);
  t.equal(loadConfig({ GATEWAY_UPSTREAM_TIMEOUT: '1.5' }).upstreamTimeoutMs, 1_500, 'fractional seconds');
  t.equal(loadConfig({}).requestTimeoutMs, 60_000, 'GATEWAY_REQUEST_TIMEOUT defaults to 60s');
  t.equal(loadConfig({ GATEWAY_REQUEST_TIMEOUT: '5m' }).requestTimeoutMs, 300_000);
  t.equal(loadConfig({ GATEWAY_SHUTDOWN_DELAY: '0' }).shutdownDelayMs, 0);
  t.equal(loadConfig({ GATEWAY_SHUTDOWN_TIMEOUT: '1m5s' }).shutdownTimeoutMs, 65_000);
  t.equal(loadConfig({ GATEWAY_SESSION_MAX_LIFETIME: '8h' }).maxLifetimeMs, 8 * 3_600_000);
  t.equal(loadConfig({ GATEWAY_LOGIN_WINDOW: '5m' }).loginWindowMs, 5 * 60_000);
  t.equal(loadConfig({ GATEWAY_STALE_SESSION_GRACE: '2m' }).staleSessionGraceMs, 120_000);
  t.equal(loadConfig({}).userRecheckIntervalMs, 5 * 60_000, 'GATEWAY_USER_RECHECK_INTERVAL defaults to 5m');
  t.equal(loadConfig({ GATEWAY_USER_RECHECK_INTERVAL: '0' }).userRecheckIntervalMs, 0, '0: never');
  t.equal(loadConfig({ GATEWAY_USER_RECHECK_INTERVAL: '30s' }).userRecheckIntervalMs, 30_000);
  assertNamed(t, problemsOf(t, { GATEWAY_USER_RECHECK_INTERVAL: 'often' }), 'GATEWAY_USER_RECHECK_INTERVAL', /duration/);
  for (const bad of ['soon', '30 m', '-5', '5x', 'm', '1h-30m', '30M']) {
    const problems = problemsOf(t, { GATEWAY_SESSION_IDLE_TIMEOUT: bad });
    t.equal(problems.length, 1, `${JSON.stringify(bad)} is refused`);
    assertNamed(t, problems, 'GATEWAY_SESSION_IDLE_TIMEOUT', /duration/);
  }
  assertNamed(t, problemsOf(t, { GATEWAY_SESSION_IDLE_TIMEOUT: '500ms' }), 'GATEWAY_SESSION_IDLE_TIMEOUT', /at least/);
});

t.test('every problem is reported together, one line each naming the variable', async (t) => {
  const env = {
    GATEWAY_PORT: 'abc',
    GATEWAY_ADMIN_PORT: '70000',
    GATEWAY_SESSION_IDLE_TIMEOUT: 'soon',
    GATEWAY_ACCESS_LOG: 'maybe',
    GATEWAY_UPSTREAM: 'ftp://files.example.com',
    REDIS_URL: 'redis://127.0.0.1:6379',
    GATEWAY_SESSION_SECRET: 'too-short',
    GATEWAY_TRUSTED_PROXIES: '10.0.0.0/33',
    GATEWAY_USER_QUERY: 'SELECT username, password_hash FROM users WHERE username = ?',
    LOG_LEVEL: 'loud',
  };
  const problems = problemsOf(t, env);
  t.equal(problems.length, Object.keys(env).length - 1, `one line per bad variable: ${JSON.stringify(problems, null, 2)}`);
  assertNamed(t, problems, 'GATEWAY_PORT', /whole number.*"abc"/);
  assertNamed(t, problems, 'GATEWAY_ADMIN_PORT', /65535.*"70000"/);
  assertNamed(t, problems, 'GATEWAY_SESSION_IDLE_TIMEOUT', /"soon"/);
  assertNamed(t, problems, 'GATEWAY_ACCESS_LOG', /true or false.*"maybe"/);
  assertNamed(t, problems, 'GATEWAY_UPSTREAM', /http:\/\/ or https:\/\//);
  for (const withPath of ['http://127.0.0.1:8080/app', 'http://127.0.0.1:8080/?x=1', 'http://user:pw@127.0.0.1:8080']) {
    t.same(problemsOf(t, { GATEWAY_UPSTREAM: withPath }), ['GATEWAY_UPSTREAM must be an origin like http://127.0.0.1:8080 (no path, query or credentials: the request path is forwarded unchanged)'], withPath);
  }
  t.equal(loadConfig({ GATEWAY_UPSTREAM: 'http://127.0.0.1:8080/' }).upstream?.origin, 'http://127.0.0.1:8080', 'a trailing slash is an origin');
  assertNamed(t, problems, 'GATEWAY_SESSION_SECRET', /shorter than 32/);
  assertNamed(t, problems, 'GATEWAY_TRUSTED_PROXIES', /10\.0\.0\.0\/33/);
  assertNamed(t, problems, 'GATEWAY_USER_QUERY', /\$1/);
  assertNamed(t, problems, 'LOG_LEVEL', /"loud"/);

  let message = '';
  try {
    loadConfig(env);
  } catch (err) {
    message = (err as Error).message;
  }
  t.same(message.split('\n').slice(1), problems, 'the error message lists the same lines');
});

t.test('individual validation problems', async (t) => {
  const cases: Array<[Record<string, string>, string, RegExp?]> = [
    [{ GATEWAY_PORT: '-1' }, 'GATEWAY_PORT'],
    [{ GATEWAY_PORT: '80.5' }, 'GATEWAY_PORT'],
    [{ GATEWAY_PORT: '65536' }, 'GATEWAY_PORT'],
    [{ GATEWAY_LOGIN_MAX_ATTEMPTS: '0' }, 'GATEWAY_LOGIN_MAX_ATTEMPTS'],
    [{ GATEWAY_PRESERVE_HOST: 'yep' }, 'GATEWAY_PRESERVE_HOST'],
    [{ GATEWAY_COOKIE_SECURE: 'sometimes' }, 'GATEWAY_COOKIE_SECURE'],
    [{ GATEWAY_UPSTREAM: 'not a url' }, 'GATEWAY_UPSTREAM', /not a valid URL/],
    [{ DATABASE_URL: 'mysql://db/app' }, 'DATABASE_URL', /postgres:\/\//],
    [{ REDIS_URL: 'http://127.0.0.1:6379', GATEWAY_SESSION_SECRET: SECRET_A }, 'REDIS_URL', /redis:\/\/ or rediss:\/\//],
    [{ GATEWAY_PUBLIC_URL: 'https://app.example.com/app' }, 'GATEWAY_PUBLIC_URL', /origin only/],
    [{ GATEWAY_TRUSTED_PROXIES: 'proxy.internal' }, 'GATEWAY_TRUSTED_PROXIES'],
    [{ GATEWAY_TRUSTED_PROXIES: '10.0.0.0/' }, 'GATEWAY_TRUSTED_PROXIES'],
    [{ GATEWAY_TRUSTED_PROXIES: '0.0.0.0/0' }, 'GATEWAY_TRUSTED_PROXIES'],
    [{ GATEWAY_TRUSTED_PROXIES: '10.0.0.0/8x' }, 'GATEWAY_TRUSTED_PROXIES'],
    [{ GATEWAY_TRUSTED_PROXIES: 'fd00::/129' }, 'GATEWAY_TRUSTED_PROXIES'],
    [{ GATEWAY_USER_REHASH_QUERY: 'UPDATE users SET hash = $1' }, 'GATEWAY_USER_REHASH_QUERY', /\$2/],
    [{ GATEWAY_USER_QUERY: 'SELECT * FROM users WHERE name = $1 AND tenant = $2' }, 'GATEWAY_USER_QUERY', /only 1/],
    [{ GATEWAY_AUTH_PREFIX: 'auth' }, 'GATEWAY_AUTH_PREFIX'],
    [{ GATEWAY_PUBLIC_PATHS: 'static' }, 'GATEWAY_PUBLIC_PATHS', /must start with \//],
    [{ GATEWAY_PUBLIC_PATHS: '/ok,/a?b' }, 'GATEWAY_PUBLIC_PATHS', /"\/a\?b": must not contain "\?" or "#"/],
    [{ GATEWAY_LOGOUT_PATHS: '/x/%2Flogout' }, 'GATEWAY_LOGOUT_PATHS', /encoded slash/],
    [{ GATEWAY_HEADER_USER: 'Remote User' }, 'GATEWAY_HEADER_USER'],
    [{ GATEWAY_COOKIE_NAME: 'a;b' }, 'GATEWAY_COOKIE_NAME'],
    [{ REDIS_SENTINELS: 'a:26379', GATEWAY_SESSION_SECRET: SECRET_A }, 'REDIS_SENTINEL_NAME'],
    [{ REDIS_CLUSTER_NODES: 'a:7000,b', GATEWAY_SESSION_SECRET: SECRET_A }, 'REDIS_CLUSTER_NODES', /"b"/],
  ];
  for (const [env, variable, pattern] of cases) {
    const problems = problemsOf(t, env);
    t.equal(problems.length, 1, `${JSON.stringify(env)} → one problem: ${JSON.stringify(problems)}`);
    assertNamed(t, problems, variable, pattern);
  }
  const both = problemsOf(t, { ...REDIS, REDIS_CLUSTER_NODES: 'a:7000' });
  t.match(both.join('\n'), /REDIS_URL.*REDIS_CLUSTER_NODES.*only one/, 'Redis forms are alternatives');
});

t.test('GATEWAY_SESSION_SECRET is required whenever Redis is configured', async (t) => {
  const forms: Array<Record<string, string>> = [
    { REDIS_URL: 'redis://127.0.0.1:6379' },
    { REDIS_SENTINELS: 's1:26379,s2:26379', REDIS_SENTINEL_NAME: 'mymaster' },
    { REDIS_CLUSTER_NODES: 'n1:7000,n2:7001' },
  ];
  for (const redisEnv of forms) {
    const problems = problemsOf(t, redisEnv);
    t.equal(problems.length, 1, `${Object.keys(redisEnv)[0]}: ${JSON.stringify(problems)}`);
    assertNamed(t, problems, 'GATEWAY_SESSION_SECRET', /required/);
    const c = loadConfig({ ...redisEnv, GATEWAY_SESSION_SECRET: SECRET_A });
    t.same(c.sessionSecrets, [SECRET_A]);
    t.equal(c.sessionSecretGenerated, false);
  }
  t.same(loadConfig({ REDIS_SENTINELS: 's1:26379, [::1]:26380', REDIS_SENTINEL_NAME: 'mymaster', GATEWAY_SESSION_SECRET: SECRET_A }).redis, {
    mode: 'sentinel',
    sentinels: [{ host: 's1', port: 26379 }, { host: '::1', port: 26380 }],
    name: 'mymaster',
  });
  t.same(loadConfig({ REDIS_CLUSTER_NODES: 'n1:7000,n2:7001', GATEWAY_SESSION_SECRET: SECRET_A }).redis, {
    mode: 'cluster',
    nodes: [{ host: 'n1', port: 7000 }, { host: 'n2', port: 7001 }],
  });
  t.equal(loadConfig({ DATABASE_URL: 'postgres://db/app' }).sessionSecretGenerated, true, 'without Redis a secret may be generated');
});

t.test('comma-separated secrets: all kept in order, each checked', async (t) => {
  t.same(loadConfig({ ...REDIS, GATEWAY_SESSION_SECRET: `${SECRET_A}, ${SECRET_B} ,` }).sessionSecrets, [SECRET_A, SECRET_B], 'the first signs, all verify');
  const problems = problemsOf(t, { ...REDIS, GATEWAY_SESSION_SECRET: `${SECRET_A},short` });
  t.equal(problems.length, 1);
  assertNamed(t, problems, 'GATEWAY_SESSION_SECRET', /#2 is shorter than 32/);
  assertNamed(t, problemsOf(t, { ...REDIS, GATEWAY_SESSION_SECRET: ' , ' }), 'GATEWAY_SESSION_SECRET', /empty/);
});

t.test('_FILE forms read secrets from mounted files', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const secretFile = join(dir, 'secret');
  const dbFile = join(dir, 'database-url');
  const redisFile = join(dir, 'redis-url');
  writeFileSync(secretFile, `${SECRET_A},${SECRET_B}\n`);
  writeFileSync(dbFile, 'postgres://gw:s3cret@db.internal:5432/app\r\n');
  writeFileSync(redisFile, 'rediss://:pw@cache.internal:6380');

  const c = loadConfig({ REDIS_URL_FILE: redisFile, GATEWAY_SESSION_SECRET_FILE: secretFile, DATABASE_URL_FILE: dbFile });
  t.same(c.sessionSecrets, [SECRET_A, SECRET_B], 'trailing newline dropped, commas split');
  t.equal(c.databaseUrl, 'postgres://gw:s3cret@db.internal:5432/app');
  t.same(c.redis, { mode: 'standalone', url: 'rediss://:pw@cache.internal:6380' });
  t.equal(c.embedded, false);

  const both = problemsOf(t, { ...REDIS, GATEWAY_SESSION_SECRET_FILE: secretFile, DATABASE_URL: 'postgres://db/app', DATABASE_URL_FILE: dbFile });
  t.equal(both.length, 2, JSON.stringify(both));
  t.match(both.join('\n'), /GATEWAY_SESSION_SECRET and GATEWAY_SESSION_SECRET_FILE are both set/);
  t.match(both.join('\n'), /DATABASE_URL and DATABASE_URL_FILE are both set/);

  const missing = problemsOf(t, { REDIS_URL: 'redis://127.0.0.1:6379', GATEWAY_SESSION_SECRET_FILE: join(dir, 'nope') });
  t.ok(missing.some((p) => /^GATEWAY_SESSION_SECRET_FILE: cannot read .*nope \(ENOENT\)$/.test(p)), JSON.stringify(missing));
  t.notOk(missing.some((p) => p.includes(SECRET_A)), 'no secret value in a problem line');

  writeFileSync(secretFile, 'short\n');
  const short = problemsOf(t, { REDIS_URL: 'redis://127.0.0.1:6379', GATEWAY_SESSION_SECRET_FILE: secretFile });
  assertNamed(t, short, 'GATEWAY_SESSION_SECRET', /shorter than 32/);
  t.notOk(short.some((p) => p.includes('short\n') || p.endsWith('short')), 'the secret itself is not echoed');
});

t.test('embedded default mode and the Secure cookie default', async (t) => {
  const embedded = loadConfig({});
  t.equal(embedded.embedded, true);
  t.equal(embedded.cookieSecure, false);
  t.equal(loadConfig({ GATEWAY_COOKIE_SECURE: 'true' }).cookieSecure, true, 'an explicit setting wins in embedded mode');

  // Each of the three is replaced independently; any one of them ends the full embedded mode.
  for (const env of [{ GATEWAY_UPSTREAM: 'http://127.0.0.1:8080' }, { DATABASE_URL: 'postgres://db/app' }, REDIS]) {
    const c = loadConfig(env);
    t.equal(c.embedded, false, `${Object.keys(env)[0]} ends embedded mode`);
    t.equal(c.cookieSecure, true, `${Object.keys(env)[0]}: cookies are Secure by default`);
    t.equal(loadConfig({ ...env, GATEWAY_COOKIE_SECURE: 'false' }).cookieSecure, false, 'explicit false is honoured');
  }
  const upstreamOnly = loadConfig({ GATEWAY_UPSTREAM: 'http://127.0.0.1:8080' });
  t.equal(upstreamOnly.redis, null, 'still the in-process store');
  t.equal(upstreamOnly.databaseUrl, null, 'still the generated user');
  t.equal(loadConfig({ DATABASE_URL: 'postgres://db/app' }).upstream, null, 'still the built-in whoami');
});

t.test('GATEWAY_USER_QUERY parameters are matched as whole numbers ($10 is not $1)', async (t) => {
  const err = t.throws(() => loadConfig({ GATEWAY_USER_QUERY: 'SELECT * FROM users WHERE id = $10' })) as unknown as ConfigError;
  t.match(err.problems.join('\n'), /GATEWAY_USER_QUERY must use the parameter \$1/);
  t.match(err.problems.join('\n'), /GATEWAY_USER_QUERY takes only 1 parameter/);
});

t.test('Redis timeouts are configurable durations', async (t) => {
  const c = loadConfig({ GATEWAY_REDIS_COMMAND_TIMEOUT: '500ms', GATEWAY_REDIS_CONNECT_TIMEOUT: '3s' });
  t.equal(c.redisCommandTimeoutMs, 500);
  t.equal(c.redisConnectTimeoutMs, 3_000);
  const d = loadConfig({});
  t.equal(d.redisCommandTimeoutMs, 2_000);
  t.equal(d.redisConnectTimeoutMs, 5_000);
  const err = t.throws(() => loadConfig({ GATEWAY_REDIS_COMMAND_TIMEOUT: 'soon' })) as unknown as ConfigError;
  t.match(err.problems.join('\n'), /GATEWAY_REDIS_COMMAND_TIMEOUT must be a duration/);
});

t.test('WebSocket settings: revalidation interval and message size limit', async (t) => {
  const d = loadConfig({});
  t.equal(d.websocketRevalidateIntervalMs, 30_000);
  t.equal(d.websocketMaxMessageBytes, 1024 * 1024);
  const c = loadConfig({ GATEWAY_WEBSOCKET_REVALIDATE_INTERVAL: '5s', GATEWAY_WEBSOCKET_MAX_MESSAGE_BYTES: '65536' });
  t.equal(c.websocketRevalidateIntervalMs, 5_000);
  t.equal(c.websocketMaxMessageBytes, 65_536);
  const err = t.throws(() => loadConfig({ GATEWAY_WEBSOCKET_REVALIDATE_INTERVAL: '10ms', GATEWAY_WEBSOCKET_MAX_MESSAGE_BYTES: '1MB' })) as unknown as ConfigError;
  t.match(err.problems.join('\n'), /GATEWAY_WEBSOCKET_REVALIDATE_INTERVAL must be at least 100 ms/);
  t.match(err.problems.join('\n'), /GATEWAY_WEBSOCKET_MAX_MESSAGE_BYTES must be a whole number/);
});

t.test('timer-driven durations are capped where Node would clamp them to 1 ms', async (t) => {
  for (const name of ['GATEWAY_UPSTREAM_TIMEOUT', 'GATEWAY_REQUEST_TIMEOUT', 'GATEWAY_SHUTDOWN_DELAY', 'GATEWAY_SHUTDOWN_TIMEOUT', 'GATEWAY_REDIS_COMMAND_TIMEOUT', 'GATEWAY_REDIS_CONNECT_TIMEOUT']) {
    t.same(problemsOf(t, { [name]: '25d' }), [`${name} must be at most 2147483647 ms (got "25d")`], name);
  }
  t.equal(loadConfig({ GATEWAY_SESSION_MAX_LIFETIME: '30d' }).maxLifetimeMs, 30 * 86_400_000, 'a long session lifetime is a TTL, not a timer: allowed');
});

t.test('WebSocket checks run at least twice per idle timeout', async (t) => {
  t.equal(loadConfig({ GATEWAY_SESSION_IDLE_TIMEOUT: '20s' }).websocketRevalidateIntervalMs, 10_000, 'the default follows a short idle timeout');
  t.equal(loadConfig({}).websocketRevalidateIntervalMs, 30_000);
  t.same(problemsOf(t, { GATEWAY_SESSION_IDLE_TIMEOUT: '1m', GATEWAY_WEBSOCKET_REVALIDATE_INTERVAL: '45s' }), ['GATEWAY_WEBSOCKET_REVALIDATE_INTERVAL must be at most half of GATEWAY_SESSION_IDLE_TIMEOUT (30000 ms)']);
});

t.test('cookie name prefixes: __Secure- needs Secure, __Host- needs Secure and no Domain', async (t) => {
  assertNamed(t, problemsOf(t, { ...REDIS, GATEWAY_COOKIE_NAME: '__Secure-sgw', GATEWAY_COOKIE_SECURE: 'false' }), 'GATEWAY_COOKIE_NAME', /__Secure- cookie needs GATEWAY_COOKIE_SECURE=true/);
  assertNamed(t, problemsOf(t, { ...REDIS, GATEWAY_COOKIE_NAME: '__Host-sgw', GATEWAY_COOKIE_SECURE: 'false' }), 'GATEWAY_COOKIE_NAME', /__Host- cookie needs GATEWAY_COOKIE_SECURE=true/);
  assertNamed(t, problemsOf(t, { ...REDIS, GATEWAY_COOKIE_NAME: '__Host-sgw', GATEWAY_COOKIE_DOMAIN: 'example.com' }), 'GATEWAY_COOKIE_NAME', /__Host- cookie must not have GATEWAY_COOKIE_DOMAIN/);
  t.equal(problemsOf(t, { ...REDIS, GATEWAY_COOKIE_NAME: '__host-sgw', GATEWAY_COOKIE_DOMAIN: 'example.com', GATEWAY_COOKIE_SECURE: 'false' }).filter((p) => p.startsWith('GATEWAY_COOKIE_NAME')).length, 2, 'prefixes match without case; both rules reported at once');
  assertNamed(t, problemsOf(t, { GATEWAY_COOKIE_NAME: '__Secure-sgw' }), 'GATEWAY_COOKIE_NAME', /GATEWAY_COOKIE_SECURE=true/); // embedded mode: Secure off by default
  t.equal(loadConfig({ ...REDIS, GATEWAY_COOKIE_NAME: '__Host-sgw' }).cookieName, '__Host-sgw', 'Secure (the default) and host-only: accepted');
  t.equal(loadConfig({ ...REDIS, GATEWAY_COOKIE_NAME: '__Secure-sgw', GATEWAY_COOKIE_DOMAIN: 'example.com' }).cookieDomain, 'example.com', '__Secure- may have a Domain');
  t.equal(loadConfig({ ...REDIS, GATEWAY_COOKIE_NAME: 'my__Host-sgw', GATEWAY_COOKIE_SECURE: 'false' }).cookieName, 'my__Host-sgw', 'only a leading prefix counts');
});

t.test('GATEWAY_ALLOWED_HOSTS: host names or addresses with an optional port, kept in lower case', async (t) => {
  t.equal(loadConfig({}).allowedHosts, null, 'unset: any well-formed Host');
  t.same(loadConfig({ GATEWAY_ALLOWED_HOSTS: 'App.Example.com, 10.0.0.5:8000 ,[::1]:8000, intranet_host.' }).allowedHosts, ['app.example.com', '10.0.0.5:8000', '[::1]:8000', 'intranet_host']);
  assertNamed(t, problemsOf(t, { GATEWAY_ALLOWED_HOSTS: 'app.example.com, https://app.example.com, a/b' }), 'GATEWAY_ALLOWED_HOSTS', /"https:\/\/app\.example\.com", "a\/b" is not a host name/);
  assertNamed(t, problemsOf(t, { GATEWAY_ALLOWED_HOSTS: 'app.example.com:70000' }), 'GATEWAY_ALLOWED_HOSTS');
});

t.test('managed Redis credentials (REDIS_USERNAME/REDIS_PASSWORD, Sentinel pair, REDIS_TLS, REDIS_CA_FILE)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-redis-cred-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const PASSWORD = 'Sup3r-Secret-Redis-Pw';
  const SENTINEL_PASSWORD = 'Sentinel-Only-Pw-42';
  const passwordFile = join(dir, 'redis-password');
  writeFileSync(passwordFile, `${PASSWORD}\n`);
  const sentinelFile = join(dir, 'sentinel-password');
  writeFileSync(sentinelFile, SENTINEL_PASSWORD);
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, '-----BEGIN CERTIFICATE-----\n');
  const SENTINEL = { REDIS_SENTINELS: '127.0.0.1:26379', REDIS_SENTINEL_NAME: 'mymaster', GATEWAY_SESSION_SECRET: SECRET_A };

  t.same(loadConfig({ ...REDIS, REDIS_USERNAME: 'gateway', REDIS_PASSWORD: PASSWORD }).redis, {
    mode: 'standalone',
    url: 'redis://127.0.0.1:6379',
    username: 'gateway',
    password: PASSWORD,
  });
  t.same(loadConfig({ ...REDIS, REDIS_PASSWORD_FILE: passwordFile }).redis, { mode: 'standalone', url: 'redis://127.0.0.1:6379', password: PASSWORD }, '_FILE, trailing newline dropped');
  t.same(
    loadConfig({ ...SENTINEL, REDIS_PASSWORD: PASSWORD, REDIS_SENTINEL_USERNAME: 'watcher', REDIS_SENTINEL_PASSWORD_FILE: sentinelFile, REDIS_TLS: 'true' }).redis,
    {
      mode: 'sentinel',
      sentinels: [{ host: '127.0.0.1', port: 26379 }],
      name: 'mymaster',
      password: PASSWORD,
      sentinelUsername: 'watcher',
      sentinelPassword: SENTINEL_PASSWORD,
      tls: true,
    },
  );
  t.same(loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:7000', GATEWAY_SESSION_SECRET: SECRET_A, REDIS_PASSWORD: PASSWORD }).redis, {
    mode: 'cluster',
    nodes: [{ host: '127.0.0.1', port: 7000 }],
    password: PASSWORD,
  });
  t.equal(loadConfig({ ...REDIS, REDIS_CA_FILE: caFile }).redisTlsCa, '-----BEGIN CERTIFICATE-----\n', 'REDIS_CA_FILE');
  t.equal(loadConfig({ ...REDIS, GATEWAY_REDIS_CA_FILE: caFile }).redisTlsCa, '-----BEGIN CERTIFICATE-----\n', 'the older name still works');

  const cases: [string, Record<string, string>, RegExp][] = [
    ['REDIS_PASSWORD', { ...REDIS, REDIS_PASSWORD: PASSWORD, REDIS_PASSWORD_FILE: passwordFile }, /REDIS_PASSWORD and REDIS_PASSWORD_FILE are both set/],
    ['REDIS_SENTINEL_PASSWORD', { ...SENTINEL, REDIS_SENTINEL_PASSWORD: SENTINEL_PASSWORD, REDIS_SENTINEL_PASSWORD_FILE: sentinelFile }, /both set/],
    ['REDIS_URL', { GATEWAY_SESSION_SECRET: SECRET_A, REDIS_URL: `redis://:${PASSWORD}@127.0.0.1:6379`, REDIS_PASSWORD: PASSWORD }, /one place only/],
    ['REDIS_USERNAME', { ...REDIS, REDIS_USERNAME: 'gateway' }, /needs REDIS_PASSWORD/],
    ['REDIS_SENTINEL_USERNAME', { ...REDIS, REDIS_SENTINEL_PASSWORD: SENTINEL_PASSWORD }, /only apply with REDIS_SENTINELS/],
    ['REDIS_TLS', { ...REDIS, REDIS_TLS: 'true' }, /rediss:\/\//],
    ['REDIS_CA_FILE', { ...REDIS, REDIS_CA_FILE: caFile, GATEWAY_REDIS_CA_FILE: caFile }, /both set/],
    ['REDIS_PASSWORD_FILE', { ...REDIS, REDIS_PASSWORD_FILE: join(dir, 'nope') }, /cannot read .*\(ENOENT\)/],
  ];
  for (const [variable, env, pattern] of cases) {
    const problems = problemsOf(t, env);
    assertNamed(t, problems, variable, pattern);
    for (const secret of [PASSWORD, SENTINEL_PASSWORD]) t.notOk(problems.join('\n').includes(secret), `${variable}: no password in any problem line`);
  }
  const noRedis = problemsOf(t, { REDIS_PASSWORD: PASSWORD });
  t.match(noRedis.join('\n'), /REDIS_PASSWORD are set but no Redis is/);
  t.notOk(noRedis.join('\n').includes(PASSWORD), 'no password echoed');
});

t.test('GATEWAY_MAX_SESSIONS_PER_USER: 0 (no cap) by default, a whole number otherwise', async (t) => {
  t.equal(loadConfig({}).maxSessionsPerUser, 0);
  t.equal(loadConfig({ GATEWAY_MAX_SESSIONS_PER_USER: '3' }).maxSessionsPerUser, 3);
  for (const bad of ['-1', 'two', '1.5']) assertNamed(t, problemsOf(t, { GATEWAY_MAX_SESSIONS_PER_USER: bad }), 'GATEWAY_MAX_SESSIONS_PER_USER', /whole number/);
});

t.test('GATEWAY_ADMIN_TOKEN: off by default, long enough, header-safe, _FILE form, never echoed', async (t) => {
  t.equal(loadConfig({}).adminToken, null, 'no token: the admin session API is off');
  const token = 'T0ken-'.repeat(8);
  t.equal(loadConfig({ GATEWAY_ADMIN_TOKEN: token }).adminToken, token);
  const short = problemsOf(t, { GATEWAY_ADMIN_TOKEN: 'short-secret-value' });
  assertNamed(t, short, 'GATEWAY_ADMIN_TOKEN', /at least 32 characters/);
  t.notMatch(short.join('\n'), /short-secret-value/, 'the value is not echoed');
  const spaced = problemsOf(t, { GATEWAY_ADMIN_TOKEN: `${'x'.repeat(20)} ${'y'.repeat(20)}` });
  assertNamed(t, spaced, 'GATEWAY_ADMIN_TOKEN', /printable ASCII without spaces/);
  t.notMatch(spaced.join('\n'), /xxxxxxxx/);

  const dir = mkdtempSync(join(tmpdir(), 'sgw-admin-token-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'token');
  writeFileSync(file, `${token}\n`);
  t.equal(loadConfig({ GATEWAY_ADMIN_TOKEN_FILE: file }).adminToken, token, 'read from the mounted file, trailing newline dropped');
  assertNamed(t, problemsOf(t, { GATEWAY_ADMIN_TOKEN: token, GATEWAY_ADMIN_TOKEN_FILE: file }), 'GATEWAY_ADMIN_TOKEN', /both set/);
});

t.test('GATEWAY_SESSION_COMPACT_RECORDS: on by default, off for a rolling upgrade, anything else named', async (t) => {
  t.equal(loadConfig({ ...REDIS }).sessionCompactRecords, true);
  t.equal(loadConfig({ ...REDIS, GATEWAY_SESSION_COMPACT_RECORDS: 'false' }).sessionCompactRecords, false);
  assertNamed(t, problemsOf(t, { ...REDIS, GATEWAY_SESSION_COMPACT_RECORDS: 'sometimes' }), 'GATEWAY_SESSION_COMPACT_RECORDS', /true or false.*"sometimes"/);
});
