// GET /_auth/verify against a real gateway (Redis, PostgreSQL), as a proxy calls it (SPEC 3): the
// original request named by a trusted proxy (127.0.0.1) and ignored from anyone else (127.0.0.2),
// public paths, the login URL of a 401, 403 for what cannot be authorised, lean 204s.
import t from 'tap';
import { request as httpRequest, type OutgoingHttpHeaders } from 'node:http';
import { callVerify } from '../helpers/forward-auth.js';
import { login, seedUsers, startTestGateway, uniquePrefix, withSession, type TestGateway } from '../helpers/gateway.js';
import { services } from '../helpers/services.js';

const TRUSTED = '127.0.0.1';
const UNTRUSTED = '127.0.0.2';

const { redis, pg } = await services(t);
await seedUsers(t, pg.url, [{ username: 'alice', password: 'alice-fwd-pass', email: 'alice@example.com', groups: ['staff', 'ops'] }]);
const base = { REDIS_URL: redis.url, DATABASE_URL: pg.url, GATEWAY_REDIS_PREFIX: uniquePrefix(), GATEWAY_PUBLIC_PATHS: '/public', GATEWAY_TRUSTED_PROXIES: TRUSTED };
const gw = await startTestGateway(t, base);
const fixed = await startTestGateway(t, { ...base, GATEWAY_PUBLIC_URL: 'https://app.example.com', GATEWAY_VERIFY_ACCESS_LOG: 'true' });
const cookie = await login(gw, 'alice', 'alice-fwd-pass');

/** A verify call from a chosen local address (the gateway trusts 127.0.0.1 only). */
const verify = (target: TestGateway, headers: OutgoingHttpHeaders, options: { from?: string; method?: string; body?: string } = {}) =>
  callVerify(target, headers, { from: TRUSTED, ...options });

const session = withSession(gw, cookie);
const forwarded = (uri: string, extra: OutgoingHttpHeaders = {}) => ({ 'x-forwarded-uri': uri, 'x-forwarded-proto': 'https', 'x-forwarded-host': 'app.example.com', ...extra });

t.test('a valid session: 204 with the identity and nothing a proxy does not need', async (t) => {
  const res = await verify(gw, { ...session, ...forwarded('/app/page') });
  t.equal(res.status, 204);
  t.equal(res.headers['x-forwarded-user'], 'alice');
  t.equal(res.headers['x-forwarded-email'], 'alice@example.com');
  t.equal(res.headers['x-forwarded-groups'], 'staff,ops');
  t.equal(res.headers['cache-control'], 'no-store', 'never cached by a proxy_cache in front');
  const expected = new Set(['x-forwarded-user', 'x-forwarded-email', 'x-forwarded-groups', 'cache-control', 'date', 'connection', 'keep-alive']);
  t.same(Object.keys(res.headers).filter((name) => !expected.has(name)), [], 'no other header (no page headers, no Set-Cookie)');
  t.equal(res.body, '');
});

t.test('anonymous: 401 whose Location is the absolute login URL with rd = the original path and query', async (t) => {
  const res = await verify(gw, forwarded('/app/page?x=1&y=%C3%A9', { 'x-forwarded-method': 'POST' }));
  t.equal(res.status, 401);
  t.equal(res.headers.location, `https://app.example.com/_auth/login?rd=${encodeURIComponent('/app/page?x=1&y=%C3%A9')}`);
  t.equal(res.headers['cache-control'], 'no-store');
  t.same(JSON.parse(res.body), { error: 'authentication required', login: res.headers.location }, 'an API client gets JSON');

  const browser = await verify(gw, forwarded('/app/page', { accept: 'text/html,application/xhtml+xml', 'x-forwarded-method': 'GET' }));
  t.equal(browser.status, 401, 'still 401: the proxy decides what to do with it');
  const location = browser.headers.location ?? '';
  t.equal(location, 'https://app.example.com/_auth/login?rd=%2Fapp%2Fpage');
  t.match(browser.headers['content-type'], /^text\/html/);
  t.ok(browser.body.includes(`<meta http-equiv="refresh" content="0;url=${location}">`), 'a browser shown the 401 itself (Traefik) moves on to the login form');
});

t.test('the path is normalised exactly like the proxy path before it is matched', async (t) => {
  t.equal((await verify(gw, forwarded('/public/x'))).status, 204, 'public path: no session needed');
  t.equal((await verify(gw, forwarded('/public'))).status, 204);
  t.equal((await verify(gw, forwarded('/admin/../public/x'))).status, 204, 'dot segments resolved first');
  t.equal((await verify(gw, forwarded('/public/../admin'))).status, 401, '…both ways');
  t.equal((await verify(gw, forwarded('/publicity'))).status, 401, 'segment boundaries');
  t.equal((await verify(gw, { 'x-original-uri': '//public//x' })).status, 204, 'nginx spelling, repeated slashes');
  const publicWithSession = await verify(gw, { ...session, ...forwarded('/public/x') });
  t.equal(publicWithSession.status, 204);
  t.notOk(publicWithSession.headers['x-forwarded-user'], 'a public path carries no identity, as on the proxy path');
});

