// What the app behind the gateway receives and what users get back (SPEC sections 3 and 4):
// the auth gate, identity injection and stripping, forwarding headers, cookies, bodies,
// Location rewriting, path normalisation, legacy logout links and upstream failures.
import t from 'tap';
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { send } from '../helpers/http.js';
import { login, seedUsers, startTestGateway, uniquePrefix, withSession, type TestGateway } from '../helpers/gateway.js';
import { services } from '../helpers/services.js';
import { startEchoUpstream, type Echo } from '../helpers/upstream.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const { redis, pg } = await services(t);
await seedUsers(t, pg.url, [
  { username: 'alice', password: 'correct horse', email: 'alice@example.com', groups: ['staff', 'ops'] },
  { username: 'zoë', password: 'battery staple', email: 'zoë@example.com', groups: ['r,d', 'café'] },
  { username: 'percy', password: 'percent pass', email: 'percy@example.com', groups: ['100%', 'plain'] },
]);

// One echo app for every gateway; a few paths answer differently, like a real app would.
const upstream = await startEchoUpstream((echo, res) => {
  switch (echo.url) {
    case '/created':
      res.writeHead(201, { 'content-type': 'text/plain; charset=utf-8', 'x-app-custom': 'made by the app', 'set-cookie': 'app_pref=dark; Path=/; HttpOnly' });
      res.end('created by the app\n');
      return true;
    case '/redirect-upstream':
      res.writeHead(302, { location: `${upstream.url}/next?x=1` });
      res.end();
      return true;
    case '/redirect-relative':
      res.writeHead(302, { location: '/next' });
      res.end();
      return true;
    case '/redirect-elsewhere':
      res.writeHead(302, { location: 'https://other.example.org/next' });
      res.end();
      return true;
    case '/sets-gateway-cookie':
      res.writeHead(200, { 'set-cookie': ['sgw_session=evil; Path=/', 'sgw_csrf=x; Path=/_auth', 'app_ok=1; Path=/'] });
      res.end('ok');
      return true;
    case '/stall':
      return true; // never answers: the gateway's upstream timeout must fire
    default:
      return false;
  }
});
t.teardown(() => upstream.close());

// A port that nothing listens on any more: an app that is down.
const gone = await startEchoUpstream();
await gone.close();

const base = { REDIS_URL: redis.url, DATABASE_URL: pg.url, GATEWAY_UPSTREAM: upstream.url, GATEWAY_REDIS_PREFIX: uniquePrefix() };
const gw = await startTestGateway(t, {
  ...base,
  GATEWAY_PUBLIC_PATHS: '/public',
  GATEWAY_LOGOUT_PATHS: '/logout',
  GATEWAY_PUBLIC_URL: 'https://app.example.com',
});
const gwCustom = await startTestGateway(t, {
  ...base,
  GATEWAY_PUBLIC_PATHS: '/public',
  GATEWAY_HEADER_USER: 'Remote-User',
  GATEWAY_HEADER_EMAIL: 'Remote-Email',
  GATEWAY_HEADER_GROUPS: 'Remote-Groups',
});
const gwTrusted = await startTestGateway(t, { ...base, GATEWAY_TRUSTED_PROXIES: '127.0.0.1/32' });
const gwNoHost = await startTestGateway(t, { ...base, GATEWAY_PRESERVE_HOST: 'false' });
const gwSlow = await startTestGateway(t, { ...base, GATEWAY_UPSTREAM_TIMEOUT: '1s' });
const gwDown = await startTestGateway(t, { ...base, GATEWAY_UPSTREAM: gone.url });

// All gateways share Redis, prefix and secret (replicas), so one sign-in works on each of them.
const alice = await login(gw, 'alice', 'correct horse');

interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  json<T = Record<string, unknown>>(): T;
}

/**
 * Sends `target` exactly as given on the request line. The shared `send` helper goes through
 * `new URL`, which resolves `..` and `%2e%2e` itself, so path-confusion cases need this.
 */
function raw(gateway: TestGateway, target: string, options: { method?: string; headers?: OutgoingHttpHeaders; body?: Buffer } = {}): Promise<RawResponse> {
  const { hostname, port } = new URL(gateway.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, path: target, method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: <T>() => JSON.parse(body) as T });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Every identity-like header the upstream received, as [normalised name, value], in wire order. */
