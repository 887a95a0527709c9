// Forward-auth end to end with a real nginx (Debian's /usr/sbin/nginx, auth_request module) running
// the shipped deploy/examples/forward-auth/nginx.conf, only its three addresses changed: a browser is
// sent to the login page with rd, signs in through nginx, reaches the app with its identity; spoofed
// identity never reaches the app; public paths pass; logout closes the door again.
import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { login, seedUsers, startTestGateway, TEST_SECRET, uniquePrefix } from '../helpers/gateway.js';
import { cookieHeader, send } from '../helpers/http.js';
import { authorizationReachesAppOnlyWhenOwn, browserSignIn, cgiIdentity, everyIdentitySpelling, findBinary, REROUTING_HEADERS, renderExample, runServer, startCgiApp, type CgiView } from '../helpers/proxies.js';
import { ensureBuilt, runCli } from '../helpers/cli.js';
import { HandshakeRefused, openSocket, startWebSocketUpstream, wsUrl } from '../helpers/websocket.js';
import { freePort, services } from '../helpers/services.js';
import { startEchoUpstream, type Echo } from '../helpers/upstream.js';
import { cgiName, rawPairs } from '../regressions/setup.js';

const EXAMPLE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'deploy', 'examples', 'forward-auth', 'nginx.conf');
const IDENTITY = new Set(['x-forwarded-user', 'x-forwarded-email', 'x-forwarded-groups', 'x-gateway-identity']);

const nginxBinary = findBinary('nginx', "install Debian's nginx-light (apt-get install -y nginx-light; .ci/run does it)");
const { redis, pg } = await services(t);
await seedUsers(t, pg.url, [
  { username: 'alice', password: 'alice-nginx-pass', email: 'alice@example.com', groups: ['staff', 'ops'] },
  { username: 'bob', password: 'bob-nginx-pass' }, // no email, no groups
]);
const app = await startEchoUpstream();
t.teardown(() => app.close());
// nginx connects from 127.0.0.1 (trusted); the test's direct calls come from 127.0.0.2 (not).
const prefix = uniquePrefix();
const gw = await startTestGateway(t, {
  REDIS_URL: redis.url,
  DATABASE_URL: pg.url,
  GATEWAY_REDIS_PREFIX: prefix,
  GATEWAY_TRUSTED_PROXIES: '127.0.0.1',
  GATEWAY_PUBLIC_PATHS: '/public',
  GATEWAY_COOKIE_SECURE: 'false',
  GATEWAY_IDENTITY_JWT: 'true',
  GATEWAY_IDENTITY_HMAC_SECRET: 'nginx-example-hmac-secret-0123456789abcdef',
  GATEWAY_BASIC_AUTH: 'true',
});

