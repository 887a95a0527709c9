// Attack: WebDAV's COPY and MOVE write to the path in their Destination header (RFC 4918 §10.3).
// The gateway checked only the request path, so a user who may write under /dav/files could MOVE
// a file into /dav/admin (a `groups` rule) or /dav/locked (`deny`), or COPY one there, and the app
// did it: the rules guarded reading a folder but not writing into it. Apache's mod_dav checks a
// Destination against its own access control; a gateway in front must do the same. And COPY, MOVE
// and DELETE act on a whole folder: DELETE /dav/ removed /dav/admin with it, COPY /dav/ to a
// folder of alice's handed her /dav/admin's files, and a LOCK of /dav/ locked the admins out.
// Defence: src/access/destination.ts reads the Destination of COPY and MOVE like a request path
// (normalised, or 400), and the gate lets the request through only if the rules at both paths,
// and for COPY, MOVE, DELETE and LOCK the rules of every path inside them, allow it (proxy,
// forward-auth and its fast path alike); the app receives the normalised Destination. Tested
// against a real WebDAV server (Debian's Apache httpd, mod_dav_fs).
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type OutgoingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { callVerify } from '../helpers/forward-auth.js';
import { login, withSession } from '../helpers/gateway.js';
import { startDavServer } from '../helpers/webdav.js';
import { rawRequest, testBed } from './setup.js';

