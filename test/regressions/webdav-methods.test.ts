// Attack surface / breakage: calendar, contacts and file-sharing apps speak WebDAV and CalDAV
// (PROPFIND, PROPPATCH, MKCOL, COPY, MOVE, LOCK, UNLOCK, REPORT, MKCALENDAR, SEARCH, ...). fastify
// routes only the common methods, so every one of them answered 404 and never reached the app,
// forward-auth refused them, and a rule scoped to them could not be checked. TRACE (which echoes
// the request, cookies included) and CONNECT (a tunnel) must not reach the app at all.
// Defence (SPEC 4): src/proxy/routes.ts registers every method Node's parser accepts with fastify
// and @fastify/http-proxy, behind the same authenticate step; TRACE and CONNECT get 405. Tested
// against a real WebDAV server (Debian's Apache httpd, mod_dav_fs) with a real client (cadaver)
// and raw requests for the methods cadaver does not send.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { callVerify } from '../helpers/forward-auth.js';
import { login, withSession } from '../helpers/gateway.js';
import { findBinary } from '../helpers/proxies.js';
import { startDavServer, type DavHit } from '../helpers/webdav.js';
import { testBed } from './setup.js';

const dav = await startDavServer(t, ['dav', 'dav/secret', 'dav/cal']);
const bed = await testBed(t, [{ username: 'alice', password: 'alice-Pw-0115' }]);
const dir = mkdtempSync(join(tmpdir(), 'sgw-webdav-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'rules.yaml'), '- { path: /dav/secret, methods: [PROPFIND], policy: deny }\n');
const gw = await bed.gateway({ GATEWAY_UPSTREAM: dav.url, GATEWAY_ACCESS_RULES: join(dir, 'rules.yaml'), GATEWAY_TRUSTED_PROXIES: '127.0.0.1' });
const cookie = await login(gw, 'alice', 'alice-Pw-0115');
const { port: gwPort } = new URL(gw.url);

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

function davRequest(method: string, path: string, headers: OutgoingHttpHeaders = {}, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: gwPort, method, path, headers: { ...withSession(gw, cookie), ...headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const reached = async (method: string, path: string): Promise<DavHit | undefined> =>
  (await dav.waitForHit((hit) => hit.method === method && hit.path === path)).find((hit) => hit.method === method && hit.path === path);

const XML = { 'content-type': 'application/xml; charset=utf-8' };
const LOCKINFO = '<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>alice</D:owner></D:lockinfo>';
const PROPPATCH = '<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x-test"><D:set><D:prop><Z:colour>blue</Z:colour></D:prop></D:set></D:propertyupdate>';
const REPORT = '<?xml version="1.0" encoding="utf-8"?><D:version-tree xmlns:D="DAV:"><D:prop><D:version-name/></D:prop></D:version-tree>';

t.test('signed in: each WebDAV method reaches the DAV server with the identity', async (t) => {
  const propfind = await davRequest('PROPFIND', '/dav/', { depth: '1' });
  t.equal(propfind.status, 207, 'PROPFIND: a multistatus from mod_dav');
  t.match(propfind.body, /<D:multistatus/);
  t.equal((await davRequest('MKCOL', '/dav/files/')).status, 201, 'MKCOL');
  t.equal((await davRequest('PUT', '/dav/files/a.txt', { 'content-type': 'text/plain' }, 'hello')).status, 201, 'PUT');
  t.equal((await davRequest('PROPPATCH', '/dav/files/a.txt', XML, PROPPATCH)).status, 207, 'PROPPATCH');
  t.equal((await davRequest('COPY', '/dav/files/a.txt', { destination: `${gw.url}/dav/files/copy.txt` })).status, 201, 'COPY');
  t.equal((await davRequest('MOVE', '/dav/files/a.txt', { destination: `${gw.url}/dav/files/b.txt` })).status, 201, 'MOVE');
  const lock = await davRequest('LOCK', '/dav/files/b.txt', { ...XML, timeout: 'Second-60' }, LOCKINFO);
  t.equal(lock.status, 200, 'LOCK');
  const token = lock.headers['lock-token'];
  t.ok(token, 'a lock token came back');
  t.equal((await davRequest('UNLOCK', '/dav/files/b.txt', { 'lock-token': String(token) })).status, 204, 'UNLOCK');
  const report = await davRequest('REPORT', '/dav/files/b.txt', XML, REPORT);
  t.not(report.status, 404, `REPORT answered by mod_dav (${report.status}), not a gateway 404`);

  for (const [method, path] of [
    ['PROPFIND', '/dav/'],
    ['MKCOL', '/dav/files/'],
    ['PUT', '/dav/files/a.txt'],
    ['PROPPATCH', '/dav/files/a.txt'],
    ['COPY', '/dav/files/a.txt'],
    ['MOVE', '/dav/files/a.txt'],
    ['LOCK', '/dav/files/b.txt'],
    ['UNLOCK', '/dav/files/b.txt'],
    ['REPORT', '/dav/files/b.txt'],
  ] as const) {
    t.equal((await reached(method, path))?.user, 'alice', `${method} ${path} reached the DAV server as alice`);
  }
});

t.test('anonymous: 401, never the DAV server', async (t) => {
  const before = await dav.settledHitCount();
  for (const method of ['PROPFIND', 'MKCOL', 'LOCK', 'REPORT', 'MKCALENDAR', 'SEARCH']) {
    const res = await new Promise<number>((resolve, reject) => {
      // Depth 1, as WebDAV clients send it: a PROPFIND without Depth reads /dav/secret too, which a rule denies.
      const req = httpRequest({ host: '127.0.0.1', port: gwPort, method, path: '/dav/', headers: { accept: 'application/json', depth: '1' }, agent: false }, (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    t.equal(res, 401, `${method} without a session`);
  }
  t.equal(await dav.settledHitCount(), before, 'nothing reached the DAV server');
});

t.test('a `deny` rule with `methods: [PROPFIND]` refuses PROPFIND only', async (t) => {
  const refused = await davRequest('PROPFIND', '/dav/secret/', { depth: '0', accept: 'application/json' });
  t.equal(refused.status, 403);
  t.notOk(dav.hits().some((hit) => hit.path === '/dav/secret/' && hit.method === 'PROPFIND'), 'not forwarded');
  const propfindLower = await davRequest('propfind', '/dav/secret/', { depth: '0' }).catch(() => ({ status: 400 }));
  t.not(propfindLower.status, 207, 'a lower-case spelling does not walk past it either');
  const get = await davRequest('GET', '/dav/secret/');
  t.not(get.status, 403, 'other methods pass to the app');
  t.equal((await reached('GET', '/dav/secret/'))?.user, 'alice');
});

t.test('TRACE and CONNECT: 405 from the gateway, nothing forwarded', async (t) => {
  const before = await dav.settledHitCount();
  const trace = await davRequest('TRACE', '/dav/', { accept: 'application/json' });
  t.equal(trace.status, 405, 'TRACE');
  t.notMatch(trace.body, /sgw_session/, 'the cookie is not echoed');
  t.match(trace.headers.allow, /PROPFIND/);
  const anonymousTrace = await new Promise<number>((resolve) => {
    httpRequest({ host: '127.0.0.1', port: gwPort, method: 'TRACE', path: '/_auth/login', agent: false }, (r) => {
      r.resume();
      resolve(r.statusCode ?? 0);
    }).end();
  });
  t.equal(anonymousTrace, 405, 'TRACE to a gateway path too');
  const tunnel = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(gwPort), '127.0.0.1', () => socket.write(`CONNECT 127.0.0.1:${new URL(dav.url).port} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`));
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString()));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
  t.match(tunnel, /^HTTP\/1\.1 405 /, 'CONNECT');
  t.equal(await dav.settledHitCount(), before, 'nothing reached the DAV server');
});

t.test('forward-auth names WebDAV methods too, and method-scoped rules apply to them', async (t) => {
  const session = withSession(gw, cookie);
  t.equal((await callVerify(gw, { ...session, 'x-forwarded-uri': '/dav/secret/', 'x-forwarded-method': 'PROPFIND' })).status, 403);
  for (const method of ['PROPPATCH', 'MKCALENDAR', 'REPORT', 'LOCK', 'SEARCH']) {
    t.equal((await callVerify(gw, { ...session, 'x-forwarded-uri': '/dav/cal/', 'x-forwarded-method': method })).status, 204, method);
  }
});

t.test('a real WebDAV client (cadaver) works through the gateway', async (t) => {
  const cadaver = findBinary('cadaver', 'install the Debian package cadaver');
  // cadaver cannot send a cookie (it knows Basic/Digest only). A local forward proxy adds the
  // session cookie, as a browser would, and passes each request on unchanged otherwise.
  const withCookie = createServer((req, res) => {
    const target = new URL(req.url ?? '/', gw.url); // cadaver sends absolute-form through a proxy
    const upstream = httpRequest({ host: '127.0.0.1', port: gwPort, method: req.method, path: target.pathname + target.search, headers: { ...req.headers, ...withSession(gw, cookie) }, agent: false }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => withCookie.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => withCookie.close(resolve)));
  const proxyPort = (withCookie.address() as AddressInfo).port;
  const home = mkdtempSync(join(tmpdir(), 'sgw-cadaver-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  writeFileSync(join(home, 'local.txt'), 'from cadaver\n');
  const script = ['mkcol shared', 'cd shared', `put ${join(home, 'local.txt')} doc.txt`, 'lock doc.txt', 'unlock doc.txt', 'move doc.txt moved.txt', 'ls', 'quit', ''].join('\n');
  // Not spawnSync: the cookie-adding proxy above runs on this event loop.
  const child = spawn(cadaver, ['-p', `127.0.0.1:${proxyPort}`, `${gw.url}/dav/cal/`], { cwd: home, env: { ...process.env, HOME: home }, stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  child.stdin.end(script);
  t.equal(await exited, 0, 'cadaver exited cleanly');
  t.match(output, /moved\.txt/, 'ls lists the moved file');
  t.notMatch(output, /404|failed/i, 'no step failed');
  for (const method of ['MKCOL', 'PUT', 'LOCK', 'UNLOCK', 'MOVE', 'PROPFIND']) {
    const hit = (await dav.waitForHit((h) => h.method === method && h.path.startsWith('/dav/cal/shared'))).find((h) => h.method === method && h.path.startsWith('/dav/cal/shared'));
    t.equal(hit?.user, 'alice', `cadaver's ${method} reached the DAV server as alice`);
  }
});
