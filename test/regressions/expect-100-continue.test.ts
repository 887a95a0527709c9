// Attack (really: an ordinary client): curl sends `Expect: 100-continue` before any body over
// 1 MiB, and .NET clients before every POST. The gateway forwarded the header to its HTTP client,
// which refuses it: every large upload answered 502 and counted as the app's failure.
// Defence: Node answers `100 Continue` itself and src/proxy/hop-by-hop.ts drops `Expect` (with the
// other hop-by-hop headers) before forwarding: the app receives the whole body, without the header.
import t from 'tap';
import { execFile } from 'node:child_process';
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
