// The common proxied request is answered before fastify's router (src/proxy/fast-path.ts). Neither
// the app nor the client nor the operator may tell the two ways apart: the same headers reach the
// app, the same answer reaches the client, each request is counted and logged once; whatever the
// fast path does not answer itself (no session, a refusal, a failed upstream call) is answered by
// the route exactly as before, without validating twice or calling the app twice.
// A GET with `Content-Length: 0` always takes the route: it is the control of every comparison.
import t from 'tap';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect, createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { login, seedUsers, startTestGateway, uniquePrefix, withSession, type TestGateway } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import { scrapeMetric } from '../helpers/metrics.js';
import { services } from '../helpers/services.js';

/** Bigger than every socket buffer between the app and the client (loopback's reach a few MiB each). */
const LARGE_BYTES = 64 * 1024 * 1024;
const LARGE_CHUNK = 64 * 1024;
/** How much of /large the app has written so far. */
const largeSent = { bytes: 0 };
/** The chunk of /large at `offset`: each 4-byte word is its own offset, so a byte lost, repeated or reordered shows. */
function largeChunk(offset: number): Buffer {
  const chunk = Buffer.allocUnsafe(Math.min(LARGE_CHUNK, LARGE_BYTES - offset));
  for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE(offset + i, i);
  return chunk;
}

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  /** The gateway's side of the connection the request came over. */
  port: number;
}

/** The app: echoes what it received; a few paths answer otherwise (cookies, a redirect, a stall, a broken body). */
async function startApp(): Promise<{ url: string; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, port: req.socket.remotePort ?? 0 });
    const path = (req.url ?? '').split('?')[0];
    if (path === '/stall') return; // never answers: the upstream timeout
    if (path === '/broken-before-body') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100', 'content-encoding': 'gzip', 'x-app': 'yes' });
      res.flushHeaders();
      setTimeout(() => res.socket?.destroy(), 50);
      return;
    }
    if (path === '/broken-mid-body') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100' });
      res.write('first part');
      setTimeout(() => res.socket?.destroy(), 50);
      return;
    }
    if (path === '/slow-body') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('start');
      setTimeout(() => res.end('end'), 1_000);
      return;
    }
    if (path === '/large') return void sendLarge(res);
    if (path === '/cookies') {
      res.setHeader('set-cookie', ['app=1; Path=/', 'sgw_session=stolen; Path=/', 'sgw_csrf=x']);
      res.setHeader('location', `http://127.0.0.1:${(server.address() as AddressInfo).port}/inside?x=1`);
      res.setHeader('connection', 'keep-alive, x-app-hop');
      res.setHeader('x-app-hop', 'private');
      res.setHeader('keep-alive', 'timeout=5');
      res.statusCode = 302;
      return void res.end();
    }
    res.writeHead(200, { 'content-type': 'application/json', 'x-app': 'yes' });
    res.end(req.method === 'HEAD' ? undefined : JSON.stringify({ url: req.url }));
  });
  /** LARGE_BYTES of a known pattern, written only as fast as the gateway takes them. */
  const sendLarge = (res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(LARGE_BYTES) });
    let sent = 0;
    const more = () => {
      while (sent < LARGE_BYTES) {
        const chunk = largeChunk(sent);
        sent += chunk.length;
        largeSent.bytes = sent;
        if (!res.write(chunk)) return void res.once('drain', more);
      }
      res.end();
    };
    more();
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

const { redis, pg } = await services(t);
await seedUsers(t, pg.url, [{ username: 'ada', password: 'ada-proxy-fast-password', email: 'ada@example.com', groups: ['admins', 'ops'] }]);
const app = await startApp();
t.teardown(() => app.close());
const dir = mkdtempSync(join(tmpdir(), 'sgw-proxy-fast-'));
writeFileSync(join(dir, 'rules.yaml'), '- path: /open\n  policy: public\n- path: /admin\n  policy: { groups: [admins] }\n- path: /nobody\n  policy: { groups: [nobody] }\n');
const gw = await startTestGateway(t, {
  REDIS_URL: redis.url,
  DATABASE_URL: pg.url,
  GATEWAY_REDIS_PREFIX: uniquePrefix(),
  GATEWAY_UPSTREAM: app.url,
  GATEWAY_UPSTREAM_TIMEOUT: '500ms',
  GATEWAY_ACCESS_RULES: join(dir, 'rules.yaml'),
});
const ada = withSession(gw, await login(gw, 'ada', 'ada-proxy-fast-password'));