t.test('what cannot be authorised safely is 403, never 400 or 500', async (t) => {
  for (const uri of ['/public/%2F../admin', '/../public', '/public/..;/admin', '/a%00', 'http://evil.example/public']) {
    const res = await verify(gw, { ...session, ...forwarded(uri) });
    t.equal(res.status, 403, uri);
    t.notOk(res.headers['x-forwarded-user'], `${uri}: no identity`);
  }
  const conflict = await verify(gw, { ...session, 'x-original-uri': '/admin', 'x-forwarded-uri': '/public/x' });
  t.equal(conflict.status, 403, 'X-Original-URI and X-Forwarded-Uri naming two requests');
  t.ok(gw.logs.some((line) => line.includes('forward-auth request refused') && line.includes('disagree')), 'the reason is logged');
});

t.test('an untrusted peer names nothing: its X-Original-URI and X-Forwarded-* are ignored', async (t) => {
  const spoof = { 'x-original-uri': '/public/x', 'x-forwarded-uri': '/public/x', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' };
  const res = await verify(gw, spoof, { from: UNTRUSTED });
  t.equal(res.status, 401, 'a public path named by an untrusted peer does not open anything');
  t.equal(res.headers.location, `${gw.url}/_auth/login?rd=%2F`, 'the login URL comes from its Host, rd from nothing it said');
  t.equal((await verify(gw, { ...session, 'x-forwarded-uri': '/a/%2F' }, { from: UNTRUSTED })).status, 204, 'its malformed headers are not even read');
  t.equal((await verify(gw, forwarded('/public/x'))).status, 204, 'control: the same headers from the trusted proxy');
  t.ok(gw.logs.some((line) => line.includes('forward-auth: a request came without X-Forwarded-Uri')), 'the operator is told once');
});

t.test('GATEWAY_PUBLIC_URL is the login origin whatever the proxy says', async (t) => {
  const res = await verify(fixed, forwarded('/x', { 'x-forwarded-host': 'other.example' }));
  t.equal(res.headers.location, 'https://app.example.com/_auth/login?rd=%2Fx');
});

t.test('every method nginx may send (its subrequest keeps the client’s), bodies ignored', async (t) => {
  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
    const res = await verify(gw, { ...session, ...forwarded('/app'), 'content-type': 'multipart/form-data; boundary=x', 'content-length': '5' }, { method, body: 'hello' });
    t.equal(res.status, 204, `${method} with an unparsable body`);
    t.equal(res.headers['x-forwarded-user'], 'alice');
  }
  const head = await verify(gw, { ...session, ...forwarded('/app') }, { method: 'HEAD' });
  t.equal(head.status, 204, 'HEAD');
  t.equal((await verify(gw, forwarded('/app'), { method: 'POST' })).status, 401);
});

t.test('after logout the same cookie is 401 again', async (t) => {
  const own = await login(gw, 'alice', 'alice-fwd-pass');
  t.equal((await verify(gw, { ...withSession(gw, own), ...forwarded('/app') })).status, 204);
  const logout = await new Promise<number>((resolve, reject) => {
    const { hostname, port } = new URL(gw.url);
    httpRequest({ host: hostname, port, path: '/_auth/logout', method: 'POST', headers: withSession(gw, own), agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    })
      .on('error', reject)
      .end();
  });
  t.equal(logout, 303);
  t.equal((await verify(gw, { ...withSession(gw, own), ...forwarded('/app') })).status, 401);
});

t.test('verify calls are left out of the access log unless GATEWAY_VERIFY_ACCESS_LOG=true; refusals are logged', async (t) => {
  const accessLines = (target: TestGateway) => target.logs.filter((line) => line.includes('"msg":"request"') && line.includes('"path":"/_auth/verify"'));
  await verify(gw, { ...session, ...forwarded('/app') });
  await verify(gw, forwarded('/app'));
  t.same(accessLines(gw), [], 'the proxy in front logs these requests already');
  t.ok(gw.logs.some((line) => line.includes('"level":40') && line.includes('forward-auth request refused')), 'a 403 is still logged with its reason');
  await verify(fixed, withSession(fixed, await login(fixed, 'alice', 'alice-fwd-pass')));
  const lines = accessLines(fixed).map((line) => JSON.parse(line) as { status: number; user: string | null });
  t.ok(lines.some((line) => line.status === 204 && line.user === 'alice'), 'opted in: one line per verify, with the user');
});
