// Attack: a request with a malformed Host (`Host: evil.example/x?`) makes the gateway build an
// absolute URL from it: an app's redirect to its own address came back as
// `Location: http://evil.example/x?/dir/`, with the app's `Cache-Control: public`, so a shared cache
// could hand that redirect to every user (web cache poisoning); a forged X-Forwarded-Host does the
// same through a trusted proxy, and poisons the login URL of verify's 401.
// Defence: src/http.ts hostRefusal, asked first by every door (the onRequest step in app.ts and
// the verify fast path): a Host (and a trusted proxy's X-Forwarded-Host) that is not a host name or
// address with an optional port gets 400 before any route runs; with GATEWAY_PUBLIC_URL, absolute
// URLs are built from it, never from the request.
import t from 'tap';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { login, withSession, type TestGateway } from '../helpers/gateway.js';
import { testBed } from './setup.js';

let upstreamOrigin = '';
const bed = await testBed(t, [{ username: 'alice', password: 'alice-Pw-0031' }], (echo, res) => {
  if (echo.url !== '/dir') return false;
  // A directory redirect to the app's own address, cacheable, as many app servers send it.
  res.writeHead(301, { location: `${upstreamOrigin}/dir/`, 'cache-control': 'public, max-age=3600' });
  res.end();
  return true;
});
upstreamOrigin = bed.upstream.url;
const direct = await bed.gateway({ GATEWAY_PUBLIC_PATHS: '/public' });
// Behind a proxy on 127.0.0.1 (trusted) with the public origin configured.
const behind = await bed.gateway({ GATEWAY_PUBLIC_PATHS: '/public', GATEWAY_TRUSTED_PROXIES: '127.0.0.1', GATEWAY_PUBLIC_URL: 'https://app.example' });
const cookie = await login(direct, 'alice', 'alice-Pw-0031');

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A request with exactly these headers (Host included), from `localAddress`. */
function ask(gw: TestGateway, path: string, headers: Array<[string, string]>, localAddress = '127.0.0.1'): Promise<Answer> {
  const { hostname, port } = new URL(gw.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, path, localAddress, agent: false, headers: headers.flat() as unknown as Record<string, string> }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject).end();
  });
}

const MALFORMED = ['evil.example/x?', 'evil.example?x', 'evil.example#x', 'user@evil.example', 'evil example', 'evil.example\\x', '%65vil.example', 'evil.example:99999', 'evil.example:80x', '[::1', 'evil.example,other.example', ''];
const session = (gw: TestGateway) => Object.entries(withSession(gw, cookie)) as Array<[string, string]>;

t.test('a malformed Host gets 400 on every door, before any URL is built from it', async (t) => {
  for (const host of MALFORMED) {
    const before = bed.upstream.received.length;
    const redirect = await ask(direct, '/dir', [['Host', host], ...session(direct)]);
    t.equal(redirect.status, 400, `${JSON.stringify(host)}: the app's redirect is never rewritten with it`);
    t.equal(redirect.headers.location, undefined);
    t.equal(redirect.headers['cache-control'], 'no-store', 'and the refusal is not cacheable');
    t.equal(bed.upstream.received.length, before, 'the app is not reached');
    t.equal((await ask(direct, '/app', [['Host', host], ['Accept', 'text/html']])).status, 400, `${JSON.stringify(host)}: no login redirect either`);
    t.equal((await ask(direct, '/public/x', [['Host', host]])).status, 400, 'public paths too');
    t.equal((await ask(direct, '/_auth/login', [['Host', host], ['Accept', 'text/html']])).status, 400, 'the login page');
    t.equal((await ask(direct, '/_auth/verify', [['Host', host], ['Accept', 'text/html']])).status, 400, "verify's 401 login URL");
    // The fast path: a trusted proxy naming an allowed request for a cached session.
    t.equal((await ask(behind, '/_auth/verify', [['Host', host], ['X-Forwarded-Uri', '/app'], ['X-Forwarded-Method', 'GET'], ...session(behind)])).status, 400, 'the verify fast path');
  }
});

t.test('a well-formed Host without GATEWAY_PUBLIC_URL: the redirect names that host, nothing more', async (t) => {
  for (const host of ['app.example', 'app.example:8443', '127.0.0.1:8000', '[::1]:8000', 'intranet_host']) {
    const res = await ask(direct, '/dir', [['Host', host], ...session(direct)]);
    t.equal(res.status, 301);
    t.equal(res.headers.location, `http://${host}/dir/`);
  }
});

t.test('with GATEWAY_PUBLIC_URL, absolute URLs come from it, never from the request', async (t) => {
  const viaProxy = await ask(behind, '/dir', [['Host', 'other.example'], ['X-Forwarded-Host', 'evil.example'], ...session(behind)]);
  t.equal(viaProxy.status, 301);
  t.equal(viaProxy.headers.location, 'https://app.example/dir/', "the app's redirect");
  const unauth = await ask(behind, '/_auth/verify', [['Host', 'gateway'], ['X-Forwarded-Host', 'evil.example'], ['X-Forwarded-Uri', '/app?x=1'], ['Accept', 'application/json']]);
  t.equal(unauth.status, 401);
  t.equal(unauth.headers.location, `https://app.example/_auth/login?rd=${encodeURIComponent('/app?x=1')}`, "verify's login URL");
});

t.test("a trusted proxy's malformed X-Forwarded-Host gets 400; an untrusted peer's is not believed", async (t) => {
  const forged = await ask(behind, '/_auth/verify', [['Host', 'gateway'], ['X-Forwarded-Host', 'evil.example/x?'], ['X-Forwarded-Uri', '/app']]);
  t.equal(forged.status, 400);
  t.equal(forged.headers.location, undefined);
  const untrusted = await ask(behind, '/dir', [['Host', 'app.example'], ['X-Forwarded-Host', 'evil.example/x?'], ...session(behind)], '127.0.0.2');
  t.equal(untrusted.status, 301, 'from anyone else the header is ignored, as ever');
  t.equal(untrusted.headers.location, 'https://app.example/dir/');
});