// nginx in the foreground, one process (master_process off: no worker switching to `nobody`, which
// could not enter the 0700 temp dir), everything it writes inside the temp dir.
const dir = await mkdtemp(join(tmpdir(), 'sgw-nginx-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

/** The shipped example with only its three marked addresses changed, in front of `appPort`. */
async function startNginx(name: string, appPort: number, gatewayPort = gw.running.proxyPort): Promise<number> {
  const port = await freePort();
  const home = join(dir, name);
  mkdirSync(home);
  writeFileSync(
    join(home, 'site.conf'),
    renderExample(EXAMPLE, [
      ['server 127.0.0.1:8000;', `server 127.0.0.1:${gatewayPort};`],
      ['server 127.0.0.1:8080;', `server 127.0.0.1:${appPort};`],
      ['listen 80;', `listen 127.0.0.1:${port};`],
    ]),
  );
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(home, sub));
  writeFileSync(
    join(home, 'nginx.conf'),
    `daemon off;
master_process off;
pid ${home}/nginx.pid;
error_log ${home}/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${home}/body; proxy_temp_path ${home}/proxy; fastcgi_temp_path ${home}/fastcgi;
  uwsgi_temp_path ${home}/uwsgi; scgi_temp_path ${home}/scgi;
  include ${home}/site.conf;
}
`,
  );
  await runServer(t, nginxBinary, ['-p', home, '-e', join(home, 'error.log'), '-c', join(home, 'nginx.conf')], port);
  return port;
}
const nginxPort = await startNginx('echo', app.port);
const site = `http://127.0.0.1:${nginxPort}`;
const browser = { accept: 'text/html,application/xhtml+xml' };
const lastEcho = (): Echo => app.received[app.received.length - 1] as Echo;
const identitySeen = (echo: Echo) => rawPairs(echo).filter(([name]) => IDENTITY.has(cgiName(name)));

let session = '';

t.test('anonymous: nginx redirects to the login page, rd = the original path and query; the app sees nothing', async (t) => {
  const before = app.received.length;
  const res = await send(`${site}/app/page?x=1`, { headers: browser });
  t.equal(res.status, 302);
  t.equal(res.headers.location, `${site}/_auth/login?rd=${encodeURIComponent('/app/page?x=1')}`);
  const post = await send(`${site}/app/form`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1' });
  t.equal(post.status, 302, 'a POST too (the subrequest keeps its method)');
  t.equal(app.received.length, before, 'nothing reached the app');
});

t.test('after signing in through nginx (cookie from the gateway) the app is reached with the identity', async (t) => {
  const { cookie, next } = await browserSignIn(site, `${site}/_auth/login?rd=${encodeURIComponent('/app/page?x=1')}`, 'alice', 'alice-nginx-pass');
  t.equal(next, '/app/page?x=1', 'the login form sends the browser back where it was going');
  session = cookie;
  const res = await send(`${site}${next}`, { headers: { ...browser, cookie: cookieHeader({ sgw_session: cookie, app_pref: 'dark' }) } });
  t.equal(res.status, 200);
  const echo = res.json<Echo>();
  t.equal(echo.url, '/app/page?x=1');
  t.equal(echo.headers['x-forwarded-user'], 'alice');
  t.equal(echo.headers['x-forwarded-email'], 'alice@example.com');
  t.equal(echo.headers['x-forwarded-groups'], 'staff,ops');
  t.equal(echo.headers.cookie, 'app_pref=dark', 'the app keeps its own cookie, never sees the session cookie');
  const post = await send(`${site}/app/form`, { method: 'POST', headers: { cookie: cookieHeader({ sgw_session: cookie }), 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1' });
  t.equal(post.status, 200, 'a POST with a body passes');
  t.equal(post.json<Echo>().body, 'a=1', 'and its body reaches the app, not the verifier');
  t.notOk(post.json<Echo>().headers.cookie, 'a Cookie header holding only the session cookie is dropped');
});

t.test('spoofed identity headers from the client never reach the app', async (t) => {
  const spoofs: Array<[string, string]> = [
    ['X-Forwarded-User', 'admin'],
    ['x-forwarded-user', 'root'],
    ['X_Forwarded_User', 'admin'],
    ['X-FORWARDED-GROUPS', 'admins'],
    ['X-Forwarded-Email', 'admin@example.com'],
    ['X-Gateway-Identity', 'forged.token.sig'],
  ];
  const signedIn = await send(`${site}/app/me`, { headers: [['Host', `127.0.0.1:${nginxPort}`], ['Cookie', cookieHeader({ sgw_session: session })], ...spoofs] });
  t.equal(signedIn.status, 200);
  const seen = identitySeen(signedIn.json<Echo>()).map(([name, value]) => [name.toLowerCase(), value]);
  t.same(
    seen.filter(([name]) => name !== 'x-gateway-identity'),
    [['x-forwarded-user', 'alice'], ['x-forwarded-email', 'alice@example.com'], ['x-forwarded-groups', 'staff,ops']],
    'signed in as alice: exactly the gateway’s three, whatever was sent',
  );
  const tokens = seen.filter(([name]) => name === 'x-gateway-identity').map(([, value]) => value ?? '');
  t.equal(tokens.length, 1, 'one identity token reaches the app');
  t.equal(JSON.parse(Buffer.from(tokens[0]?.split('.')[1] ?? '', 'base64url').toString('utf8')).sub, 'alice', "it is the gateway's token, not the client's");
  const anonymous = await send(`${site}/public/x`, { headers: [['Host', `127.0.0.1:${nginxPort}`], ...spoofs] });
  t.equal(anonymous.status, 200);
  t.same(identitySeen(anonymous.json<Echo>()), [], 'anonymous on a public path: no identity header at all');
});

t.test('public paths pass without a session, after normalisation', async (t) => {
  const res = await send(`${site}/public/page`);
  t.equal(res.status, 200);
  t.equal(lastEcho().url, '/public/page');
  const escape = await send(`${site}/public/..%2Fapp`, { headers: browser });
  t.not(escape.status, 200, 'an encoded slash is not let through as public');
  const encoded = await send(`${site}/public/%2e%2e/app`, { headers: browser });
  t.equal(encoded.status, 302, '/public/%2e%2e/app is /app: sign-in required');
});

t.test('X-Original-URI from an untrusted peer is ignored; from nginx it decides', async (t) => {
  const direct = await new Promise<{ status: number; headers: IncomingHttpHeaders }>((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port: gw.running.proxyPort, path: '/_auth/verify', localAddress: '127.0.0.2', agent: false, headers: { 'x-original-uri': '/public/x', 'x-forwarded-uri': '/public/x' } },
      (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, headers: res.headers });
      },
    );
    req.on('error', reject).end();
  });
  t.equal(direct.status, 401, 'a client calling the gateway directly cannot name a public path');
  t.match(direct.headers.location ?? '', /\?rd=%2F$/, 'nor choose where sign-in returns');
  const viaNginx = await send(`${site}/_auth/verify`, { headers: { 'x-original-uri': '/public/x' } });
  t.equal(viaNginx.status, 404, 'and the verify location is internal to nginx');
  const overridden = await send(`${site}/app/page`, { headers: { ...browser, 'x-original-uri': '/public/x', 'x-forwarded-uri': '/public/x' } });
  t.equal(overridden.status, 302, 'a client’s X-Original-URI / X-Forwarded-Uri sent to nginx are replaced');
});

t.test('logout through nginx: the same cookie is redirected to the login page again', async (t) => {
  const out = await send(`${site}/_auth/logout`, { method: 'POST', headers: { cookie: cookieHeader({ sgw_session: session }), origin: site } });
  t.equal(out.status, 303);
  const res = await send(`${site}/app/page`, { headers: { ...browser, cookie: cookieHeader({ sgw_session: session }) } });
  t.equal(res.status, 302);
  t.equal(res.headers.location, `${site}/_auth/login?rd=%2Fapp%2Fpage`);
});

const tokenSubject = (token: string | undefined) => JSON.parse(Buffer.from(token?.split('.')[1] ?? '', 'base64url').toString('utf8')).sub as string;

t.test('a CGI-style app behind nginx: every spelling of every identity header is dropped or replaced, nothing merges', async (t) => {
  const cgiPort = await freePort();
  await startCgiApp(t, dir, cgiPort);
  const port = await startNginx('cgi', cgiPort);
  const cgiSite = `http://127.0.0.1:${port}`;
  const host: [string, string] = ['Host', `127.0.0.1:${port}`];
  const spellings = everyIdentitySpelling();
  const bob = await send(`${cgiSite}/app/me`, { headers: [host, ['Cookie', cookieHeader({ sgw_session: await login(gw, 'bob', 'bob-nginx-pass') })], ...spellings] });
  t.equal(bob.status, 200);
  const bobSees = cgiIdentity(bob.json<CgiView>());
  t.same(Object.keys(bobSees).sort(), ['HTTP_X_FORWARDED_USER', 'HTTP_X_GATEWAY_IDENTITY'], 'bob: no email or groups from the client');
  t.equal(bobSees.HTTP_X_FORWARDED_USER, 'bob', 'exactly his name, nothing appended');
  t.equal(tokenSubject(bobSees.HTTP_X_GATEWAY_IDENTITY), 'bob', 'one token, the gateway’s');
  const alice = await send(`${cgiSite}/app/me`, { headers: [host, ['Cookie', cookieHeader({ sgw_session: await login(gw, 'alice', 'alice-nginx-pass') })], ...spellings] });
  const { HTTP_X_GATEWAY_IDENTITY: token, ...plain } = cgiIdentity(alice.json<CgiView>());
  t.same(plain, { HTTP_X_FORWARDED_USER: 'alice', HTTP_X_FORWARDED_EMAIL: 'alice@example.com', HTTP_X_FORWARDED_GROUPS: 'staff,ops' }, 'alice: the gateway’s three');
  t.equal(tokenSubject(token), 'alice');
  const anonymous = await send(`${cgiSite}/public/page`, { headers: [host, ...spellings] });
  t.equal(anonymous.status, 200);
  t.same(cgiIdentity(anonymous.json<CgiView>()), {}, 'anonymous on a public path: no identity at all');

  const cookie = await send(`${cgiSite}/app/me`, { headers: [host, ['Cookie', `a=1; sgw_session=${encodeURIComponent(await login(gw, 'alice', 'alice-nginx-pass'))}; b=2; sgw_session=y; sgw_csrf=z`]] });
  t.equal(cookie.status, 200);
  t.equal(cookie.json<CgiView>().environ.HTTP_COOKIE, 'a=1; b=2', "every occurrence of the gateway's cookies is removed, the app's pass");
  const anonymousCookie = await send(`${cgiSite}/public/page`, { headers: [host, ['Cookie', 'a=1; sgw_session=x; b=2; sgw_session=y']] });
  t.equal(anonymousCookie.json<CgiView>().environ.HTTP_COOKIE, 'a=1; b=2', 'anonymous on a public path too');
  const leading = await send(`${cgiSite}/public/page`, { headers: [host, ['Cookie', 'sgw_csrf=q; sgw_session=x; xsgw_session=keep; sgw_session=z; c=3']] });
  t.equal(leading.json<CgiView>().environ.HTTP_COOKIE, 'xsgw_session=keep; c=3', 'leading ones too; a name that only ends the same is the app’s');
  const many = await send(`${cgiSite}/public/page`, { headers: [host, ['Cookie', 'a=1; sgw_session=1; sgw_session=2; sgw_session=3; sgw_session=4; sgw_session=5']] });
  t.equal(many.json<CgiView>().environ.HTTP_COOKIE, undefined, 'more than nginx can take apart: the header is dropped whole');
});

t.test('the verify location keeps the login URL as the gateway wrote it (proxy_redirect off)', async (t) => {
  // A Host that reads like the gateway's upstream name: nginx's default proxy_redirect would turn
  // the Location into a relative one, and error_page into an internal redirect.
  const res = await send(`${site}/app/page`, { headers: [['Host', 'session_gateway'], ['Accept', 'text/html']] });
  t.equal(res.status, 302);
  t.equal(res.headers.location, `http://session_gateway/_auth/login?rd=${encodeURIComponent('/app/page')}`);
});

t.test('a 401 without a Location stays a 401 (never a redirect to nowhere)', async (t) => {
  const verifier = createServer((_req, res) => res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"authentication required","login":null}'));
  await new Promise<void>((resolve) => verifier.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => verifier.close(resolve)));
  const port = await startNginx('no-location', app.port, (verifier.address() as AddressInfo).port);
  const before = app.received.length;
  const res = await send(`http://127.0.0.1:${port}/app/page`, { headers: browser });
  t.equal(res.status, 401);
  t.equal(res.headers.location, undefined);
  t.equal(app.received.length, before, 'nothing reached the app');
});

