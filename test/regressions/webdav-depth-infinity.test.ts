// Attack: a rule keeps `/dav/admin` to admins, and a signed-in user may list `/dav/`. A PROPFIND
// of `/dav/` with `Depth: infinity` (or no Depth at all, which RFC 4918 reads as infinity) makes a
// server that allows it (here a real Apache mod_dav with `DavDepthInfinity On`) answer with every
// member of every folder inside, `/dav/admin/salaries.txt` and its properties included: the names
// and sizes of what the rule keeps from the user. Depth 1 lists `/dav/admin` itself only.
// Defence: src/access/destination.ts readsWholeTree marks such a request, src/access/rules.ts then
// asks the rules inside the path too (as for COPY, MOVE, DELETE and LOCK), through the proxy and
// /_auth/verify alike.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { callVerify } from '../helpers/forward-auth.js';
import { login, withSession } from '../helpers/gateway.js';
import { startDavServer } from '../helpers/webdav.js';
import { rawRequest, testBed } from './setup.js';

const dav = await startDavServer(t, ['dav', 'dav/files', 'dav/admin'], { depthInfinity: true });
writeFileSync(join(dav.root, 'dav/admin/salaries.txt'), 'secret\n');
writeFileSync(join(dav.root, 'dav/files/notes.txt'), 'notes\n');
const bed = await testBed(t, [
  { username: 'carol', password: 'carol-Pw-0016', groups: ['staff'] },
  { username: 'root', password: 'root-Pw-0016', groups: ['admins'] },
]);
const dir = mkdtempSync(join(tmpdir(), 'sgw-depth-'));
writeFileSync(join(dir, 'rules.yaml'), 'rules:\n  - { path: /dav/admin, policy: { groups: [admins] } }\n');
const gw = await bed.gateway({ GATEWAY_UPSTREAM: dav.url, GATEWAY_ACCESS_RULES: join(dir, 'rules.yaml'), GATEWAY_TRUSTED_PROXIES: '127.0.0.1' });
const carol = await login(gw, 'carol', 'carol-Pw-0016');
const root = await login(gw, 'root', 'root-Pw-0016');

const propfind = (cookie: string, path: string, depth?: string) =>
  rawRequest(gw, path, { method: 'PROPFIND', headers: withSession(gw, cookie, { accept: 'application/xml', ...(depth === undefined ? {} : { depth }) }) });

t.test('the server itself lists the admins\' folder in a Depth infinity PROPFIND (what the rule on /dav/admin does not see)', async (t) => {
  const res = await fetch(`${dav.url}/dav/`, { method: 'PROPFIND', headers: { depth: 'infinity' } });
  t.equal(res.status, 207);
  t.match(await res.text(), /salaries\.txt/);
});

t.test('through the proxy: Depth infinity, or none, of a folder holding one the rules keep from the user: 403, nothing listed', async (t) => {
  for (const depth of ['infinity', 'Infinity', undefined]) {
    const before = await dav.settledHitCount();
    const res = await propfind(carol, '/dav/', depth);
    t.equal(res.status, 403, `Depth ${depth ?? '(none)'}: 403`);
    t.notMatch(res.body, /salaries/);
    t.equal(await dav.settledHitCount(), before, `Depth ${depth ?? '(none)'}: nothing reached the server`);
  }
});

t.test('Depth 0 and 1 list what the user may see; a folder with no rule inside may be read whole; admins read everything', async (t) => {
  const one = await propfind(carol, '/dav/', '1');
  t.equal(one.status, 207, 'Depth 1');
  t.notMatch(one.body, /salaries/, 'lists /dav/admin/ itself, not what is in it');
  t.equal((await propfind(carol, '/dav/', '0')).status, 207, 'Depth 0');
  const files = await propfind(carol, '/dav/files/', 'infinity');
  t.equal(files.status, 207, 'Depth infinity of a folder without a rule inside');
  t.match(files.body, /notes\.txt/);
  const admin = await propfind(root, '/dav/', 'infinity');
  t.equal(admin.status, 207, 'an admin');
  t.match(admin.body, /salaries\.txt/);
});

t.test('through /_auth/verify: the Depth the proxy passes on counts too', async (t) => {
  const verify = (cookie: string, depth: string) => callVerify(gw, { 'x-original-uri': '/dav/', 'x-original-method': 'PROPFIND', depth, cookie: withSession(gw, cookie).cookie });
  t.equal((await verify(carol, 'infinity')).status, 403);
  t.equal((await verify(carol, '1')).status, 204);
  t.equal((await verify(root, 'infinity')).status, 204);
});