/** The same request by the fast path, then by the route (`Content-Length: 0`); what the app saw of each. */
async function bothWays(path: string, headers: Record<string, string>, method = 'GET', target: TestGateway = gw) {
  const fast = await send(`${target.url}${path}`, { method, headers });
  const fastSeen = app.seen.at(-1)!;
  const route = await send(`${target.url}${path}`, { method, headers: { ...headers, 'content-length': '0' } });
  const routeSeen = app.seen.at(-1)!;
  return { fast, route, fastSeen, routeSeen };
}

/** What may differ between the two: the time, and the Content-Length the control itself sent. */
const comparable = (headers: IncomingHttpHeaders) => {
  const { date: _date, 'content-length': _length, ...rest } = headers;
  return rest;
};

const metric = (name: string, labels: Record<string, string> = {}) => scrapeMetric(gw.adminUrl, name, labels);

t.test('the app receives the same headers, the client the same answer, either way', async (t) => {
  const cases: Array<{ name: string; path: string; method?: string; headers: Record<string, string> }> = [
    { name: 'a signed-in GET with a query', path: '/app/page?a=1&b=%20x', headers: { ...ada, 'x-request-id': 'same-id-1' } },
    { name: 'a HEAD', path: '/app/page', method: 'HEAD', headers: { ...ada, 'x-request-id': 'same-id-2' } },
    { name: 'a spaced, accented name', path: '/files/My%20Report%20caf%C3%A9.pdf', headers: { ...ada, 'x-request-id': 'same-id-2b' } },
    { name: 'a public path, no session', path: '/open/x', headers: { 'x-request-id': 'same-id-3' } },
    {
      name: 'spoofed identity, the gateway cookies among the app\u2019s, headers named by Connection',
      path: '/admin/x',
      headers: {
        cookie: `app=1; ${ada.cookie}; sgw_csrf=abc; other=2`,
        'x-request-id': 'same-id-4',
        'x-forwarded-user': 'mallory',
        x_forwarded_groups: 'admins',
        'x-forwarded-for': '10.0.0.1',
        'x-real-ip': '10.0.0.2',
        connection: 'keep-alive, x-secret',
        'x-secret': 'hop',
      },
    },
    { name: 'an app answer with the gateway cookies, an internal Location, hop-by-hop headers', path: '/cookies', headers: { ...ada, 'x-request-id': 'same-id-5', host: 'app.example.com:8443' } },
  ];
  for (const c of cases) {
    const { fast, route, fastSeen, routeSeen } = await bothWays(c.path, c.headers, c.method);
    t.equal(fast.status, route.status, `${c.name}: status`);
    t.same(comparable(fast.headers), comparable(route.headers), `${c.name}: the client's headers`);
    t.equal(fast.body, route.body, `${c.name}: the body`);
    t.equal(fastSeen.url, routeSeen.url, `${c.name}: the URL the app received`);
    t.same(comparable(fastSeen.headers), comparable(routeSeen.headers), `${c.name}: the headers the app received`);
    t.not(fastSeen.port, routeSeen.port, `${c.name}: the two came over different connections (the fast path has its own)`);
  }
  const spoofed = app.seen.find((s) => s.headers['x-request-id'] === 'same-id-4')!;
  t.equal(spoofed.headers['x-forwarded-user'], 'ada', 'the identity is the session\u2019s, not the client\u2019s');
  t.equal(spoofed.headers.cookie, 'app=1; other=2', 'the gateway cookies never reach the app');
  t.equal(spoofed.headers['x-secret'], undefined, 'a header the client named in Connection is not forwarded');
  const cookies = await send(`${gw.url}/cookies`, { headers: { ...ada, host: 'app.example.com:8443' } });
  t.same(cookies.headers['set-cookie'], ['app=1; Path=/'], 'the app cannot set the gateway cookies');
  t.equal(cookies.headers.location, 'http://app.example.com:8443/inside?x=1', 'an internal redirect points at the gateway');
  t.equal(cookies.headers['x-app-hop'], undefined, 'a header the app named in Connection is not forwarded');
});

