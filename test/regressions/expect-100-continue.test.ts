// Attack (really: an ordinary client): curl sends `Expect: 100-continue` before any body over
// 1 MiB, and .NET clients before every POST. The gateway forwarded the header to its HTTP client,
// which refuses it: every large upload answered 502 and counted as the app's failure.
// Defence: the gateway answers `100 Continue` and src/proxy/hop-by-hop.ts drops `Expect` (with the
// other hop-by-hop headers) before forwarding: the app receives the whole body, without the header.
// And the 100 waits for the access decision (src/proxy/expect-continue.ts): Node used to send it
// before any check, so a refused upload (anonymous, or a user without the rule's group) was sent
// anyway, megabytes of it, only to be read and thrown away. Now the refusal comes at once, without
// a 100, and the connection closes; the gateway's own forms still get their 100 at once.
import t from 'tap';
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { login } from '../helpers/gateway.js';
import { scrapeMetric } from '../helpers/metrics.js';
import { testBed } from './setup.js';

const run = promisify(execFile);
const bed = await testBed(t, [{ username: 'ursula', password: 'ursula-Pw-0001' }], (echo, res) => {
  // Answer with what arrived, not the body itself (3 MiB of JSON would only slow the test).
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ bytes: Buffer.byteLength(echo.body), expect: echo.headers.expect ?? null, tail: echo.body.slice(-16) }));
  return true;
});
const gw = await bed.gateway({ GATEWAY_PUBLIC_PATHS: '/public' });
const cookie = await login(gw, 'ursula', 'ursula-Pw-0001');

const dir = mkdtempSync(join(tmpdir(), 'sgw-expect-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const upload = join(dir, 'upload.bin');
const body = 'x'.repeat(3 * 1024 * 1024 - 16) + 'end-of-the-body!';
writeFileSync(upload, body);

/** Real curl, as a user would run it: it adds `Expect: 100-continue` itself for a body this big. */
async function curlUpload(path: string, extra: string[] = [], data = `@${upload}`): Promise<{ status: number; output: string; trace: string }> {
  const { stdout, stderr } = await run('curl', ['-sS', '-v', '--data-binary', data, '-H', 'content-type: application/octet-stream', '-H', 'accept: application/json', ...extra, '-w', '\n%{http_code}', `${gw.url}${path}`], { maxBuffer: 16 * 1024 * 1024 });
  const cut = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(cut + 1)), output: stdout.slice(0, cut), trace: stderr };
}

t.test('a 3 MiB upload from curl (Expect: 100-continue) reaches the app whole', async (t) => {
  const res = await curlUpload('/upload', ['-b', `sgw_session=${encodeURIComponent(cookie)}`]);
  t.match(res.trace, /> Expect: 100-continue/i, 'curl did ask for 100 Continue');
  t.match(res.trace, /< HTTP\/1.1 100 Continue/, 'and the gateway answered it');
  t.equal(res.status, 200);
  t.same(JSON.parse(res.output), { bytes: body.length, expect: null, tail: 'end-of-the-body!' }, 'every byte, and no Expect header for the app');
});

t.test('on a public path too, and nothing counted as an upstream failure', async (t) => {
  const res = await curlUpload('/public/upload');
  t.equal(res.status, 200);
  t.equal((JSON.parse(res.output) as { bytes: number }).bytes, body.length);
  t.equal(await scrapeMetric(gw.adminUrl, 'gateway_upstream_request_duration_seconds_count', { status_class: '5xx' }), 0, 'no upstream 5xx');
});

t.test('a small body with Expect set by the client (as .NET does) works the same', async (t) => {
  const res = await curlUpload('/public/small', ['-H', 'Expect: 100-continue'], 'a few bytes');
  t.match(res.trace, /< HTTP\/1.1 100 Continue/);
  t.equal(res.status, 200);
  t.same(JSON.parse(res.output), { bytes: 11, expect: null, tail: 'a few bytes' });
});

/** The first bytes the gateway answers a request that waits for 100 Continue, the body held back. */
function firstAnswer(path: string, headers: Record<string, string> = {}): Promise<string> {
  const { hostname, port } = new URL(gw.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      const lines = [`PUT ${path} HTTP/1.1`, `Host: ${hostname}:${port}`, 'Content-Length: 50000000', 'Expect: 100-continue', 'Accept: application/json', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    });
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
    });
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
    setTimeout(() => {
      socket.destroy();
      resolve(text);
    }, 2_000);
  });
}

t.test('a refused upload gets its refusal at once, no 100 Continue, and the connection closes', async (t) => {
  const anonymous = await firstAnswer('/upload');
  t.match(anonymous, /^HTTP\/1\.1 401 /, 'anonymous: 401 first, no 100');
  t.match(anonymous, /\r\nConnection: close\r\n/i, 'and the connection closes (the body was never sent)');
  const allowed = await firstAnswer('/upload', { cookie: `sgw_session=${encodeURIComponent(cookie)}` });
  t.match(allowed, /^HTTP\/1\.1 100 Continue\r\n/, 'signed in: 100 Continue, then the body is awaited');
  const login = await firstAnswer('/_auth/login');
  t.match(login, /^HTTP\/1\.1 100 Continue\r\n/, 'the gateway\'s own routes: 100 at once, as before');
});
