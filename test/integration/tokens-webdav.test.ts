// Real clients with HTTP Basic (SPEC 9): Debian's cadaver (credentials from ~/.netrc, after the
// gateway's `WWW-Authenticate: Basic` challenge) and curl (`-u`, with the password and with an API
// token as the password) work with a real WebDAV server (Apache httpd + mod_dav) through the
// gateway, which forwards the identity and never the credential.
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { migrateTokens } from '../../src/tokens/migrations.js';
import { createToken } from '../../src/tokens/token-admin.js';
import { createPostgresTokenStore } from '../../src/tokens/token-store.js';
import { createPostgresUserStore } from '../../src/users/user-store.js';
import { findBinary } from '../helpers/proxies.js';
import { startDavServer } from '../helpers/webdav.js';
import { testBed } from '../regressions/setup.js';

const PASSWORD = 'alice-Pw-0115-long';
const dav = await startDavServer(t, ['dav', 'dav/notes']);
const bed = await testBed(t, [{ username: 'alice', password: PASSWORD }]);
await migrateTokens(bed.pool);
const gw = await bed.gateway({ GATEWAY_UPSTREAM: dav.url, GATEWAY_BASIC_AUTH: 'true' });
const users = createPostgresUserStore(bed.pool);
const { token } = await createToken(createPostgresTokenStore(bed.pool), (n) => users.find(n), { user: 'alice', name: 'curl', expiresInMs: null });
const home = mkdtempSync(join(tmpdir(), 'sgw-dav-client-'));
t.teardown(() => rmSync(home, { recursive: true, force: true }));

function run(command: string, args: string[], stdin = ''): Promise<{ code: number | null; output: string }> {
  const child = spawn(command, args, { cwd: home, env: { ...process.env, HOME: home }, stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  child.stdin.end(stdin);
  return exited.then((code) => ({ code, output }));
}

t.test('cadaver signs in with Basic from ~/.netrc and works on the DAV server', async (t) => {
  const cadaver = findBinary('cadaver', 'install the Debian package cadaver');
  writeFileSync(join(home, '.netrc'), `machine 127.0.0.1 login alice password ${PASSWORD}\n`);
  chmodSync(join(home, '.netrc'), 0o600);
  writeFileSync(join(home, 'local.txt'), 'from cadaver\n');
  const script = ['mkcol shared', 'cd shared', `put ${join(home, 'local.txt')} doc.txt`, 'lock doc.txt', 'unlock doc.txt', 'ls', 'quit', ''].join('\n');
  const { code, output } = await run(cadaver, [`${gw.url}/dav/notes/`], script);
  t.equal(code, 0, output);
  t.match(output, /doc\.txt/, 'ls lists the uploaded file');
  t.notMatch(output, /401|403|404|failed|Authentication required/i, 'no step failed');
  t.equal(readFileSync(join(dav.root, 'dav/notes/shared/doc.txt'), 'utf8'), 'from cadaver\n', 'the file is on the DAV server');
  for (const method of ['MKCOL', 'PUT', 'LOCK', 'UNLOCK', 'PROPFIND']) {
    const hit = (await dav.waitForHit((h) => h.method === method && h.path.startsWith('/dav/notes/shared'))).find((h) => h.method === method && h.path.startsWith('/dav/notes/shared'));
    t.equal(hit?.user, 'alice', `${method} reached the DAV server as alice`);
  }
});

t.test('curl -u with the password, and with an API token as the password', async (t) => {
  const curl = findBinary('curl', 'install the Debian package curl');
  writeFileSync(join(home, 'up.txt'), 'from curl\n');
  const put = await run(curl, ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-u', `alice:${PASSWORD}`, '-T', join(home, 'up.txt'), `${gw.url}/dav/notes/up.txt`]);
  t.equal(put.output, '201', 'PUT with the password');
  const find = await run(curl, ['-sS', '-w', '\n%{http_code}', '-u', `alice:${token}`, '-X', 'PROPFIND', '-H', 'Depth: 1', `${gw.url}/dav/notes/`]);
  t.match(find.output, /up\.txt[\s\S]*\n207$/, 'PROPFIND with the token as the password: 207 listing the file');
  const wrong = await run(curl, ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-u', 'alice:wrong-password', `${gw.url}/dav/notes/`]);
  t.equal(wrong.output, '401');
  const hits = await dav.waitForHit((h) => h.method === 'PROPFIND' && h.path === '/dav/notes/');
  t.equal(hits.find((h) => h.method === 'PUT' && h.path === '/dav/notes/up.txt')?.user, 'alice');
  t.equal(hits.filter((h) => h.status === 401).length, 0, 'the DAV server never saw a refused request');
});