t.test('paths the proxy plugin decodes or re-parses reach the app as the route sends them, or are answered as it answers them', async (t) => {
  const paths = [
    '/..foo', '/a/..b', '/a/b..', '/a..', '/a%20b/c', '/caf%C3%A9/x', '/a%2Fb', '/%2e%2e/x', '/a/%2E%2E', '/a%5c..%5cb', '/a%5C..%5Cb/c',
    '/x%zz', '/x%E0%A4%A', '/a;b=c/d', '/~user/', "/a'b", '/(x)', '/a:b@c', '/a//b', '/a/./b', '/%00', '/a%0Ab', '/%C0%AE%C0%AE/x', '/a?b=%zz&c=d e',
  ];
  for (const path of paths) {
    const before = app.seen.length;
    const fast = await send(`${gw.url}${path}`, { headers: { ...ada, 'x-request-id': 'paths' } });
    const fastSeen = app.seen.length > before ? app.seen.at(-1)!.url : null;
    const middle = app.seen.length;
    const route = await send(`${gw.url}${path}`, { headers: { ...ada, 'x-request-id': 'paths', 'content-length': '0' } });
    const routeSeen = app.seen.length > middle ? app.seen.at(-1)!.url : null;
    t.equal(fast.status, route.status, `${path}: status`);
    t.equal(fastSeen, routeSeen, `${path}: what the app received`);
    t.same(fast.status === 200 ? null : fast.json(), route.status === 200 ? null : route.json(), `${path}: the refusal`);
  }
});

t.test('behind a trusted proxy: its X-Forwarded-* read the same way, the client address logged the same', async (t) => {
  const behind = await startTestGateway(t, { REDIS_URL: redis.url, DATABASE_URL: pg.url, GATEWAY_REDIS_PREFIX: uniquePrefix(), GATEWAY_UPSTREAM: app.url, GATEWAY_TRUSTED_PROXIES: '127.0.0.1' });
  const cookie = withSession(behind, await login(behind, 'ada', 'ada-proxy-fast-password'));
  const headers = { ...cookie, 'x-forwarded-for': '198.51.100.7, 203.0.113.9', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'app.example.com', 'x-request-id': 'behind-1' };
  const { fast, route, fastSeen, routeSeen } = await bothWays('/cookies', headers, 'GET', behind);
  t.equal(fast.status, route.status);
  t.same(comparable(fast.headers), comparable(route.headers), 'the same answer (its Location from the forwarded proto and host)');
  t.equal(fast.headers.location, 'https://app.example.com/inside?x=1');
  t.same(comparable(fastSeen.headers), comparable(routeSeen.headers), 'the same headers reach the app');
  t.equal(fastSeen.headers['x-forwarded-for'], '198.51.100.7, 203.0.113.9, 127.0.0.1', 'the proxy\u2019s list, extended');
  t.not(fastSeen.port, routeSeen.port, 'the fast path answered the first');
  const ips = behind.logs.filter((l) => l.includes('"reqId":"behind-1"') && /"msg":"request"/.test(l)).map((l) => (JSON.parse(l) as { ip: string }).ip);
  t.same(ips, ['203.0.113.9', '203.0.113.9'], 'the client address the trusted proxy gave, in both access lines');
});