const IDENTITY_NAMES = new Set(['x-forwarded-user', 'x-forwarded-email', 'x-forwarded-groups', 'x-gateway-identity', 'remote-user', 'remote-email', 'remote-groups']);
function identityPairs(echo: Echo): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i < echo.rawHeaders.length; i += 2) {
    const name = (echo.rawHeaders[i] ?? '').toLowerCase().replaceAll('_', '-');
    if (IDENTITY_NAMES.has(name)) pairs.push([name, echo.rawHeaders[i + 1] ?? '']);
  }
  return pairs.sort(([a], [b]) => a.localeCompare(b));
}

/** How many times a header (any case) appears on the wire. */
function rawCount(echo: Echo, name: string): number {
  let n = 0;
  for (let i = 0; i < echo.rawHeaders.length; i += 2) if (echo.rawHeaders[i]?.toLowerCase() === name) n++;
  return n;
}

/** Independent reference for "percent-encoded as UTF-8 in full". */
function percentEncodeAll(value: string): string {
  return [...Buffer.from(value, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
}

/** The access log is written when the response has finished, which may be just after the client saw it. */
async function accessLine(gateway: TestGateway, reqId: string): Promise<Record<string, unknown> | undefined> {
  for (let attempt = 0; attempt < 200; attempt++) {
    for (const line of gateway.logs) {
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (entry.msg === 'request' && entry.reqId === reqId) return entry;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return undefined;
}

const SPOOFED_DEFAULTS: Array<[string, string]> = [
  ['X-Forwarded-User', 'mallory'],
  ['x-forwarded-user', 'mallory2'],
  ['X_Forwarded_User', 'mallory3'],
  ['x_forwarded_email', 'mallory@evil.example'],
  ['X-FORWARDED-GROUPS', 'admin'],
  ['X_FORWARDED_GROUPS', 'root'],
  ['X-Gateway-Identity', 'forged'],
  ['x_gateway_identity', 'forged2'],
];
const SPOOFED_CUSTOM: Array<[string, string]> = [
  ['Remote-User', 'mallory'],
  ['remote_user', 'mallory2'],
  ['REMOTE_EMAIL', 'mallory@evil.example'],
  ['Remote-Email', 'mallory@evil.example'],
  ['remote-groups', 'admin'],
  ['Remote_Groups', 'root'],
];

t.test('unauthenticated requests never reach the app', async (t) => {
  const before = upstream.received.length;

  t.test('a browser navigation is redirected to the login page with the original path and query', async (t) => {
    const res = await send(`${gw.url}/reports/q?year=2026&tag=a%20b`, { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } });
    t.equal(res.status, 302);
    t.equal(res.headers.location, `/_auth/login?rd=${encodeURIComponent('/reports/q?year=2026&tag=a%20b')}`);
    const rd = new URL(res.headers.location ?? '', 'http://x').searchParams.get('rd');
    t.equal(rd, '/reports/q?year=2026&tag=a%20b', 'rd decodes back to the exact original target');
  });

  t.test('HEAD navigation is redirected too', async (t) => {
    const res = await send(`${gw.url}/dashboard`, { method: 'HEAD', headers: { accept: 'text/html' } });
    t.equal(res.status, 302);
    t.equal(res.headers.location, '/_auth/login?rd=%2Fdashboard');
  });

  t.test('a POST, even from a browser, gets 401 JSON', async (t) => {
    const res = await send(`${gw.url}/orders`, { method: 'POST', headers: { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' }, body: 'qty=1' });
    t.equal(res.status, 401);
    t.match(res.headers['content-type'], /^application\/json/);
    t.type(res.json().error, 'string');
    t.notOk(res.headers.location);
  });

  t.test('an API GET (Accept: application/json) gets 401 JSON', async (t) => {
    const res = await send(`${gw.url}/api/items`, { headers: { accept: 'application/json' } });
    t.equal(res.status, 401);
    t.match(res.headers['content-type'], /^application\/json/);
    t.type(res.json().error, 'string');
  });

  t.test('a GET without any Accept gets 401', async (t) => {
    const res = await send(`${gw.url}/api/items`);
    t.equal(res.status, 401);
  });

  t.test('nothing was forwarded', async (t) => {
    t.equal(upstream.received.length, before, 'the upstream received no request');
  });
});

t.test('a valid session is forwarded with the identity headers', async (t) => {
  const res = await send(`${gw.url}/reports?year=2026`, { headers: withSession(gw, alice) });
  t.equal(res.status, 200);
  const echo = res.json<Echo>();
  t.equal(echo.url, '/reports?year=2026');
  t.same(identityPairs(echo), [
    ['x-forwarded-email', 'alice@example.com'],
    ['x-forwarded-groups', 'staff,ops'],
    ['x-forwarded-user', 'alice'],
  ]);
});

t.test('custom identity header names replace the defaults', async (t) => {
  const res = await send(`${gwCustom.url}/reports`, { headers: withSession(gwCustom, alice) });
  t.equal(res.status, 200);
  t.same(identityPairs(res.json<Echo>()), [
    ['remote-email', 'alice@example.com'],
    ['remote-groups', 'staff,ops'],
    ['remote-user', 'alice'],
  ], 'only the configured names are sent');
});

t.test('spoofed identity headers are removed in every spelling', async (t) => {
  // With header pairs node:http adds no Host of its own; an HTTP/1.1 request needs one.
  const cookie: [string, string] = ['Cookie', withSession(gw, alice).cookie ?? ''];
  const host = (gateway: TestGateway): [string, string] => ['Host', new URL(gateway.url).host];

  t.test('authenticated request, default names', async (t) => {
    const res = await send(`${gw.url}/admin`, { headers: [host(gw), cookie, ...SPOOFED_DEFAULTS, ...SPOOFED_CUSTOM] });
    t.equal(res.status, 200);
    const echo = res.json<Echo>();
    t.same(identityPairs(echo), [
      ['remote-email', 'mallory@evil.example'],
      ['remote-email', 'mallory@evil.example'],
      ['remote-groups', 'admin'],
      ['remote-groups', 'root'],
      ['remote-user', 'mallory'],
      ['remote-user', 'mallory2'],
      ['x-forwarded-email', 'alice@example.com'],
      ['x-forwarded-groups', 'staff,ops'],
      ['x-forwarded-user', 'alice'],
    ], 'one gateway-set copy of each identity header; Remote-* are ordinary headers on this gateway');
    t.notOk(echo.rawHeaders.some((h) => h.startsWith('forged')), 'no X-Gateway-Identity spoof survives');
  });

  t.test('authenticated request, custom names: custom and default names are all stripped', async (t) => {
    const res = await send(`${gwCustom.url}/admin`, { headers: [host(gwCustom), cookie, ...SPOOFED_DEFAULTS, ...SPOOFED_CUSTOM] });
    t.equal(res.status, 200);
    t.same(identityPairs(res.json<Echo>()), [
      ['remote-email', 'alice@example.com'],
      ['remote-groups', 'staff,ops'],
      ['remote-user', 'alice'],
    ]);
  });

  t.test('public path: spoofs removed and no identity injected (default names)', async (t) => {
    const res = await send(`${gw.url}/public/page`, { headers: [host(gw), cookie, ...SPOOFED_DEFAULTS] });
    t.equal(res.status, 200);
    t.same(identityPairs(res.json<Echo>()), []);
  });

  t.test('public path without a session: spoofs removed', async (t) => {
    const res = await send(`${gw.url}/public/page`, { headers: [host(gw), ...SPOOFED_DEFAULTS] });
    t.equal(res.status, 200);
    t.same(identityPairs(res.json<Echo>()), []);
  });

  t.test('public path: spoofs removed and no identity injected (custom names)', async (t) => {
    const res = await send(`${gwCustom.url}/public/page`, { headers: [host(gwCustom), ...SPOOFED_DEFAULTS, ...SPOOFED_CUSTOM] });
    t.equal(res.status, 200);
    t.same(identityPairs(res.json<Echo>()), []);
  });
});

t.test('identity values outside plain printable ASCII are percent-encoded as UTF-8 in full', async (t) => {
  t.test('non-ASCII name, email and groups (one containing a comma)', async (t) => {
    const cookie = await login(gw, 'zoë', 'battery staple');
    const res = await send(`${gw.url}/me`, { headers: withSession(gw, cookie) });
    t.equal(res.status, 200);
    const echo = res.json<Echo>();
    t.equal(echo.headers['x-forwarded-user'], percentEncodeAll('zoë'));
    t.equal(echo.headers['x-forwarded-user'], '%7A%6F%C3%AB');
    t.equal(echo.headers['x-forwarded-email'], percentEncodeAll('zoë@example.com'));
    t.equal(echo.headers['x-forwarded-groups'], `${percentEncodeAll('r,d')},${percentEncodeAll('café')}`);
    const groups = String(echo.headers['x-forwarded-groups']).split(',').map(decodeURIComponent);
    t.same(groups, ['r,d', 'café'], 'the app can split on "," and decode each group unambiguously');
    t.equal(decodeURIComponent(String(echo.headers['x-forwarded-user'])), 'zoë');
  });

  t.test('a % is encoded, so decoding is never ambiguous; plain groups stay plain', async (t) => {
    const cookie = await login(gw, 'percy', 'percent pass');
    const res = await send(`${gw.url}/me`, { headers: withSession(gw, cookie) });
    const echo = res.json<Echo>();
    t.equal(echo.headers['x-forwarded-user'], 'percy');
    t.equal(echo.headers['x-forwarded-groups'], `${percentEncodeAll('100%')},plain`);
  });

  t.test('a plain name travels unchanged', async (t) => {
    const res = await send(`${gw.url}/me`, { headers: withSession(gw, alice) });
    const echo = res.json<Echo>();
    t.equal(echo.headers['x-forwarded-user'], 'alice');
    t.equal(echo.headers['x-forwarded-email'], 'alice@example.com');
  });
});

t.test('X-Forwarded-For/-Proto/-Host', async (t) => {
  const forged = { 'x-forwarded-for': '1.2.3.4', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example', host: 'app.internal:8000' };

  t.test('from an untrusted client, replaced by what the gateway saw', async (t) => {
    const res = await send(`${gw.url}/fwd`, { headers: withSession(gw, alice, forged) });
    const echo = res.json<Echo>();
    t.equal(echo.headers['x-forwarded-for'], '127.0.0.1');
    t.equal(echo.headers['x-forwarded-proto'], 'http');
    t.equal(echo.headers['x-forwarded-host'], 'app.internal:8000');
    for (const name of ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']) t.equal(rawCount(echo, name), 1, `one ${name}`);
  });

  t.test('without any sent, the gateway sets them', async (t) => {
    const res = await send(`${gw.url}/fwd`, { headers: withSession(gw, alice) });
    const echo = res.json<Echo>();
    t.equal(echo.headers['x-forwarded-for'], '127.0.0.1');
    t.equal(echo.headers['x-forwarded-proto'], 'http');
    t.equal(echo.headers['x-forwarded-host'], new URL(gw.url).host);
  });

  t.test('from a trusted proxy, For is appended to and Proto/Host are kept', async (t) => {
    const res = await send(`${gwTrusted.url}/fwd`, { headers: withSession(gwTrusted, alice, forged) });
    const echo = res.json<Echo>();
    t.equal(echo.headers['x-forwarded-for'], '1.2.3.4, 127.0.0.1');
    t.equal(echo.headers['x-forwarded-proto'], 'https');
    t.equal(echo.headers['x-forwarded-host'], 'evil.example');
    t.equal(rawCount(echo, 'x-forwarded-for'), 1);
  });
});

t.test('Host header', async (t) => {
  t.test('the client Host is preserved by default', async (t) => {
    const res = await send(`${gw.url}/host`, { headers: withSession(gw, alice, { host: 'legacy.example:8443' }) });
    t.equal(res.json<Echo>().headers.host, 'legacy.example:8443');
  });

  t.test('with GATEWAY_PRESERVE_HOST=false the upstream sees its own address', async (t) => {
    const res = await send(`${gwNoHost.url}/host`, { headers: withSession(gwNoHost, alice, { host: 'legacy.example:8443' }) });
    const echo = res.json<Echo>();
    t.equal(echo.headers.host, `127.0.0.1:${upstream.port}`);
    t.equal(rawCount(echo, 'host'), 1);
  });
});

t.test('X-Request-Id', async (t) => {
  t.test('passed on when sent, and logged', async (t) => {
    const res = await send(`${gw.url}/rid`, { headers: withSession(gw, alice, { 'x-request-id': 'lb-req-7f3a.42' }) });
    const echo = res.json<Echo>();
    t.equal(echo.headers['x-request-id'], 'lb-req-7f3a.42');
    t.equal(rawCount(echo, 'x-request-id'), 1);
    const line = await accessLine(gw, 'lb-req-7f3a.42');
    t.ok(line, 'the access log line carries the same id');
    t.match(line, { method: 'GET', path: '/rid', status: 200, user: 'alice' });
  });

  t.test('generated (a UUID) when absent, and logged', async (t) => {
    const res = await send(`${gw.url}/rid2`, { headers: withSession(gw, alice) });
    const id = String(res.json<Echo>().headers['x-request-id']);
    t.match(id, UUID);
    const line = await accessLine(gw, id);
    t.match(line, { path: '/rid2', status: 200 });
  });

  t.test('an unsafe id is replaced by a generated one', async (t) => {
    const res = await send(`${gw.url}/rid4`, { headers: withSession(gw, alice, { 'x-request-id': 'evil id" injected=1' }) });
    const echo = res.json<Echo>();
    t.match(echo.headers['x-request-id'], UUID);
    t.equal(rawCount(echo, 'x-request-id'), 1);
  });

  t.test('a different id each time', async (t) => {
    const a = (await send(`${gw.url}/rid3`, { headers: withSession(gw, alice) })).json<Echo>().headers['x-request-id'];
    const b = (await send(`${gw.url}/rid3`, { headers: withSession(gw, alice) })).json<Echo>().headers['x-request-id'];
    t.not(a, b);
  });
});

t.test('cookies and Authorization', async (t) => {
  const session = withSession(gw, alice).cookie ?? '';

  t.test('the gateway cookies are removed; the app cookies pass byte for byte', async (t) => {
    const res = await send(`${gw.url}/cookies`, { headers: { cookie: `a=1; ${session}; b=x%20y; sgw_csrf=tok; c="quoted"` } });
    t.equal(res.status, 200);
    const echo = res.json<Echo>();
    t.equal(echo.headers.cookie, 'a=1; b=x%20y; c="quoted"');
    t.equal(echo.headers['x-forwarded-user'], 'alice');
  });

  t.test('the Cookie header is removed when only gateway cookies were sent', async (t) => {
    const res = await send(`${gw.url}/cookies`, { headers: { cookie: `${session}; sgw_csrf=tok` } });
    t.equal(res.status, 200);
    const echo = res.json<Echo>();
    t.equal(echo.headers.cookie, undefined);
    t.equal(rawCount(echo, 'cookie'), 0);
  });

  t.test('Authorization passes through', async (t) => {
    const res = await send(`${gw.url}/api`, { headers: withSession(gw, alice, { authorization: 'Bearer app-token.abc' }) });
    t.equal(res.json<Echo>().headers.authorization, 'Bearer app-token.abc');
  });
});

t.test('bodies and responses pass through unchanged', async (t) => {
  t.test('a 2 MB request body arrives intact', async (t) => {
    const size = 2 * 1024 * 1024;
    let body = '';
    for (let i = 0; body.length < size; i++) body += `${i.toString(36).padStart(8, '0')}|`;
    body = body.slice(0, size);
    const res = await send(`${gw.url}/upload`, {
      method: 'POST',
      headers: withSession(gw, alice, { 'content-type': 'application/octet-stream', 'content-length': String(size) }),
      body,
    });
    t.equal(res.status, 200);
    const received = upstream.received.at(-1);
    t.equal(received?.url, '/upload');
    t.equal(received?.body.length, size);
    t.ok(received?.body === body, 'byte for byte');
    t.equal(received?.headers['content-length'], String(size));
  });

  t.test('a 2 MB text/plain body sent chunked arrives intact (text is not parsed or size-limited)', async (t) => {
    const body = 'line of text\n'.repeat(170_000);
    t.ok(body.length > 2_000_000);
    const res = await send(`${gw.url}/upload-text`, { method: 'POST', headers: withSession(gw, alice, { 'content-type': 'text/plain' }), body });
    t.equal(res.status, 200);
    const received = upstream.received.at(-1);
    t.equal(received?.url, '/upload-text');
    t.equal(received?.body.length, body.length);
    t.ok(received?.body === body, 'byte for byte');
  });

  t.test('a text body in a legacy charset is not re-encoded', async (t) => {
    // "café crème" in ISO-8859-1: é and è are single bytes that are not valid UTF-8.
    const body = Buffer.from('café crème', 'latin1');
    const res = await raw(gw, '/upload-latin1', {
      method: 'POST',
      headers: { ...withSession(gw, alice), 'content-type': 'text/plain; charset=iso-8859-1', 'content-length': String(body.length) },
      body,
    });
    t.equal(res.status, 200);
    t.equal(upstream.received.at(-1)?.headers['content-length'], String(body.length), 'same number of bytes as sent');
  });

  t.test('a body without Content-Type is forwarded too', async (t) => {
    const body = 'z'.repeat(1_200_000);
    const res = await send(`${gw.url}/upload-untyped`, { method: 'PUT', headers: withSession(gw, alice), body });
    t.equal(res.status, 200);
    t.equal(upstream.received.at(-1)?.url, '/upload-untyped');
    t.ok(upstream.received.at(-1)?.body === body, 'unchanged');
  });

  t.test('a JSON body larger than the gateway body limit is streamed, not parsed', async (t) => {
    const body = JSON.stringify({ items: 'x'.repeat(1_500_000) });
    const res = await send(`${gw.url}/api/bulk`, { method: 'POST', headers: withSession(gw, alice, { 'content-type': 'application/json' }), body });
    t.equal(res.status, 200);
    t.ok(upstream.received.at(-1)?.body === body, 'unchanged');
  });

  t.test('status, headers and body from the app come back unchanged', async (t) => {
    const res = await send(`${gw.url}/created`, { headers: withSession(gw, alice) });
    t.equal(res.status, 201);
    t.equal(res.headers['x-app-custom'], 'made by the app');
    t.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
    t.equal(res.setCookie('app_pref'), 'app_pref=dark; Path=/; HttpOnly', "the app's own Set-Cookie passes");
    t.equal(res.body, 'created by the app\n');
  });
});

t.test('Location rewriting', async (t) => {
  t.test("a Location at the upstream's own address goes to the public origin", async (t) => {
    const res = await send(`${gw.url}/redirect-upstream`, { headers: withSession(gw, alice) });
    t.equal(res.status, 302);
    t.equal(res.headers.location, 'https://app.example.com/next?x=1');
  });

  t.test('without GATEWAY_PUBLIC_URL, a trusted proxy decides the public origin', async (t) => {
    const res = await send(`${gwTrusted.url}/redirect-upstream`, {
      headers: withSession(gwTrusted, alice, { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'public.example.net' }),
    });
    t.equal(res.headers.location, 'https://public.example.net/next?x=1');
  });

  t.test('a relative Location is untouched', async (t) => {
    const res = await send(`${gw.url}/redirect-relative`, { headers: withSession(gw, alice) });
    t.equal(res.status, 302);
    t.equal(res.headers.location, '/next');
  });

  t.test('a Location at another site is untouched', async (t) => {
    const res = await send(`${gw.url}/redirect-elsewhere`, { headers: withSession(gw, alice) });
    t.equal(res.headers.location, 'https://other.example.org/next');
  });
});

t.test('path normalisation before authorisation', async (t) => {
  const html = { accept: 'text/html' };
  const json = { accept: 'application/json' };
  const session = withSession(gw, alice);

  for (const target of ['/public/../admin', '/public/%2e%2e/admin', '/public/%2E%2E/admin', '//public/../admin', '/public/./../admin']) {
    t.test(`${target} is the protected /admin`, async (t) => {
      const before = upstream.received.length;
      const nav = await raw(gw, target, { headers: html });
      t.equal(nav.status, 302);
      t.equal(nav.headers.location, '/_auth/login?rd=%2Fadmin');
      const api = await raw(gw, target, { headers: json });
      t.equal(api.status, 401);
      t.equal(upstream.received.length, before, 'nothing forwarded without a session');
      const ok = await raw(gw, target, { headers: session });
      t.equal(ok.status, 200);
      t.equal(ok.json<Echo>().url, '/admin', 'the upstream receives the path that was authorised');
      t.equal(ok.json<Echo>().headers['x-forwarded-user'], 'alice');
    });
  }

  for (const target of ['/public%2fx', '/public%2Fx', '/public/..%2fadmin', '/public/..%5cadmin', '/public/..;/admin', '/..', '/public/../../admin', '/a%00b']) {
    t.test(`${target} is refused with 400`, async (t) => {
      const before = upstream.received.length;
      const anon = await raw(gw, target, { headers: json });
      t.equal(anon.status, 400);
      const authed = await raw(gw, target, { headers: session });
      t.equal(authed.status, 400, 'a session does not make it acceptable');
      t.equal(upstream.received.length, before, 'never forwarded');
    });
  }

  t.test('a public path is served without a session, exactly as requested', async (t) => {
    const res = await raw(gw, '/public/x?y=1', { headers: json });
    t.equal(res.status, 200);
    t.equal(res.json<Echo>().url, '/public/x?y=1');
    t.equal(upstream.received.at(-1)?.url, '/public/x?y=1');
  });

  t.test('the public prefix itself is public', async (t) => {
    const res = await raw(gw, '/public', { headers: json });
    t.equal(res.status, 200);
    t.equal(res.json<Echo>().url, '/public');
  });

  t.test('dot segments and repeated slashes are normalised before forwarding', async (t) => {
    const res = await raw(gw, '/a/./b//c?q=%2e%2e', { headers: session });
    t.equal(res.status, 200);
    t.equal(res.json<Echo>().url, '/a/b/c?q=%2e%2e', 'the query is kept verbatim');
  });

  t.test('encoded unreserved characters are decoded before matching', async (t) => {
    const res = await raw(gw, '/%70ublic/x', { headers: json });
    t.equal(res.status, 200);
    t.equal(res.json<Echo>().url, '/public/x');
  });

  for (const target of ['/PUBLIC/x', '/Public/x', '/publicity', '/public-x']) {
    t.test(`${target} is protected (case-sensitive, segment-bounded matching)`, async (t) => {
      const before = upstream.received.length;
      const res = await raw(gw, target, { headers: json });
      t.equal(res.status, 401);
      t.equal(upstream.received.length, before);
    });
  }
});

t.test('GATEWAY_LOGOUT_PATHS: a legacy /logout link ends the session and never reaches the app', async (t) => {
  const cookie = await login(gw, 'alice', 'correct horse');
  const headers = withSession(gw, cookie, { accept: 'text/html' });
  t.equal((await send(`${gw.url}/before-logout`, { headers })).status, 200, 'the session works before');

  const before = upstream.received.length;
  const res = await send(`${gw.url}/logout`, { headers });
  t.equal(res.status, 303);
  const location = res.headers.location ?? '';
  t.match(location, /^\/_auth\/(logout|login)/, 'towards the gateway logout or login page');

  // Follow the redirects as a browser would, with the cookie, until a page that is not a redirect.
  let next = location;
  for (let hop = 0; hop < 3 && next.startsWith('/_auth/logout'); hop++) {
    const step = await send(`${gw.url}${next}`, { headers });
    t.equal(step.status, 303);
    next = step.headers.location ?? '';
  }
  t.match(next, /^\/_auth\/login/, 'ends on the login page');
  t.equal(upstream.received.length, before, 'the app never saw /logout');

  const after = await send(`${gw.url}/after-logout`, { headers: withSession(gw, cookie, { accept: 'application/json' }) });
  t.equal(after.status, 401, 'the old cookie no longer works');
  t.equal(upstream.received.length, before);
});

t.test('upstream failures', async (t) => {
  t.test('an app that is down → 502 with a small body', async (t) => {
    const res = await send(`${gwDown.url}/anything`, { headers: withSession(gwDown, alice, { accept: 'application/json' }) });
    t.equal(res.status, 502);
    t.ok(res.body.length > 0 && res.body.length < 1024, `small body (${res.body.length} bytes)`);
    t.match(res.json(), { code: 'GW_ERR_UPSTREAM_UNAVAILABLE' });
    t.notOk(res.body.includes(String(gone.port)), 'the internal address is not disclosed');
  });

  t.test('a browser gets a small page', async (t) => {
    const res = await send(`${gwDown.url}/anything`, { headers: withSession(gwDown, alice, { accept: 'text/html' }) });
    t.equal(res.status, 502);
    t.match(res.headers['content-type'], /^text\/html/);
    t.ok(res.body.length < 4096, `small page (${res.body.length} bytes)`);
    t.notOk(res.body.includes(String(gone.port)));
  });

  t.test('an app that never answers → 504 after GATEWAY_UPSTREAM_TIMEOUT', async (t) => {
    const before = upstream.received.length;
    const res = await send(`${gwSlow.url}/stall`, { headers: withSession(gwSlow, alice, { accept: 'application/json' }) });
    t.equal(res.status, 504);
    t.match(res.json(), { code: 'GW_ERR_UPSTREAM_TIMEOUT' });
    t.equal(upstream.received.length, before + 1, 'the request did reach the app');
  });

  t.test('a quick answer on the same gateway is unaffected', async (t) => {
    const res = await send(`${gwSlow.url}/quick`, { headers: withSession(gwSlow, alice) });
    t.equal(res.status, 200);
  });
});

t.test('a tampered cookie is treated as no session and cleared', async (t) => {
  const cookie = await login(gw, 'alice', 'correct horse');
  const dot = cookie.lastIndexOf('.');
  const mid = dot + Math.floor((cookie.length - dot) / 2);
  const tampered = cookie.slice(0, mid) + (cookie[mid] === 'A' ? 'B' : 'A') + cookie.slice(mid + 1);
  t.not(tampered, cookie);

  const before = upstream.received.length;
  const res = await send(`${gw.url}/secret`, { headers: withSession(gw, tampered, { accept: 'application/json' }) });
  t.equal(res.status, 401);
  const cleared = res.setCookie(gw.config.cookieName) ?? '';
  t.match(cleared, /^sgw_session=;/, 'the cookie is cleared');
  t.match(cleared, /Expires=Thu, 01 Jan 1970|Max-Age=0/i, 'and expired');
  t.equal(upstream.received.length, before, 'nothing forwarded');

  const nav = await send(`${gw.url}/secret`, { headers: withSession(gw, tampered, { accept: 'text/html' }) });
  t.equal(nav.status, 302, 'a browser is sent to the login page');
  t.ok(nav.setCookie(gw.config.cookieName), 'and also told to drop the cookie');

  const genuine = await send(`${gw.url}/secret`, { headers: withSession(gw, cookie) });
  t.equal(genuine.status, 200, 'the untampered cookie still works');
  t.notOk(genuine.setCookie(gw.config.cookieName), 'a valid cookie is not cleared');
});

t.test('the app cannot replace or clear the gateway cookies; its own cookies still reach the browser', async (t) => {
  const res = await send(`${gw.url}/sets-gateway-cookie`, { headers: withSession(gw, alice) });
  t.equal(res.status, 200);
  t.same(res.headers['set-cookie'], ['app_ok=1; Path=/']);
});

t.test('Forwarded and X-Real-IP from an untrusted client are not believed', async (t) => {
  const res = await send(`${gw.url}/real-ip`, { headers: withSession(gw, alice, { forwarded: 'for=6.6.6.6;proto=https', 'x-real-ip': '6.6.6.6' }) });
  const echo = res.json<Echo>();
  t.equal(echo.headers.forwarded, undefined);
  t.equal(echo.headers['x-real-ip'], '127.0.0.1', "the client's value removed (SPEC 4), replaced with the address the gateway saw");
});

t.test('a Cookie header without gateway cookies reaches the app byte for byte', async (t) => {
  const res = await send(`${gwTrusted.url}/public-cookie`, { headers: { cookie: `a=1;b=2;${'sgw_session'}=${encodeURIComponent(await login(gwTrusted, 'alice', 'correct horse'))}` } });
  t.equal(res.json<Echo>().headers.cookie, 'a=1; b=2', 'ours removed (normalised spacing is fine then)');
  const untouched = await send(`${gw.url}/public/cookie`, { headers: { cookie: 'a=1;b=2' } });
  t.equal(untouched.json<Echo>().headers.cookie, 'a=1;b=2', 'left exactly as sent');
});

t.test('unknown paths under the auth prefix are the gateway\'s 404, never the app\'s', async (t) => {
  const before = upstream.received.length;
  const res = await send(`${gw.url}/_auth/nope`, { headers: withSession(gw, alice) });
  t.equal(res.status, 404);
  t.equal(upstream.received.length, before);
});

t.test('a legacy logout link ends the session even for a client that does not follow redirects', async (t) => {
  const cookie = await login(gw, 'alice', 'correct horse');
  const res = await send(`${gw.url}/logout`, { headers: withSession(gw, cookie) });
  t.equal(res.status, 303);
  t.equal(res.headers.location, '/_auth/login?logged_out=1');
  t.equal((await send(`${gw.url}/x`, { headers: withSession(gw, cookie, { accept: 'application/json' }) })).status, 401);
});
