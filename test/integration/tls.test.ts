// TLS on the proxy listener (GATEWAY_TLS_CERT / GATEWAY_TLS_KEY) with a certificate the test makes.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { ConfigError, loadConfig } from '../../src/config.js';
import { seedUsers, startTestGateway, uniquePrefix } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import { services } from '../helpers/services.js';
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
});
