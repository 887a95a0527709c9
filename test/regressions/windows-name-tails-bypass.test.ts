// Attack: behind the gateway runs an app on Windows that serves files by path (IIS's static files,
// classic ASP and ASP.NET pages under a folder). Windows drops the dots and spaces that end a name
// and reads what follows a `:` as a stream of it, so `/admin./report.txt`, `/admin%20/report.txt`
// and `/admin::$INDEX_ALLOCATION/report.txt` are the file `admin\report.txt`, and IIS matches
// names without case (`/ADMIN./report.txt`). A rule on `/admin` matched against the path as sent
// let a user outside `admins` read the folder, and walked into a `deny`-ed one.
// Defence (SPEC 4): src/access/paths.ts withoutWindowsNameTails is one more reading
// (otherReadings); the rules written for it must allow too (rules.ts, with the case reading for
// deny and groups rules); the app still receives the path as sent.
// The app here is a small file server over a real folder that resolves names the way Win32 does
// (each segment: up to a `:`, trailing dots and spaces trimmed, compared without case), standing in
// for IIS, which Debian does not have.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { withSession } from '../helpers/gateway.js';
import { checkRefusedThroughProxy, rawRequest, readingsBed } from './setup.js';

const root = mkdtempSync(join(tmpdir(), 'sgw-windows-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
for (const folder of ['admin', 'internal', 'help', 'reports']) {
  mkdirSync(join(root, folder));
  writeFileSync(join(root, folder, 'report.txt'), `${folder} report`);
}

/** One segment as Win32 opens it: the name before any stream, without trailing dots or spaces. */
const win32Name = (segment: string) => decodeURIComponent(segment).split(':')[0]!.replace(/[. ]+$/, '');

function resolveLikeWindows(urlPath: string): string | null {
  let dir = root;
  for (const segment of urlPath.split('?')[0]!.split('/').filter(Boolean)) {
    const name = win32Name(segment).toLowerCase();
    const entry = readdirSync(dir).find((e) => e.toLowerCase() === name);
    if (entry === undefined) return null;
    dir = join(dir, entry);
  }
  return statSync(dir).isFile() ? dir : null;
}

const app = createServer((req, res) => {
  const file = resolveLikeWindows(req.url ?? '/');
  res.writeHead(file ? 200 : 404, { 'content-type': 'application/json' });
  res.end(JSON.stringify(file ? { route: file.slice(root.length).replaceAll('\\', '/'), content: readFileSync(file, 'utf8'), user: req.headers['x-forwarded-user'] ?? null } : { error: 'not found' }));
});
await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
t.teardown(() => new Promise((resolve) => app.close(resolve)));
const address = app.address();
const appUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;

const { gw, carol, alice } = await readingsBed(t, appUrl, '/help');
const json = { accept: 'application/json' };

const INTO_ADMIN = ['/admin./report.txt', '/admin%20/report.txt', '/admin.%20./report.txt', '/admin::$INDEX_ALLOCATION/report.txt', '/admin:$I30:$INDEX_ALLOCATION/report.txt', '/ADMIN./report.txt', '/Admin%20/report.txt'];
const INTO_INTERNAL = ['/internal./report.txt', '/internal::$INDEX_ALLOCATION/report.txt', '/INTERNAL%20/report.txt'];

t.test('the app itself serves the protected folders under these names (what makes the raw reading unsafe)', async (t) => {
  for (const target of [...INTO_ADMIN, ...INTO_INTERNAL]) {
    const res = await rawRequest({ url: appUrl } as Parameters<typeof rawRequest>[0], target);
    t.equal(res.status, 200, target);
    t.match(JSON.parse(res.body) as unknown, { route: /^\/(admin|internal)\/report\.txt$/ }, `${target}: a file of the protected folder`);
  }
});

t.test('through the proxy: 403 for a user outside the group, 401 (deny: 403) without a session, nothing reaches the app', async (t) => {
  await checkRefusedThroughProxy(t, gw, carol, INTO_ADMIN, INTO_INTERNAL);
});

t.test('an admin reads the folder under any of its names, the path as sent; other folders pass', async (t) => {
  const res = await rawRequest(gw, '/admin./report.txt', { headers: withSession(gw, alice, json) });
  t.equal(res.status, 200);
  t.same(JSON.parse(res.body), { route: '/admin/report.txt', content: 'admin report', user: 'alice' });
  for (const target of ['/reports./report.txt', '/reports%20/report.txt', '/help./report.txt']) {
    const other = await rawRequest(gw, target, { headers: withSession(gw, carol, json) });
    t.equal(other.status, 200, `control: ${target} passes`);
  }
  const anonymous = await rawRequest(gw, '/help/report.txt', { headers: json });
  t.equal(anonymous.status, 200, 'control: the public folder stays public');
});
