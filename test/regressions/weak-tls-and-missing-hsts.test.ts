// Attack: the TLS listener (GATEWAY_TLS_CERT/KEY) offered Node's default suites, CBC with SHA-1
// and TLS 1.0/1.1-era ciphers included, so a downgrade-capable network attacker had weak options;
// and there was no way to send HSTS, so a first plain-http visit could be stripped of TLS.
// Defence: app.ts createGatewayServer: TLS 1.2 minimum, ECDHE+AEAD suites only for 1.2;
// GATEWAY_HSTS sent on https responses only (the TLS listener, or a trusted proxy's
// X-Forwarded-Proto). GATEWAY_REQUEST_TIMEOUT applies to the TLS listener as well.
import t from 'tap';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { send } from '../helpers/http.js';
import { sleep } from '../helpers/services.js';
import { testBed } from './setup.js';

const dir = mkdtempSync(join(tmpdir(), 'sgw-tls-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const cert = join(dir, 'cert.pem');
const key = join(dir, 'key.pem');
execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
const ca = readFileSync(cert);

const HSTS = 'max-age=31536000; includeSubDomains';
const bed = await testBed(t, [{ username: 'tina', password: 'tina-Pw-000001' }]);
const tls = await bed.gateway({ GATEWAY_TLS_CERT: cert, GATEWAY_TLS_KEY: key, GATEWAY_HSTS: HSTS, GATEWAY_PUBLIC_PATHS: '/public', GATEWAY_REQUEST_TIMEOUT: '1s' });
const port = new URL(tls.url).port;

/** A real `openssl s_client` handshake offering only `cipher` (at security level 0, so the client itself refuses nothing). */
function handshake(args: string[]): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    const child = execFile('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', ...args], { timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ ok: error === null && /Cipher is (?!\(NONE\))/.test(stdout), output: stdout + stderr });
    });
    child.stdin?.end('Q\n');
  });
}

t.test('CBC-SHA1 suites and old protocol versions are refused; modern ones work', async (t) => {
  for (const cipher of ['ECDHE-RSA-AES128-SHA', 'ECDHE-RSA-AES256-SHA', 'AES128-SHA', 'AES256-SHA256', 'DHE-RSA-AES128-GCM-SHA256', 'AES128-GCM-SHA256']) {
    const res = await handshake(['-tls1_2', '-cipher', `${cipher}:@SECLEVEL=0`]);
    t.notOk(res.ok, `TLS 1.2 with only ${cipher}: no handshake`);
  }
  for (const version of ['-tls1', '-tls1_1']) {
    const res = await handshake([version, '-cipher', 'ALL:@SECLEVEL=0']);
    t.notOk(res.ok, `${version}: no handshake`);
  }
  const modern = await handshake(['-tls1_2', '-cipher', 'ECDHE-RSA-AES128-GCM-SHA256']);
  t.ok(modern.ok, 'TLS 1.2 with ECDHE-RSA-AES128-GCM-SHA256 works');
  t.match(modern.output, /ECDHE-RSA-AES128-GCM-SHA256/);
  t.ok((await handshake(['-tls1_2', '-cipher', 'ECDHE-RSA-CHACHA20-POLY1305'])).ok, 'and ChaCha20-Poly1305');
  t.ok((await handshake(['-tls1_3'])).ok, 'TLS 1.3 works');
});

function tlsGet(path: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; headers: import('node:http').IncomingHttpHeaders }>((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, headers, ca, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('GATEWAY_HSTS on every https response: gateway pages, proxied pages, refusals', async (t) => {
  for (const [path, status] of [['/_auth/login', 200], ['/public/page', 200], ['/private', 401]] as const) {
    const res = await tlsGet(path, { accept: 'application/json' });
    t.equal(res.status, status, path);
    t.equal(res.headers['strict-transport-security'], HSTS, `${path}: HSTS sent`);
  }
});

t.test('never on plain http, unless a trusted proxy says the client used https', async (t) => {
  const plain = await bed.gateway({ GATEWAY_HSTS: 'max-age=600', GATEWAY_PUBLIC_PATHS: '/public', GATEWAY_TRUSTED_PROXIES: '127.0.0.2/32' });
  const direct = await send(`${plain.url}/public/page`, { headers: { 'x-forwarded-proto': 'https' } });
  t.equal(direct.status, 200);
  t.equal(direct.headers['strict-transport-security'], undefined, 'plain http (and an untrusted X-Forwarded-Proto): no HSTS');
  const viaBalancer = await new Promise<string | undefined>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: new URL(plain.url).port, path: '/public/page', localAddress: '127.0.0.2', headers: { 'x-forwarded-proto': 'https' }, agent: false }, (res) => {
      res.resume();
      resolve(res.headers['strict-transport-security'] as string | undefined);
    });
    req.on('error', reject);
    req.end();
  });
  t.equal(viaBalancer, 'max-age=600', 'behind a trusted TLS-terminating balancer: sent');
  const unset = await bed.gateway({ GATEWAY_PUBLIC_PATHS: '/public' });
  t.equal((await send(`${unset.url}/public/page`)).headers['strict-transport-security'], undefined, 'unset by default');
});

t.test('GATEWAY_HSTS is validated', async (t) => {
  for (const good of ['max-age=0', 'max-age=63072000; includeSubDomains; preload', 'max-age=31536000;preload']) {
    t.equal(loadConfig({ GATEWAY_HSTS: good }).hsts, good, good);
  }
  for (const bad of ['31536000', 'max-age=1y', 'max-age=600; includeSubdomains=yes', 'max-age=600, preload', 'max-age=600; preload; includeSubDomains']) {
    const error = t.throws(() => loadConfig({ GATEWAY_HSTS: bad }), JSON.stringify(bad)) as unknown as ConfigError;
    t.match(error.problems.join('\n'), /GATEWAY_HSTS must look like max-age=/);
  }
});

t.test('GATEWAY_REQUEST_TIMEOUT applies to the TLS listener: a trickling body gets 408', async (t) => {
  const socket = tlsConnect({ host: '127.0.0.1', port: Number(port), ca, servername: 'localhost' });
  await once(socket, 'secureConnect');
  let received = '';
  socket.on('data', (c: Buffer) => (received += c.toString('latin1')));
  const closed = once(socket, 'close');
  socket.write(`POST /public/upload HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: 100\r\n\r\nab`);
  for (let i = 0; i < 40 && !socket.destroyed && socket.readyState === 'open'; i++) {
    await sleep(250);
    if (socket.writable) socket.write('x');
  }
  socket.destroy();
  await closed;
  t.equal(received.slice(0, received.indexOf('\r\n')), 'HTTP/1.1 408 Request Timeout');
});
