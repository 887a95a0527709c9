// SIGHUP (SPEC section 8) on a real `session-gateway serve` process: what lives in files is read
// again and swapped without a restart, nothing running is dropped, and a set that fails
// validation is refused with one line per problem while the old one stays in force.
import { execFileSync, spawn } from 'node:child_process';
import { X509Certificate, createHash, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { Agent, request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import t from 'tap';
import { createCookieSigner } from '../../src/session/id.js';
import { ROOT, ensureBuilt, loopbackServe, spawnCli, waitForStatus, type ServeProcess } from '../helpers/cli.js';
import { seedUsers, uniquePrefix } from '../helpers/gateway.js';
import { cookieHeader, send } from '../helpers/http.js';
import { scrapeMetric } from '../helpers/metrics.js';
import { services, sleep } from '../helpers/services.js';
import { startEchoUpstream, type Echo } from '../helpers/upstream.js';

await ensureBuilt();

const COOKIE = 'sgw_session';
const SECRET_A = 'first-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
const SECRET_B = 'second-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
const dir = mkdtempSync(join(tmpdir(), 'sgw-reload-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const { redis, pg } = await services(t);
await seedUsers(t, pg.url, [
  { username: 'alice', password: 'alice-pass-123', groups: ['staff'] },
  { username: 'bob', password: 'bob-pass-12345', groups: [] },
]);
const upstream = await startEchoUpstream();
t.teardown(() => upstream.close());

interface Gateway {
  proc: ServeProcess;
  url: string;
  adminUrl: string;
  port: number;
  /** Log lines (parsed) written so far. */
  logs(): Array<Record<string, unknown>>;
  /** Sends SIGHUP and waits for the reload's outcome line; returns the lines it logged. */
  hup(): Promise<Array<Record<string, unknown>>>;
}

async function startGateway(env: Record<string, string>, options: { tls?: boolean } = {}): Promise<Gateway> {
  const { port, adminPort, env: listen } = await loopbackServe(upstream.url);
  const proc = spawnCli(t, ['serve'], {
    ...listen,
    REDIS_URL: redis.url,
    DATABASE_URL: pg.url,
    GATEWAY_REDIS_PREFIX: uniquePrefix(),
    ...env,
  });
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  await waitForStatus(`${adminUrl}/readyz`, 200, { process: proc });
  const logs = () =>
    proc
      .stdout()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  const outcomes = () => logs().filter((l) => l.reload === 'success' || (l.reload === 'failure' && typeof l.problems === 'number'));
  return {
    proc,
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    adminUrl,
    port,
    logs,
    async hup() {
      const before = logs().length;
      const seen = outcomes().length;
      process.kill(proc.child.pid as number, 'SIGHUP');
      const deadline = Date.now() + 10_000;
      while (outcomes().length === seen) {
        if (Date.now() > deadline) throw new Error(`no reload outcome logged:\n${proc.stdout()}${proc.stderr()}`);
        await sleep(20);
      }
      return logs().slice(before);
    },
  };
}

async function login(gw: Gateway, username: string, password: string): Promise<string> {
  const res = await send(`${gw.url}/_auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) });
  const cookie = res.cookies[COOKIE];
  if (res.status !== 200 || !cookie) throw new Error(`login as ${username}: ${res.status} ${res.body}`);
  return cookie;
}

const asUser = (cookie: string) => ({ cookie: cookieHeader({ [COOKIE]: cookie }) });

t.test('GATEWAY_SESSION_SECRET_FILE rotated with SIGHUP: old cookies still valid, new ones signed with the new secret, a removed secret stops at once', async (t) => {
  const secretFile = join(dir, 'session-secret');
  writeFileSync(secretFile, `${SECRET_A}\n`);
  const gw = await startGateway({ GATEWAY_SESSION_SECRET_FILE: secretFile });
  const before = await login(gw, 'alice', 'alice-pass-123');
  t.ok(createCookieSigner([SECRET_A]).unsign(before), 'signed with the first secret');
  t.equal((await send(`${gw.url}/app`, { headers: asUser(before) })).status, 200, 'cached before the rotation');
  // A login form served before the rotation: its token is bound to the old first secret.
  const form = await send(`${gw.url}/_auth/login`, { headers: { accept: 'text/html' } });
  const csrfCookie = form.cookies.sgw_csrf ?? '';
  const csrfToken = /name="csrf" value="([^"]+)"/.exec(form.body)?.[1] ?? '';

  writeFileSync(secretFile, `${SECRET_B},${SECRET_A}\n`);
  const lines = await gw.hup();
  t.ok(lines.some((l) => l.reload === 'success' && Array.isArray(l.changed) && l.changed.includes('GATEWAY_SESSION_SECRET')), 'the reload names what changed');
  t.notOk(JSON.stringify(gw.logs()).includes(SECRET_B) || JSON.stringify(gw.logs()).includes(SECRET_A), 'no secret in the log');

  const old = await send(`${gw.url}/app`, { headers: asUser(before) });
  t.equal(old.status, 200, 'a cookie signed with the old secret still works');
  t.equal(old.json<Echo>().headers['x-forwarded-user'], 'alice');
  const renewed = old.cookies[COOKIE] ?? '';
  t.ok(renewed && createCookieSigner([SECRET_B]).unsign(renewed), 'and is re-issued signed with the new first secret');

  const after = await login(gw, 'bob', 'bob-pass-12345');
  t.ok(createCookieSigner([SECRET_B]).unsign(after), 'a new login is signed with the new first secret');
  t.equal(createCookieSigner([SECRET_A]).unsign(after), null, 'not with the old one');

  const submitted = await send(`${gw.url}/_auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: gw.url, cookie: cookieHeader({ sgw_csrf: csrfCookie }) },
    body: new URLSearchParams({ username: 'bob', password: 'bob-pass-12345', rd: '/', csrf: csrfToken }).toString(),
  });
  t.equal(submitted.status, 303, `a login form served before the rotation can still be submitted (${submitted.status})`);

  // The old secret retired: cookies signed with it stop at once, even the one the cache holds.
  t.equal((await send(`${gw.url}/app`, { headers: asUser(before) })).status, 200, 'the old cookie is in the cache again');
  writeFileSync(secretFile, `${SECRET_B}\n`);
  await gw.hup();
  t.equal((await send(`${gw.url}/app`, { headers: asUser(before) })).status, 401, 'a cookie signed with a removed secret is refused');
  t.equal((await send(`${gw.url}/app`, { headers: asUser(after) })).status, 200, 'one signed with the remaining secret is not');
  t.equal((await send(`${gw.url}/app`, { headers: asUser(renewed) })).status, 200, 'nor the re-issued one');

  // A secret too short is refused: the running secrets stay.
  writeFileSync(secretFile, 'short\n');
  const refused = await gw.hup();
  t.ok(refused.some((l) => l.level === 50 && /configuration reload refused: GATEWAY_SESSION_SECRET: secret #1 is shorter than 32 characters/.test(String(l.msg))), 'the problem is named');
  t.equal((await send(`${gw.url}/app`, { headers: asUser(after) })).status, 200, 'sessions carry on under the old secrets');
  t.ok(createCookieSigner([SECRET_B]).unsign(await login(gw, 'alice', 'alice-pass-123')), 'and new logins are still signed with them');
  t.equal(await scrapeMetric(gw.adminUrl, 'gateway_config_reloads_total', { outcome: 'success' }), 2);
  t.equal(await scrapeMetric(gw.adminUrl, 'gateway_config_reloads_total', { outcome: 'failure' }), 1);
  t.equal(gw.proc.child.exitCode, null, 'still running');
});

/** A self-signed certificate for 127.0.0.1 with its own RSA key. */
function makeCertificate(name: string): { cert: string; key: string; fingerprint: string } {
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.crt`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const cert = readFileSync(certFile, 'utf8');
  return { cert, key: readFileSync(keyFile, 'utf8'), fingerprint: new X509Certificate(cert).fingerprint256 };
}

interface Answer {
  status: number;
  fingerprint: string;
  reused: boolean;
}

function httpsGet(port: number, path: string, headers: Record<string, string>, ca: string[], agent: Agent | false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, headers, ca, agent }, (res) => {
      const socket = res.socket as import('node:tls').TLSSocket;
      const fingerprint = (socket.getPeerCertificate() as PeerCertificate).fingerprint256;
      const reused = socket.isSessionReused();
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, fingerprint, reused }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Does a handshake limited to these settings succeed? (TLS floor and suites after a swap.) */
function handshake(port: number, options: { maxVersion?: 'TLSv1.1' | 'TLSv1.2'; ciphers?: string }, ca: string[]): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca, ...options, ...(options.maxVersion === 'TLSv1.1' && { minVersion: 'TLSv1' }) }, () => {
      socket.end();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

t.test('TLS certificate rotated under load: zero failed requests, new connections get the new certificate', async (t) => {
  const first = makeCertificate('first');
  const second = makeCertificate('second');
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  writeFileSync(certFile, first.cert);
  writeFileSync(keyFile, first.key);
  const ca = [first.cert, second.cert];
  const gw = await startGateway({ GATEWAY_SESSION_SECRET: SECRET_A, GATEWAY_TLS_CERT: certFile, GATEWAY_TLS_KEY: keyFile }, { tls: true });
  await waitForStatus(`${gw.adminUrl}/readyz`, 200);
  const loginRes = await new Promise<string>((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port: gw.port, path: '/_auth/login', method: 'POST', headers: { 'content-type': 'application/json' }, ca, agent: false }, (res) => {
      res.resume();
      const cookie = (res.headers['set-cookie'] ?? []).find((c) => c.startsWith(`${COOKIE}=`))?.split(';')[0]?.slice(COOKIE.length + 1) ?? '';
      res.on('end', () => resolve(decodeURIComponent(cookie)));
    });
    req.on('error', reject);
    req.end(JSON.stringify({ username: 'alice', password: 'alice-pass-123' }));
  });
  t.ok(loginRes, 'signed in over https');
  const headers = asUser(loginRes);

  // Clients run throughout: new connections for each request, and keep-alive connections that
  // were opened before the swap and carry on after it.
  const keepAlive = new Agent({ keepAlive: true, maxSockets: 4 });
  t.teardown(() => keepAlive.destroy());
  const answers: Array<Answer & { sentAt: number; fresh: boolean }> = [];
  const failures: string[] = [];
  let running = true;
  const loop = async (agent: Agent | false) => {
    while (running) {
      const sentAt = Date.now();
      try {
        const answer = await httpsGet(gw.port, '/under-load', headers, ca, agent);
        answers.push({ ...answer, sentAt, fresh: agent === false });
        if (answer.status !== 200) failures.push(`status ${answer.status}`);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  };
  const loops = [loop(false), loop(false), loop(keepAlive), loop(keepAlive)];
  // Counted rather than timed, so a busy machine only makes the test slower, not weaker.
  const enough = async (what: string, count: () => number) => {
    const deadline = Date.now() + 60_000;
    while (count() < 20) {
      if (Date.now() > deadline) throw new Error(`${what}: only ${count()} requests in 60 s`);
      await sleep(50);
    }
  };
  await enough('before the swap', () => Math.min(answers.filter((a) => a.fresh).length, answers.filter((a) => !a.fresh).length));

  writeFileSync(certFile, second.cert);
  writeFileSync(keyFile, second.key);
  const swapStarted = Date.now();
  const lines = await gw.hup();
  const swapped = Date.now();
  t.ok(lines.some((l) => l.reload === 'success' && Array.isArray(l.changed) && l.changed.includes('GATEWAY_TLS_CERT / GATEWAY_TLS_KEY')), 'reload names the certificate');
  await enough('after the swap', () => Math.min(answers.filter((a) => a.fresh && a.sentAt > swapped).length, answers.filter((a) => !a.fresh && a.sentAt > swapped).length));
  running = false;
  await Promise.all(loops);

  t.same(failures, [], 'zero failed requests');
  // By when each request was sent: a connection opened after the reload was logged.
  const freshBefore = answers.filter((a) => a.fresh && a.sentAt < swapStarted);
  const freshAfter = answers.filter((a) => a.fresh && a.sentAt > swapped);
  t.ok(freshBefore.length >= 20 && freshAfter.length >= 20, `requests on new connections ran before (${freshBefore.length}) and after (${freshAfter.length}) the swap`);
  t.ok(freshBefore.every((a) => a.fingerprint === first.fingerprint), 'before: the first certificate');
  t.same(freshAfter.filter((a) => a.fingerprint !== second.fingerprint), [], 'after: every new connection sees the second certificate');
  const keptAfter = answers.filter((a) => !a.fresh && a.sentAt > swapped);
  t.ok(keptAfter.length >= 20 && keptAfter.every((a) => a.fingerprint === first.fingerprint), `keep-alive connections opened before the swap carry on (${keptAfter.length} requests after it, none dropped)`);
  t.comment(`${answers.length} requests during the test, ${answers.filter((a) => a.fresh).length} on new connections, 0 failed`);

  t.notOk(await handshake(gw.port, { maxVersion: 'TLSv1.1' }, ca), 'after the swap TLS 1.1 is still refused');
  t.notOk(await handshake(gw.port, { maxVersion: 'TLSv1.2', ciphers: 'AES128-SHA' }, ca), 'and so is a CBC suite without forward secrecy');
  t.ok(await handshake(gw.port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' }, ca), 'an ECDHE-GCM suite is served');

  // A key that does not match the certificate: refused, the second certificate stays.
  writeFileSync(keyFile, makeCertificate('third').key);
  const refused = await gw.hup();
  t.ok(refused.some((l) => l.level === 50 && /configuration reload refused: GATEWAY_TLS_CERT \/ GATEWAY_TLS_KEY: .*key values mismatch/.test(String(l.msg))), 'the mismatch is named');
  const still = await httpsGet(gw.port, '/after-refusal', headers, ca, false);
  t.same([still.status, still.fingerprint], [200, second.fingerprint], 'the second certificate is still served');
  t.equal(await scrapeMetric(gw.adminUrl, 'gateway_config_reloads_total', { outcome: 'failure' }), 1);
});

t.test('login branding and identity keys replaced with SIGHUP; an invalid template is refused', async (t) => {
  const cssFile = join(dir, 'login.css');
  const templateFile = join(dir, 'login.html');
  const keyFile = join(dir, 'identity.pem');
  const pem = () => generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  writeFileSync(cssFile, 'body { background: #101010; }\n');
  writeFileSync(templateFile, '<!doctype html><html><head><title>{{document_title}}</title>{{styles}}</head><body><h1>Old brand</h1>{{error}}{{form}}</body></html>\n');
  writeFileSync(keyFile, pem());
  const gw = await startGateway({
    GATEWAY_SESSION_SECRET: SECRET_A,
    GATEWAY_LOGIN_CSS_FILE: cssFile,
    GATEWAY_LOGIN_TEMPLATE_FILE: templateFile,
    GATEWAY_IDENTITY_JWT: 'true',
    GATEWAY_IDENTITY_JWT_KEY_FILES: keyFile,
  });
  const page = () => send(`${gw.url}/_auth/login`, { headers: { accept: 'text/html' } });
  const jwks = async () => (await send(`${gw.url}/_auth/jwks.json`)).json<JSONWebKeySet>();
  const before = await page();
  t.match(before.body, /Old brand/);
  const oldKid = (await jwks()).keys[0]?.kid;
  const cookie = await login(gw, 'alice', 'alice-pass-123');
  const tokenBefore = (await send(`${gw.url}/app`, { headers: asUser(cookie) })).json<Echo>().headers['x-gateway-identity'] as string;
  t.equal(decodeProtectedHeader(tokenBefore).kid, oldKid);

  writeFileSync(cssFile, 'body { background: #fafafa; }\n');
  writeFileSync(templateFile, '<!doctype html><html><head><title>{{document_title}}</title>{{styles}}</head><body><h1>New brand</h1>{{error}}{{form}}</body></html>\n');
  writeFileSync(keyFile, pem());
  const lines = await gw.hup();
  t.ok(lines.some((l) => l.reload === 'success' && JSON.stringify(l.changed) === JSON.stringify(['identity token keys', 'login branding'])), 'the reload names both');

  const after = await page();
  t.match(after.body, /New brand/);
  t.match(after.body, /#fafafa/);
  const hash = (css: string) => `'sha256-${createHash('sha256').update(css).digest('base64')}'`;
  t.ok(String(before.headers['content-security-policy']).includes(hash('body { background: #101010; }\n')), 'before: the CSP allows the first stylesheet by its hash');
  t.ok(String(after.headers['content-security-policy']).includes(hash('body { background: #fafafa; }\n')), 'after: the new stylesheet');
  t.notOk(String(after.headers['content-security-policy']).includes(hash('body { background: #101010; }\n')), 'and no longer the old one');

  const keys = await jwks();
  const newKid = keys.keys[0]?.kid;
  t.not(newKid, oldKid, 'the JWKS publishes the new key');
  const tokenAfter = (await send(`${gw.url}/app`, { headers: asUser(cookie) })).json<Echo>().headers['x-gateway-identity'] as string;
  t.equal(decodeProtectedHeader(tokenAfter).kid, newKid, 'the same session gets a token signed with the new key at once');
  const { payload } = await jwtVerify(tokenAfter, createLocalJWKSet(keys));
  t.equal(payload.sub, 'alice', 'it verifies against the published JWKS');

  // A template without {{form}}: refused, named, and the page stays as it was.
  writeFileSync(templateFile, '<html><body>{{error}} no form here</body></html>\n');
  const refused = await gw.hup();
  t.ok(refused.some((l) => l.level === 50 && /configuration reload refused: GATEWAY_LOGIN_TEMPLATE_FILE: .* has no \{\{form\}\} placeholder/.test(String(l.msg))), 'the problem is named');
  t.match((await page()).body, /New brand/, 'the page stays as it was');
  t.equal((await jwks()).keys[0]?.kid, newKid, 'so do the keys');
  t.equal(await scrapeMetric(gw.adminUrl, 'gateway_config_reloads_total', { outcome: 'success' }), 1);
  t.equal(await scrapeMetric(gw.adminUrl, 'gateway_config_reloads_total', { outcome: 'failure' }), 1);
});

/** The watcher container's script, as docs/operations.md shows it (the block after `# reload-watcher`). */
function documentedWatcher(): string {
  const doc = readFileSync(join(ROOT, 'docs', 'operations.md'), 'utf8').split('\n');
  const start = doc.findIndex((line) => line.trim() === '# reload-watcher');
  if (start === -1) throw new Error('docs/operations.md has no reload-watcher script');
  const indent = /^\s*/.exec(doc[start] ?? '')?.[0] ?? '';
  const lines: string[] = [];
  for (const line of doc.slice(start + 1)) {
    if (!line.startsWith(indent) || line.trim() === '') break;
    lines.push(line.slice(indent.length));
  }
  return lines.join('\n');
}

t.test('the Kubernetes watcher in docs/operations.md reloads the gateway when the kubelet swaps a mounted Secret', async (t) => {
  // A Secret volume as the kubelet lays it out: files are symlinks through `..data`, which is
  // re-pointed at a new timestamped directory in one rename when the Secret changes.
  const mount = mkdtempSync(join(dir, 'mount-'));
  const version = (name: string, secret: string) => {
    mkdirSync(join(mount, name));
    writeFileSync(join(mount, name, 'session-secret'), secret);
  };
  const publish = (name: string) => {
    symlinkSync(name, join(mount, '..data_tmp'));
    renameSync(join(mount, '..data_tmp'), join(mount, '..data'));
  };
  version('..2026_12_03_v1', SECRET_A);
  publish('..2026_12_03_v1');
  symlinkSync('..data/session-secret', join(mount, 'session-secret'));

  // The gateway's command line ends in `dist/cli.js serve`, as in the image; a directory of its
  // own in front keeps the test's pkill from reaching any other gateway on this machine.
  const own = mkdtempSync(join(dir, 'gw-'));
  symlinkSync(join(ROOT, 'dist'), join(own, 'dist'));
  const { port, adminPort, env: listen } = await loopbackServe(upstream.url);
  const gateway = spawn(process.execPath, [join(own, 'dist', 'cli.js'), 'serve'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      ...listen,
      REDIS_URL: redis.url, DATABASE_URL: pg.url, GATEWAY_REDIS_PREFIX: uniquePrefix(),
      GATEWAY_SESSION_SECRET_FILE: join(mount, 'session-secret'),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  gateway.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  gateway.stderr.resume();
  t.teardown(() => void (gateway.exitCode === null && gateway.kill('SIGKILL')));
  const url = `http://127.0.0.1:${port}`;
  await waitForStatus(`http://127.0.0.1:${adminPort}/readyz`, 200);

  const script = documentedWatcher()
    .replace('dir=/run/secrets/session-gateway', `dir=${mount}`)
    .replace('sleep 10', 'sleep 0.2')
    .replace("'dist/cli[.]js serve'", `'${own}/dist/cli[.]js serve'`);
  t.match(script, /pkill -HUP -f '.*dist\/cli\[\.\]js serve'/, 'the documented script, scoped to this gateway');
  const watcher = spawn('sh', ['-c', script], { stdio: 'ignore' });
  t.teardown(() => void (watcher.exitCode === null && watcher.kill('SIGKILL')));
  await sleep(600);
  t.equal(watcher.exitCode, null, 'the watcher runs and has not signalled itself');
  t.notOk(out.includes('"reload"'), 'no reload while nothing changed');

  const gw = { url } as Gateway;
  t.ok(createCookieSigner([SECRET_A]).unsign(await login(gw, 'alice', 'alice-pass-123')), 'signed with the first secret');
  version('..2026_12_03_v2', `${SECRET_B},${SECRET_A}`);
  publish('..2026_12_03_v2');
  const deadline = Date.now() + 10_000;
  while (!out.includes('configuration reloaded: GATEWAY_SESSION_SECRET')) {
    if (Date.now() > deadline) throw new Error(`no reload after the Secret changed:\n${out}`);
    await sleep(50);
  }
  t.ok(createCookieSigner([SECRET_B]).unsign(await login(gw, 'alice', 'alice-pass-123')), 'after the swap a login is signed with the new secret');
  await sleep(600);
  t.equal(out.split('configuration reloaded').length - 1, 1, 'one reload per change');
  t.equal(watcher.exitCode, null, 'the watcher keeps watching');
  t.equal(gateway.exitCode, null, 'the gateway keeps serving');
});

t.test('access rules file changed + SIGHUP: what is allowed changes without a restart; an invalid file is refused and the old rules stay', async (t) => {
  const rulesFile = join(dir, 'rules.yaml');
  writeFileSync(rulesFile, 'rules:\n  - path: /status\n    policy: public\n  - path: /admin\n    policy: { groups: [admins] }\n');
  const gw = await startGateway({ GATEWAY_SESSION_SECRET: SECRET_A, GATEWAY_ACCESS_RULES: rulesFile, GATEWAY_TRUSTED_PROXIES: '127.0.0.1' });
  const alice = await login(gw, 'alice', 'alice-pass-123');
  const verify = (path: string) =>
    send(`${gw.url}/_auth/verify`, { headers: { ...asUser(alice), 'x-forwarded-method': 'GET', 'x-forwarded-proto': 'http', 'x-forwarded-host': '127.0.0.1', 'x-forwarded-uri': path } });
  const statuses = async () => ({
    admin: (await send(`${gw.url}/admin`, { headers: asUser(alice) })).status,
    verifyAdmin: (await verify('/admin')).status,
    anonymousOpen: (await send(`${gw.url}/open`)).status,
  });
  t.same(await statuses(), { admin: 403, verifyAdmin: 403, anonymousOpen: 401 }, 'first rules: /admin is for admins, /open needs a session');

  // Requests keep flowing through the swap: none refused, none failed.
  let running = true;
  const seen: number[] = [];
  const failures: string[] = [];
  const loop = (async () => {
    while (running) {
      await send(`${gw.url}/status`).then((r) => void seen.push(r.status), (err: Error) => void failures.push(err.message));
    }
  })();
  const answered = async (count: number) => {
    const deadline = Date.now() + 30_000;
    while (seen.length + failures.length < count && Date.now() < deadline) await sleep(20);
  };
  await answered(20);

  writeFileSync(rulesFile, 'rules:\n  - path: /status\n    policy: public\n  - path: /open\n    policy: public\n  - path: /admin\n    policy: { groups: [staff] }\n');
  const lines = await gw.hup();
  t.ok(lines.some((l) => l.reload === 'success' && Array.isArray(l.changed) && l.changed.includes('GATEWAY_ACCESS_RULES')), 'the reload names the rules');
  t.same(await statuses(), { admin: 200, verifyAdmin: 204, anonymousOpen: 200 }, 'new rules: staff may see /admin (proxy and forward-auth), /open is public');
  t.equal((await send(`${gw.url}/open`)).json<Echo>().headers['x-forwarded-user'], undefined, 'a public path carries no identity');

  writeFileSync(rulesFile, 'rules:\n  - path: /admin\n    policy: everyone\n');
  const refused = await gw.hup();
  await answered(seen.length + failures.length + 20);
  running = false;
  await loop;
  t.ok(
    refused.some((l) => l.level === 50 && String(l.msg) === 'configuration reload refused: GATEWAY_ACCESS_RULES: rule #1: `policy` must be public, authenticated, deny or { groups: [...] }'),
    'the problem is named, one line',
  );
  t.same(await statuses(), { admin: 200, verifyAdmin: 204, anonymousOpen: 200 }, 'the rules in force stay');
  t.equal(await scrapeMetric(gw.adminUrl, 'gateway_config_reloads_total', { outcome: 'success' }), 1);
  t.equal(await scrapeMetric(gw.adminUrl, 'gateway_config_reloads_total', { outcome: 'failure' }), 1);
  t.same(failures, [], 'no request failed during the reloads');
  t.ok(seen.length >= 40 && seen.every((s) => s === 200), `every one of ${seen.length} requests during the reloads was answered 200`);
});