const dav = await startDavServer(t, ['dav', 'dav/files', 'dav/admin', 'dav/locked', 'dav/drop']);
const bed = await testBed(t, [
  { username: 'alice', password: 'alice-Pw-0115', groups: ['staff'] },
  { username: 'root', password: 'root-Pw-0115', groups: ['admins'] },
]);
const dir = mkdtempSync(join(tmpdir(), 'sgw-webdav-destination-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(
  join(dir, 'rules.yaml'),
  ['- { path: /dav/drop, policy: public }', '- { path: /dav/admin, policy: { groups: [admins] } }', '- { path: /dav/locked, policy: deny }', ''].join('\n'),
);
const env = { GATEWAY_ACCESS_RULES: join(dir, 'rules.yaml'), GATEWAY_TRUSTED_PROXIES: '127.0.0.1' };
const gw = await bed.gateway({ ...env, GATEWAY_UPSTREAM: dav.url });
const alice = await login(gw, 'alice', 'alice-Pw-0115');
const root = await login(gw, 'root', 'root-Pw-0115');
const { port: gwPort } = new URL(gw.url);

const LOCKINFO = '<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>alice</D:owner></D:lockinfo>';

function davRequest(method: string, path: string, headers: OutgoingHttpHeaders, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: gwPort, method, path, headers: { accept: 'application/json', ...headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A file of alice's in /dav/files, put straight into the served folder. */
function aliceFile(name: string): string {
  mkdirSync(join(dav.root, 'dav/files'), { recursive: true });
  writeFileSync(join(dav.root, 'dav/files', name), `${name}\n`);
  return `/dav/files/${name}`;
}
const onDisk = (path: string) => existsSync(join(dav.root, path));

t.test('MOVE or COPY into a folder the rules keep from the user: refused, nothing written', async (t) => {
  const session = withSession(gw, alice);
  const destinations: Array<[string, (name: string) => string]> = [
    ['an absolute URI into a groups folder', (name) => `${gw.url}/dav/admin/${name}`],
    ['an absolute path into a groups folder', (name) => `/dav/admin/${name}`],
    ['a deny folder', (name) => `${gw.url}/dav/locked/${name}`],
    ['dot segments', (name) => `${gw.url}/dav/files/../admin/${name}`],
    ['encoded dot segments', (name) => `${gw.url}/dav/files/%2e%2e/admin/${name}`],
    ['an encoded letter', (name) => `${gw.url}/dav/%61dmin/${name}`],
    ['repeated slashes', (name) => `${gw.url}/dav//admin/${name}`],
    ['a path parameter (a Servlet container drops it)', (name) => `${gw.url}/dav/admin;x=1/${name}`],
    ['another host (the app may go by the path alone)', (name) => `http://elsewhere.example/dav/admin/${name}`],
  ];
  let n = 0;
  for (const method of ['MOVE', 'COPY']) {
    for (const [how, destination] of destinations) {
      const name = `m${++n}.txt`;
      const source = aliceFile(name);
      const before = await dav.settledHitCount();
      const answer = await davRequest(method, source, { ...session, destination: destination(name) });
      t.equal(answer.status, 403, `${method} to ${how}: 403`);
      t.match(answer.body, /GW_ERR_ACCESS_DENIED/);
      t.equal(await dav.settledHitCount(), before, `${method} to ${how}: nothing reached the app`);
      t.ok(onDisk(source), `${method} to ${how}: the source is where it was`);
      t.notOk(onDisk(`dav/admin/${name}`) || onDisk(`dav/locked/${name}`), `${method} to ${how}: nothing written`);
    }
  }
});

t.test('a member of the rule\'s group may MOVE there; anyone signed in may MOVE within their folder', async (t) => {
  const mine = aliceFile('mine.txt');
  t.equal((await davRequest('MOVE', mine, { ...withSession(gw, alice), destination: `${gw.url}/dav/files/renamed.txt` })).status, 201, 'alice renames her file');
  t.ok(onDisk('dav/files/renamed.txt'));
  const report = aliceFile('report.txt');
  t.equal((await davRequest('COPY', report, { ...withSession(gw, root), destination: `${gw.url}/dav/admin/report.txt` })).status, 201, 'an admin copies into /dav/admin');
  t.ok(onDisk('dav/admin/report.txt'));
});

t.test('a public source does not make the Destination public', async (t) => {
  writeFileSync(join(dav.root, 'dav/drop/in.txt'), 'in\n');
  const before = await dav.settledHitCount();
  const anonymous = await davRequest('MOVE', '/dav/drop/in.txt', { destination: `${gw.url}/dav/files/in.txt` });
  t.equal(anonymous.status, 401, 'anonymous MOVE out of a public folder into a signed-in one: 401');
  t.equal(await dav.settledHitCount(), before, 'nothing reached the app');
  t.ok(onDisk('dav/drop/in.txt'));
  t.equal((await davRequest('MOVE', '/dav/drop/in.txt', { destination: `${gw.url}/dav/drop/out.txt` })).status, 201, 'within the public folder: allowed');
});

t.test('COPY, MOVE, DELETE and LOCK of a folder holding one the rules keep from the user: refused, nothing touched', async (t) => {
  writeFileSync(join(dav.root, 'dav/admin/secret.txt'), 'secret\n');
  const session = withSession(gw, alice);
  const before = await dav.settledHitCount();
  const attempts: Array<[string, string, OutgoingHttpHeaders]> = [
    ['DELETE', '/dav/', {}],
    ['COPY', '/dav/', { destination: `${gw.url}/dav/files/everything/` }],
    ['MOVE', '/dav/', { destination: `${gw.url}/dav/files/everything/` }],
    ['MOVE', '/dav/files/', { destination: `${gw.url}/dav/`, overwrite: 'T' }],
    ['LOCK', '/dav/', { 'content-type': 'application/xml; charset=utf-8', depth: 'infinity' }],
  ];
  for (const [method, path, headers] of attempts) {
    const answer = await davRequest(method, path, { ...session, ...headers }, method === 'LOCK' ? LOCKINFO : undefined);
    t.equal(answer.status, 403, `${method} ${path} ${String(headers.destination ?? '')}: 403`);
  }
  t.equal(await dav.settledHitCount(), before, 'nothing reached the app');
  t.ok(onDisk('dav/admin/secret.txt'), 'the protected file is where it was');
  t.notOk(onDisk('dav/files/everything'), 'and was copied nowhere');
  // A deny inside refuses even the group's members; a folder with no rule inside is the user's.
  t.equal((await davRequest('DELETE', '/dav/', withSession(gw, root))).status, 403, 'nobody may DELETE the parent of a deny folder');
  mkdirSync(join(dav.root, 'dav/files/old'), { recursive: true });
  t.equal((await davRequest('DELETE', '/dav/files/old/', session)).status, 204, 'alice deletes a folder of her own');
  t.equal((await davRequest('PROPFIND', '/dav/', { ...session, depth: '1' })).status, 207, 'listing the parent is reading it: allowed');
});

t.test('a Destination that cannot be read as one path: 400, nothing forwarded', async (t) => {
  const session = withSession(gw, alice);
  const source = aliceFile('odd.txt');
  const before = await dav.settledHitCount();
  for (const destination of ['dav/admin/x', '//elsewhere.example/dav/admin/x', 'ftp://elsewhere.example/dav/admin/x', `${gw.url}/dav/%2fadmin/x`, `${gw.url}/../dav/admin/x`, `${gw.url}\\dav\\admin\\x`, 'http:///dav/admin/x', 'http://user@elsewhere.example/dav/admin/x']) {
    const answer = await davRequest('MOVE', source, { ...session, destination });
    t.equal(answer.status, 400, `Destination ${destination}: 400`);
    t.match(answer.body, /GW_ERR_BAD_DESTINATION/);
  }
  const twice = await rawRequest(gw, source, { method: 'MOVE', headers: [['host', new URL(gw.url).host], ['cookie', String(session.cookie)], ['accept', 'application/json'], ['destination', `${gw.url}/dav/files/a.txt`], ['destination', `${gw.url}/dav/admin/a.txt`]] });
  t.equal(twice.status, 400, 'two Destination headers: 400');
  t.match(twice.body, /GW_ERR_BAD_DESTINATION/);
  t.equal(await dav.settledHitCount(), before, 'nothing reached the app');
  t.ok(onDisk(source));
  t.equal((await davRequest('GET', source, { ...session, destination: 'not a URI at all' })).status, 200, 'a Destination on a method that writes nowhere is the app\'s business');
});

t.test('the app receives the Destination that was authorised', async (t) => {
  const echo = await bed.gateway(env);
  const cookie = await login(echo, 'alice', 'alice-Pw-0115');
  const forwarded = async (destination: string) => {
    const answer = await rawRequest(echo, '/dav/files/a.txt', { method: 'MOVE', headers: { ...withSession(echo, cookie), destination } });
    t.equal(answer.status, 200);
    return (JSON.parse(answer.body) as { headers: Record<string, string> }).headers.destination;
  };
  t.equal(await forwarded(`${echo.url}/dav/files/x/../%62.txt`), `${echo.url}/dav/files/b.txt`, 'normalised: dot segments removed, unreserved escapes decoded');
  t.equal(await forwarded('/dav/files//c.txt'), '/dav/files/c.txt', 'an absolute path stays one');
  t.equal(await forwarded(`${echo.url}/dav/files/d%20e.txt`), `${echo.url}/dav/files/d%20e.txt`, 'what needs no change is passed as sent');
});

t.test('forward-auth asks the rules at the Destination too', async (t) => {
  const session = withSession(gw, alice);
  const move = (headers: OutgoingHttpHeaders) => callVerify(gw, { ...session, 'x-forwarded-uri': '/dav/files/a.txt', 'x-forwarded-method': 'MOVE', ...headers });
  t.equal((await move({ destination: 'https://app.example/dav/admin/a.txt' })).status, 403, 'MOVE into a groups folder');
  t.equal((await move({ destination: 'https://app.example/dav/files/b.txt' })).status, 204, 'MOVE within the user\'s folder');
  t.equal((await move({ destination: '//app.example/dav/files/b.txt' })).status, 403, 'a Destination that is not one path');
  t.equal((await callVerify(gw, { ...session, 'x-original-uri': '/dav/files/a.txt', destination: '/dav/locked/a.txt' })).status, 403, 'method not named (nginx\'s snippet): a Destination is checked');
  t.equal((await callVerify(gw, { ...session, 'x-forwarded-uri': '/dav/files/a.txt', 'x-forwarded-method': 'GET', destination: '/dav/locked/a.txt' })).status, 204, 'a GET writes nowhere');
  t.equal((await callVerify(gw, { ...withSession(gw, root), 'x-forwarded-uri': '/dav/files/a.txt', 'x-forwarded-method': 'COPY', destination: '/dav/admin/a.txt' })).status, 204, 'an admin may COPY into /dav/admin');
});
