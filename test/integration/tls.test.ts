// TLS on the proxy listener (GATEWAY_TLS_CERT / GATEWAY_TLS_KEY) with a certificate the test makes.
import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { chmodSync, chownSync, copyFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import pgLib from 'pg';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { seedUsers, startTestGateway, uniquePrefix } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import { findExecutable, freePort, services, sleep, startPostgres } from '../helpers/services.js';
import { startEchoUpstream, type Echo } from '../helpers/upstream.js';

const dir = mkdtempSync(join(tmpdir(), 'sgw-tls-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const cert = join(dir, 'cert.pem');
const key = join(dir, 'key.pem');
execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
const ca = readFileSync(cert);

const { redis, pg } = await services(t);
await seedUsers(t, pg.url, [{ username: 'tess', password: 'tls-pass-123' }]);
const upstream = await startEchoUpstream();
t.teardown(() => upstream.close());
const gw = await startTestGateway(t, {
  REDIS_URL: redis.url, DATABASE_URL: pg.url, GATEWAY_UPSTREAM: upstream.url, GATEWAY_REDIS_PREFIX: uniquePrefix(),
  GATEWAY_TLS_CERT: cert, GATEWAY_TLS_KEY: key,
});
const port = new URL(gw.url).port;

function tlsRequest(path: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
  return new Promise<{ status: number; headers: import('node:http').IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers, ca, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    if (options.body) req.write(options.body);
    req.end();
  });
}

t.test('the listener speaks TLS: login and a proxied request over https', async (t) => {
  const login = await tlsRequest('/_auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'tess', password: 'tls-pass-123' }) });
  t.equal(login.status, 200);
  const cookie = (login.headers['set-cookie'] ?? []).find((c) => c.startsWith('sgw_session='))?.split(';')[0] ?? '';
  t.ok(cookie, 'a session cookie');
  const res = await tlsRequest('/over-tls', { headers: { cookie } });
  t.equal(res.status, 200);
  const echo = JSON.parse(res.body) as Echo;
  t.equal(echo.headers['x-forwarded-user'], 'tess');
  t.equal(echo.headers['x-forwarded-proto'], 'https', 'the app is told the client used https');
});

t.test('plain http on the TLS port is not served', async (t) => {
  await t.rejects(send(`http://127.0.0.1:${port}/`), 'a plain-http request gets no HTTP answer');
});

t.test('GATEWAY_TLS_CERT without GATEWAY_TLS_KEY, or an unreadable file, stops start-up with a clear line', async (t) => {
  const half = t.throws(() => loadConfig({ GATEWAY_TLS_CERT: cert })) as unknown as ConfigError;
  t.match(half.problems.join('\n'), /GATEWAY_TLS_CERT and GATEWAY_TLS_KEY go together/);
  const missing = t.throws(() => loadConfig({ GATEWAY_TLS_CERT: cert, GATEWAY_TLS_KEY: join(dir, 'nope.pem') })) as unknown as ConfigError;
  t.match(missing.problems.join('\n'), /GATEWAY_TLS_KEY: cannot read/);
  const swapped = t.throws(() => loadConfig({ GATEWAY_TLS_CERT: key, GATEWAY_TLS_KEY: cert })) as unknown as ConfigError;
  t.match(swapped.problems, [/^GATEWAY_TLS_CERT \/ GATEWAY_TLS_KEY: .* are not a usable PEM certificate and matching private key \(/], 'a pair that cannot serve TLS is one line, not a crash at listen');
});

t.test('rediss:// with a private CA (GATEWAY_REDIS_CA_FILE): sessions live in a TLS-only Redis', async (t) => {
  const bin = findExecutable('redis-server', ['/usr/bin', '/usr/sbin']);
  if (!bin) throw new Error('test setup: redis-server not found');
  const tlsPort = await freePort();
  const child = spawn(bin, ['--port', '0', '--tls-port', String(tlsPort), '--tls-cert-file', cert, '--tls-key-file', key, '--tls-auth-clients', 'no', '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  t.teardown(() => void child.kill('SIGKILL'));
  await sleep(300);
  const env = { DATABASE_URL: pg.url, GATEWAY_UPSTREAM: upstream.url, REDIS_URL: `rediss://127.0.0.1:${tlsPort}`, GATEWAY_REDIS_PREFIX: uniquePrefix() };
  const trusted = await startTestGateway(t, { ...env, GATEWAY_REDIS_CA_FILE: cert });
  const login = await send(`${trusted.url}/_auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'tess', password: 'tls-pass-123' }) });
  t.equal(login.status, 200, 'login stores its session over TLS');
  t.equal((await send(`${trusted.adminUrl}/readyz`)).status, 200);
  // Without the CA the certificate is not trusted: the gateway must refuse, not fall back to plain text.
  const untrusted = await startTestGateway(t, env);
  t.equal((await send(`${untrusted.adminUrl}/readyz`)).status, 503, 'an untrusted Redis certificate makes the replica not ready');
});

t.test('an https upstream with a private CA (GATEWAY_UPSTREAM_CA_FILE)', async (t) => {
  const app = createHttpsServer({ cert: readFileSync(cert), key: readFileSync(key) }, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ user: req.headers['x-forwarded-user'] }));
  });
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => { app.closeAllConnections(); app.close(() => resolve()); }));
  const appUrl = `https://127.0.0.1:${(app.address() as AddressInfo).port}`;
  const env = { REDIS_URL: redis.url, DATABASE_URL: pg.url, GATEWAY_UPSTREAM: appUrl, GATEWAY_REDIS_PREFIX: uniquePrefix() };
  const trusted = await startTestGateway(t, { ...env, GATEWAY_UPSTREAM_CA_FILE: cert });
  const untrusted = await startTestGateway(t, env);
  for (const [gw, expected] of [[trusted, 200], [untrusted, 502]] as const) {
    const login = await send(`${gw.url}/_auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'tess', password: 'tls-pass-123' }) });
    // Both ways to the app: the fast path's own connections (a plain GET) and the route's (`Content-Length: 0`).
    for (const way of [{}, { 'content-length': '0' }]) {
      const res = await send(`${gw.url}/app`, { headers: { cookie: `sgw_session=${encodeURIComponent(login.cookies.sgw_session ?? '')}`, accept: 'application/json', ...way } });
      t.equal(res.status, expected, expected === 200 ? 'trusted through the configured CA' : 'an unverifiable upstream certificate is a 502, never plain text');
      if (expected === 200) t.same(res.json(), { user: 'tess' });
    }
  }
});

t.test('PostgreSQL over TLS with sslmode=verify-full in DATABASE_URL', async (t) => {
  // Our own server (even with TEST_DATABASE_URL set): this test turns TLS on in its configuration.
  const db = await startPostgres({ local: true });
  t.teardown(() => db.stop());
  const admin = new pgLib.Client({ connectionString: db.url });
  await admin.connect();
  const dataDir = (await admin.query('SHOW data_directory')).rows[0].data_directory as string;
  const owner = statSync(dataDir);
  for (const [from, to] of [[cert, 'server.crt'], [key, 'server.key']] as const) {
    const target = join(dataDir, to);
    copyFileSync(from, target);
    chownSync(target, owner.uid, owner.gid);
    chmodSync(target, 0o600);
  }
  await admin.query('ALTER SYSTEM SET ssl = on');
  await admin.query('SELECT pg_reload_conf()');
  await admin.end();
  await sleep(300);
  await seedUsers(t, `${db.url}?sslmode=verify-full&sslrootcert=${encodeURIComponent(cert)}`, [{ username: 'sally', password: 'pg-tls-pass-1' }]);

  const otherCa = join(dir, 'other.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'other.key'), '-out', otherCa, '-days', '1', '-subj', '/CN=other'], { stdio: 'ignore' });
  const env = (ca: string) => ({ REDIS_URL: redis.url, GATEWAY_UPSTREAM: upstream.url, GATEWAY_REDIS_PREFIX: uniquePrefix(), DATABASE_URL: `${db.url}?sslmode=verify-full&sslrootcert=${encodeURIComponent(ca)}` });
  const body = JSON.stringify({ username: 'sally', password: 'pg-tls-pass-1' });
  const trusted = await startTestGateway(t, env(cert));
  const ok = await send(`${trusted.url}/_auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  t.equal(ok.status, 200, 'the user is read over a verified TLS connection');
  const untrusted = await startTestGateway(t, env(otherCa));
  const refused = await send(`${untrusted.url}/_auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  t.equal(refused.status, 503, 'a server certificate from another CA is refused: sign-in unavailable, never unverified');
});