t.test('WebSockets behind nginx: checked at the handshake only, so an open one outlives `sessions revoke` (README)', async (t) => {
  await ensureBuilt();
  const wsApp = await startWebSocketUpstream();
  t.teardown(() => wsApp.close());
  const port = await startNginx('websocket', Number(new URL(wsApp.url).port));
  const wsSite = `http://127.0.0.1:${port}`;
  const cookie = await login(gw, 'bob', 'bob-nginx-pass');
  const socket = await openSocket(wsUrl(wsSite, '/live'), { headers: { cookie: cookieHeader({ sgw_session: cookie }) } });
  t.equal(await socket.next(), 'hello', 'opened through nginx with a session');
  t.equal(wsApp.handshakes.at(-1)?.headers['x-forwarded-user'], 'bob', 'the handshake carried the identity');

  const revoke = await runCli(['sessions', 'revoke', 'bob'], { env: { REDIS_URL: redis.url, DATABASE_URL: pg.url, GATEWAY_REDIS_PREFIX: prefix, GATEWAY_SESSION_SECRET: TEST_SECRET } });
  t.equal(revoke.code, 0, revoke.stderr);
  socket.ws.send('still here');
  t.equal(await socket.next(), 'echo:still here', 'the open socket still relays: nginx never asks again (use proxy mode or short stream timeouts)');
  const again = await openSocket(wsUrl(wsSite, '/live'), { headers: { cookie: cookieHeader({ sgw_session: cookie }) } }).then(
    (s) => {
      s.ws.terminate();
      return 101;
    },
    (err: unknown) => (err instanceof HandshakeRefused ? err.status : -1),
  );
  t.equal(again, 302, 'a new handshake with the revoked cookie is refused (sent to the login page)');
  socket.ws.close();
});