t.test('with GATEWAY_UPSTREAM_ROUTES: each prefix to its app, on segment boundaries, either way', async (t) => {
  const reports = await startApp();
  t.teardown(() => reports.close());
  const split = await startTestGateway(t, { REDIS_URL: redis.url, DATABASE_URL: pg.url, GATEWAY_REDIS_PREFIX: uniquePrefix(), GATEWAY_UPSTREAM: app.url, GATEWAY_UPSTREAM_ROUTES: `/reports=${reports.url}` });
  const cookie = withSession(split, await login(split, 'ada', 'ada-proxy-fast-password'));
  for (const [path, to] of [['/reports', reports], ['/reports/2026?q=1', reports], ['/reportsx', app], ['/other/reports', app], ['/cookies', app]] as const) {
    const fast = await send(`${split.url}${path}`, { headers: { ...cookie, 'x-request-id': 'split' } });
    const fastSeen = to.seen.at(-1)!;
    const route = await send(`${split.url}${path}`, { headers: { ...cookie, 'x-request-id': 'split', 'content-length': '0' } });
    const routeSeen = to.seen.at(-1)!;
    t.equal(fastSeen.url, path, `${path}: reached ${to === reports ? 'the reports app' : 'GATEWAY_UPSTREAM'}`);
    t.equal(routeSeen.url, path, `${path}: the route sends it there too`);
    t.not(fastSeen.port, routeSeen.port, `${path}: the first by the fast path`);
    t.same(comparable(fast.headers), comparable(route.headers), `${path}: the same answer (a Location to the app rewritten)`);
    t.same(comparable(fastSeen.headers), comparable(routeSeen.headers), `${path}: the same headers reach the app`);
  }
});