t.test('headers that re-route or re-address a request never reach the app through nginx (SPEC 4)', async (t) => {
  const rerouting: Array<[string, string]> = REROUTING_HEADERS.map((name) => [name, name === 'X-Real-IP' ? '6.6.6.6' : '/admin/users']);
  const signedIn = await send(`${site}/app/me`, { method: 'POST', headers: [['Host', `127.0.0.1:${nginxPort}`], ['Cookie', cookieHeader({ sgw_session: await login(gw, 'alice', 'alice-nginx-pass') })], ['X-HTTP-Method-Override', 'DELETE'], ...rerouting] });
  t.equal(signedIn.status, 200);
  const echo = signedIn.json<Echo>();
  const arrived = REROUTING_HEADERS.map((name) => name.toLowerCase()).filter((name) => name !== 'x-real-ip' && echo.headers[name] !== undefined);
  t.same(arrived, [], 'signed in: none of them arrives');
  t.equal(echo.headers['x-real-ip'], '127.0.0.1', "X-Real-IP is the address nginx saw, not the client's claim");
  const anonymous = await send(`${site}/public/x`, { headers: [['Host', `127.0.0.1:${nginxPort}`], ...rerouting] });
  t.equal(anonymous.status, 200);
  t.same(REROUTING_HEADERS.filter((name) => name !== 'X-Real-IP' && anonymous.json<Echo>().headers[name.toLowerCase()] !== undefined), [], 'anonymous on a public path: none either');
});

t.test('a token or password in Authorization stays with the gateway; the app\'s own Authorization reaches the app', async (t) => {
  await authorizationReachesAppOnlyWhenOwn(t, site, gw, { user: 'alice', password: 'alice-nginx-pass' });
});