t.test('each request counted and logged once', async (t) => {
  const before = {
    ok: await metric('gateway_request_duration_seconds_count', { method: 'GET', status_class: '2xx' }),
    upstream: await metric('gateway_upstream_request_duration_seconds_count', { status_class: '2xx' }),
    valid: await metric('gateway_session_validations_total', { outcome: 'valid' }),
    hits: await metric('gateway_session_cache_requests_total', { result: 'hit' }),
  };
  const lines = gw.logs.length;
  for (let i = 0; i < 4; i++) t.equal((await send(`${gw.url}/counted/${i}`, { headers: { ...ada, 'x-request-id': `counted-${i}` } })).status, 200);
  t.equal(await metric('gateway_request_duration_seconds_count', { method: 'GET', status_class: '2xx' }) - before.ok, 4, 'four requests');
  t.equal(await metric('gateway_upstream_request_duration_seconds_count', { status_class: '2xx' }) - before.upstream, 4, 'four upstream calls');
  t.equal(await metric('gateway_session_validations_total', { outcome: 'valid' }) - before.valid, 4, 'four validations');
  t.equal(await metric('gateway_session_cache_requests_total', { result: 'hit' }) - before.hits, 4, 'four cache hits');
  const access = gw.logs.slice(lines).filter((line) => /"msg":"request"/.test(line) && /"path":"\/counted\//.test(line));
  t.equal(access.length, 4, 'one access line each');
  const first = JSON.parse(access[0]!) as Record<string, unknown>;
  t.same(Object.keys(first), ['level', 'time', 'service', 'reqId', 'method', 'path', 'status', 'ms', 'user', 'ip', 'msg'], 'the fields of SPEC 7, in order');
  t.match(first, { reqId: 'counted-0', method: 'GET', path: '/counted/0', status: 200, user: 'ada', ip: '127.0.0.1' });
  t.type(first.ms, 'number');
  t.notOk(access.some((line) => line.includes(ada.cookie!.split('=')[1]!.slice(0, 20))), 'no cookie in the log');
});

t.test('a session this replica has not cached yet: looked up in Redis once, then forwarded by the fast path', async (t) => {
  const replica = await startTestGateway(t, { ...gw.env });
  const scrape = (name: string, labels: Record<string, string>) => scrapeMetric(replica.adminUrl, name, labels);
  const first = await send(`${replica.url}/replica/1`, { headers: ada });
  t.equal(first.status, 200, 'the other replica\u2019s session is valid here');
  const firstPort = app.seen.at(-1)!.port;
  t.equal((await send(`${replica.url}/replica/2`, { headers: ada })).status, 200);
  await send(`${replica.url}/replica/3`, { headers: { ...ada, 'content-length': '0' } });
  t.not(app.seen.at(-1)!.port, firstPort, 'the first one did not take the route');
  t.equal(await scrape('gateway_session_cache_requests_total', { result: 'miss' }), 1, 'one cache miss (the first request)');
  t.equal(await scrape('gateway_session_validations_total', { outcome: 'valid' }), 3, 'each request validated once');
  t.equal(await scrape('gateway_request_duration_seconds_count', { method: 'GET', status_class: '2xx' }), 3, 'each counted once');
});

t.test('handed over: the route answers what the fast path does not, deciding once', async (t) => {
  const before = {
    valid: await metric('gateway_session_validations_total', { outcome: 'valid' }),
    invalid: await metric('gateway_session_validations_total', { outcome: 'invalid' }),
  };
  const calls = app.seen.length;
  const anonymous = await send(`${gw.url}/app/x`, { headers: { accept: 'text/html' } });
  t.equal(anonymous.status, 302, 'no session: the browser is sent to sign in');
  t.match(anonymous.headers.location, /\/_auth\/login\?rd=%2Fapp%2Fx$/);
  const forged = await send(`${gw.url}/app/x`, { headers: withSession(gw, 'forged.cookie-value') });
  t.equal(forged.status, 401, 'a forged cookie: 401');
  const refused = await send(`${gw.url}/nobody/x`, { headers: ada });
  t.equal(refused.status, 403, 'a rule ada does not meet: 403');
  t.equal(app.seen.length, calls, 'none of them reached the app');
  t.equal(await metric('gateway_session_validations_total', { outcome: 'valid' }) - before.valid, 1, "ada's session validated once");
  t.equal(await metric('gateway_session_validations_total', { outcome: 'invalid' }) - before.invalid, 1, 'the forged cookie validated once');
  t.ok(gw.logs.some((line) => /"audit":"access_denied"/.test(line) && /"user":"ada"/.test(line)), 'the refusal is audited by the route');
});

t.test('the app fails before answering: the route answers 502 and 504, the app is called once', async (t) => {
  const down = await startTestGateway(t, { REDIS_URL: redis.url, DATABASE_URL: pg.url, GATEWAY_REDIS_PREFIX: uniquePrefix(), GATEWAY_UPSTREAM: 'http://127.0.0.1:9' });
  const cookie = withSession(down, await login(down, 'ada', 'ada-proxy-fast-password'));
  for (const way of [{}, { 'content-length': '0' }]) {
    const res = await send(`${down.url}/app`, { headers: { ...cookie, ...way, 'x-request-id': 'unreachable' } });
    t.equal(res.status, 502, 'unreachable app: 502');
    t.match(res.json(), { code: 'GW_ERR_UPSTREAM_UNAVAILABLE' });
  }
  const lines = down.logs.filter((line) => line.includes('"reqId":"unreachable"'));
  t.equal(lines.filter((line) => /"msg":"upstream failed"/.test(line)).length, 2, 'logged as the route logs it, each time');
  t.equal(lines.filter((line) => /"msg":"request"/.test(line) && /"status":502/.test(line) && /"user":"ada"/.test(line)).length, 2, 'one access line each, with the user');
  t.equal(await scrapeMetric(down.adminUrl, 'gateway_upstream_request_duration_seconds_count', { status_class: '5xx' }), 2, 'counted as the app\u2019s failure');

  const calls = app.seen.length;
  const started = performance.now();
  const stalled = await send(`${gw.url}/stall`, { headers: { ...ada, accept: 'text/html' } });
  t.equal(stalled.status, 504, 'no answer within GATEWAY_UPSTREAM_TIMEOUT: 504');
  t.match(stalled.body, /<html/i, 'as a page, for a browser');
  t.equal(app.seen.length - calls, 1, 'the app was called once, never twice');
  const line = gw.logs.filter((l) => /"msg":"request"/.test(l) && /"path":"\/stall"/.test(l)).at(-1)!;
  t.ok((JSON.parse(line) as { ms: number }).ms >= 400, 'its access line counts the time waited for the app');
  t.ok(performance.now() - started < 5_000);
});

t.test('an app answering a status no HTTP client may be sent: 502 either way', async (t) => {
  const odd = createNetServer((socket) => {
    socket.once('data', () => socket.end('HTTP/1.1 600 Odd\r\nContent-Length: 2\r\nX-App: odd\r\n\r\nhi'));
  });
  await new Promise<void>((resolve) => odd.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => odd.close(() => resolve())));
  const behind = await startTestGateway(t, { REDIS_URL: redis.url, DATABASE_URL: pg.url, GATEWAY_REDIS_PREFIX: uniquePrefix(), GATEWAY_UPSTREAM: `http://127.0.0.1:${(odd.address() as AddressInfo).port}` });
  const cookie = withSession(behind, await login(behind, 'ada', 'ada-proxy-fast-password'));
  for (const way of [{}, { 'content-length': '0' }]) {
    const res = await send(`${behind.url}/odd`, { headers: { ...cookie, ...way } });
    t.equal(res.status, 502, 'the app failed: 502');
    t.match(res.json(), { code: 'GW_ERR_UPSTREAM_UNAVAILABLE' });
    t.equal(res.headers['x-app'], undefined, 'none of the failed answer\u2019s headers');
  }
  const upstreamCalls = (labels: Record<string, string>) => scrapeMetric(behind.adminUrl, 'gateway_upstream_request_duration_seconds_count', labels);
  t.equal(await upstreamCalls({}), 2, 'the upstream call counted once each way');
  t.equal(await upstreamCalls({ status_class: '5xx' }), 2, 'as the failure it was');
  t.notOk(behind.logs.some((line) => /already sent/i.test(line)), 'the route answers once (no second reply with the app\u2019s body)');
});

t.test('the app\u2019s body breaks: before its first byte a 500, after it the answer is cut', async (t) => {
  for (const way of [{}, { 'content-length': '0' }]) {
    const before = await send(`${gw.url}/broken-before-body`, { headers: { ...ada, ...way } });
    t.equal(before.status, 500, 'nothing was sent yet: an error answer, as the route gives it');
    t.equal(before.headers['x-app'], undefined, 'with none of the broken answer\u2019s headers');
    t.equal(before.headers['content-encoding'], undefined, 'so the error page is readable');
  }
  const cut = await rawGet(gw, '/broken-mid-body', ada.cookie!);
  t.match(cut, /^HTTP\/1\.1 200 /, 'the status went out with the first bytes');
  t.match(cut, /first part$/, 'and the answer ends where the app\u2019s did');
});

t.test('a client gone mid-answer is logged as 499', async (t) => {
  const lines = gw.logs.length;
  await new Promise<void>((resolve, reject) => {
    const socket = connect(Number(new URL(gw.url).port), '127.0.0.1', () => {
      socket.write(`GET /slow-body HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ${ada.cookie}\r\n\r\n`);
    });
    socket.once('data', () => {
      socket.destroy();
      resolve();
    });
    socket.on('error', reject);
  });
  for (const deadline = Date.now() + 3_000; Date.now() < deadline; ) {
    if (gw.logs.slice(lines).some((l) => /"path":"\/slow-body"/.test(l))) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const access = gw.logs.slice(lines).filter((l) => /"msg":"request"/.test(l) && /"path":"\/slow-body"/.test(l));
  t.equal(access.length, 1, 'one access line');
  t.match(access[0], /"status":499/, "status 499: the client's doing");
  t.match(access[0], /"user":"ada"/);
});

t.test('a client gone while the app is still silent: one 499, no 502 for nobody', async (t) => {
  const socket = connect(Number(new URL(gw.url).port), '127.0.0.1', () => {
    socket.write(`GET /stall HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: gone-early\r\nCookie: ${ada.cookie}\r\n\r\n`);
    setTimeout(() => socket.destroy(), 100);
  });
  socket.on('error', () => undefined);
  // Past GATEWAY_UPSTREAM_TIMEOUT (500 ms): the app's silence has failed the upstream call by then.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const lines = gw.logs.filter((l) => l.includes('"reqId":"gone-early"'));
  t.same(lines.map((l) => (JSON.parse(l) as { msg: string; status?: number }).status ?? (JSON.parse(l) as { msg: string }).msg), [499], 'one access line, 499, and nothing else');
});

t.test('a large answer to a client that stops reading: the app is held back, then every byte arrives in order, either way', async (t) => {
  for (const way of ['', 'Content-Length: 0\r\n']) {
    const name = way === '' ? 'fast path' : 'route';
    largeSent.bytes = 0;
    const socket = connect(Number(new URL(gw.url).port), '127.0.0.1');
    socket.write(`GET /large HTTP/1.1\r\nHost: 127.0.0.1\r\n${way}Cookie: ${ada.cookie}\r\nConnection: close\r\n\r\n`);
    socket.pause();
    // The client reads nothing for a while; a proxy that ignored backpressure would have taken it all by then.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    t.ok(largeSent.bytes < LARGE_BYTES, `${name}: the app waits for the client (${largeSent.bytes} of ${LARGE_BYTES} bytes written)`);
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.resume();
    await new Promise<void>((resolve, reject) => {
      socket.once('close', () => resolve());
      socket.once('error', reject);
    });
    const all = Buffer.concat(received);
    const bodyAt = all.indexOf('\r\n\r\n') + 4;
    t.match(all.subarray(0, bodyAt).toString('latin1'), /^HTTP\/1\.1 200 /, `${name}: 200`);
    const body = all.subarray(bodyAt);
    t.equal(body.length, LARGE_BYTES, `${name}: every byte`);
    let firstWrong = -1;
    for (let i = 0; i < body.length; i += 4) {
      if (body.readUInt32LE(i) !== i) {
        firstWrong = i;
        break;
      }
    }
    t.equal(firstWrong, -1, `${name}: in order, none lost or repeated`);
  }
});

t.test('a client gone while its session is looked up in Redis: one 499, the app not called', async (t) => {
  // Another replica (its local cache empty) has to ask Redis; Redis holds every command for a while.
  const replica = await startTestGateway(t, { ...gw.env });
  const client = new Redis(redis.url);
  t.teardown(() => client.quit());
  const calls = app.seen.length;
  await client.call('client', 'pause', '600', 'ALL');
  const socket = connect(Number(new URL(replica.url).port), '127.0.0.1', () => {
    socket.write(`GET /gone-during-lookup HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: gone-during-lookup\r\nCookie: ${ada.cookie}\r\n\r\n`);
    setTimeout(() => socket.destroy(), 150);
  });
  socket.on('error', () => undefined);
  for (const deadline = Date.now() + 3_000; Date.now() < deadline; ) {
    if (replica.logs.some((l) => l.includes('"reqId":"gone-during-lookup"'))) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  const lines = replica.logs.filter((l) => l.includes('"reqId":"gone-during-lookup"'));
  t.same(lines.map((l) => (JSON.parse(l) as { status?: number; msg: string }).status ?? (JSON.parse(l) as { msg: string }).msg), [499], 'one access line, 499');
  t.match(lines[0], /"user":"ada"/, 'with the user the session named');
  t.equal(app.seen.slice(calls).filter((seen) => seen.url === '/gone-during-lookup').length, 0, 'nothing asked of the app for nobody');
});

/** A GET over a raw socket: everything the gateway wrote until it closed the connection. */
function rawGet(target: TestGateway, path: string, cookie: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(new URL(target.url).port), '127.0.0.1', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ${cookie}\r\n\r\n`);
    });
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
  });
}
