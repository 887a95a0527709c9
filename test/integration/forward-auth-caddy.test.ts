// Forward-auth end to end with a real Caddy (Debian's caddy 2.6) running the shipped
// deploy/examples/forward-auth/Caddyfile, only its addresses changed: redirect to the login page
// with rd, sign-in through Caddy, identity at the app, spoofs stripped, public paths, and no
// half-copied identity header for what the 204 did not carry.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { login, seedUsers, startTestGateway, uniquePrefix } from '../helpers/gateway.js';
import { cookieHeader, send } from '../helpers/http.js';
import { authorizationReachesAppOnlyWhenOwn, browserSignIn, cgiIdentity, everyIdentitySpelling, findBinary, REROUTING_HEADERS, renderExample, runServer, startCgiApp, type CgiView } from '../helpers/proxies.js';
import { freePort, services } from '../helpers/services.js';
import { startEchoUpstream, type Echo } from '../helpers/upstream.js';
import { HandshakeRefused, openSocket, startWebSocketUpstream, wsUrl } from '../helpers/websocket.js';
import { cgiName, rawPairs } from '../regressions/setup.js';

const EXAMPLE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'deploy', 'examples', 'forward-auth', 'Caddyfile');
const IDENTITY = new Set(['x-forwarded-user', 'x-forwarded-email', 'x-forwarded-groups', 'x-gateway-identity']);

const caddy = findBinary('caddy', "install Debian's caddy (apt-get install -y caddy; .ci/run does it)");
const { redis, pg } = await services(t);
await seedUsers(t, pg.url, [
  { username: 'alice', password: 'alice-caddy-pass', email: 'alice@example.com', groups: ['staff', 'ops'] },
  { username: 'bob', password: 'bob-caddy-pass' }, // no email, no groups
]);
const app = await startEchoUpstream();
t.teardown(() => app.close());
const gw = await startTestGateway(t, {
  REDIS_URL: redis.url,
  DATABASE_URL: pg.url,
  GATEWAY_REDIS_PREFIX: uniquePrefix(),
  GATEWAY_TRUSTED_PROXIES: '127.0.0.1',
  GATEWAY_PUBLIC_PATHS: '/public',
  GATEWAY_COOKIE_SECURE: 'false',
  GATEWAY_BASIC_AUTH: 'true',
});

const dir = await mkdtemp(join(tmpdir(), 'sgw-caddy-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
// Test-only global options: loopback only, no admin endpoint (parallel tests), plain http.
const globals = `{\n\tadmin off\n\tauto_https off\n\tdefault_bind 127.0.0.1\n}\n`;

/** The shipped Caddyfile, only its addresses changed, in front of the app on `appPort`. */
async function startCaddy(name: string, appPort: number, gatewayPort = gw.running.proxyPort): Promise<{ site: string; port: number }> {
  const port = await freePort();
  const site = `http://127.0.0.1:${port}`;
  const file = join(dir, `${name}.Caddyfile`);
  writeFileSync(
    file,
    globals +
      renderExample(EXAMPLE, [
        ['app.example.com {', `${site} {`],
        ['reverse_proxy 127.0.0.1:8000', `reverse_proxy 127.0.0.1:${gatewayPort}`],
        ['forward_auth 127.0.0.1:8000 {', `forward_auth 127.0.0.1:${gatewayPort} {`],
        ['reverse_proxy 127.0.0.1:8080', `reverse_proxy 127.0.0.1:${appPort}`],
      ]),
  );
  await runServer(t, caddy, ['run', '--config', file, '--adapter', 'caddyfile'], port, { HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir });
  return { site, port };
}
const { site, port } = await startCaddy('echo', app.port);
// The same Caddyfile in front of a CGI-style app, which folds every spelling into one variable.
const cgiPort = await freePort();
await startCgiApp(t, dir, cgiPort);
const cgi = await startCaddy('cgi', cgiPort);

const browser = { accept: 'text/html,application/xhtml+xml' };
const identity = (echo: Echo) => rawPairs(echo).filter(([name]) => IDENTITY.has(cgiName(name))).map(([name, value]) => [cgiName(name), value]).sort();
const SPOOFS: Array<[string, string]> = [
  ['X-Forwarded-User', 'admin'],
  ['x-forwarded-email', 'admin@example.com'],
  ['X_Forwarded_User', 'admin'],
  ['X_FORWARDED_GROUPS', 'admins'],
  ['X-Gateway-Identity', 'forged.token.sig'],
];
const withSpoofs = (cookie?: string): Array<[string, string]> => [['Host', `127.0.0.1:${port}`], ...(cookie ? [['Cookie', cookieHeader({ sgw_session: cookie })] as [string, string]] : []), ...SPOOFS];

t.test('anonymous: Caddy redirects to the login page with rd; the app sees nothing', async (t) => {
  const before = app.received.length;
  const res = await send(`${site}/app/page?x=1`, { headers: browser });
  t.equal(res.status, 302);
  t.equal(res.headers.location, `${site}/_auth/login?rd=${encodeURIComponent('/app/page?x=1')}`);
  t.equal(app.received.length, before);
});

t.test('signed in through Caddy: the app gets exactly the gateway’s identity, spoofs stripped', async (t) => {
  const { cookie, next } = await browserSignIn(site, `${site}/_auth/login?rd=${encodeURIComponent('/app/page?x=1')}`, 'alice', 'alice-caddy-pass');
  t.equal(next, '/app/page?x=1');
  const res = await send(`${site}${next}`, { headers: withSpoofs(cookie) });
  t.equal(res.status, 200);
  t.equal(res.json<Echo>().url, '/app/page?x=1');
  t.same(identity(res.json<Echo>()), [['x-forwarded-email', 'alice@example.com'], ['x-forwarded-groups', 'staff,ops'], ['x-forwarded-user', 'alice']]);

  const out = await send(`${site}/_auth/logout`, { method: 'POST', headers: { cookie: cookieHeader({ sgw_session: cookie }), origin: site } });
  t.equal(out.status, 303);
  t.equal((await send(`${site}/app/page`, { headers: { ...browser, cookie: cookieHeader({ sgw_session: cookie }) } })).status, 302, 'after logout: back to the login page');
});

t.test('a user without email or groups: no email or groups header at all (not a placeholder text)', async (t) => {
  const cookie = await login(gw, 'bob', 'bob-caddy-pass');
  const res = await send(`${site}/app/me`, { headers: withSpoofs(cookie) });
  t.equal(res.status, 200);
  t.same(identity(res.json<Echo>()), [['x-forwarded-user', 'bob']]);
});

t.test('public path: served without a session and without any identity header', async (t) => {
  const res = await send(`${site}/public/page`, { headers: withSpoofs() });
  t.equal(res.status, 200);
  t.same(identity(res.json<Echo>()), []);
  t.equal((await send(`${site}/public/%2e%2e/app`, { headers: browser })).status, 302, 'normalised before it is matched');
});

t.test('a CGI-style app behind Caddy: every spelling of every identity header is dropped, nothing merges', async (t) => {
  const spellings = everyIdentitySpelling();
  t.ok(spellings.some(([name]) => name === 'X-Forwarded_Groups') && spellings.some(([name]) => name === 'X-Gateway_Identity'), 'mixed spellings are among them');
  const { cookie } = await browserSignIn(cgi.site, `${cgi.site}/_auth/login?rd=%2F`, 'bob', 'bob-caddy-pass');
  const host: [string, string] = ['Host', `127.0.0.1:${cgi.port}`];
  const bob = await send(`${cgi.site}/app/me`, { headers: [host, ['Cookie', cookieHeader({ sgw_session: cookie })], ...spellings] });
  t.equal(bob.status, 200);
  t.same(cgiIdentity(bob.json<CgiView>()), { HTTP_X_FORWARDED_USER: 'bob' }, 'signed-in bob: exactly his name, no email or groups from the client');
  const alice = await login(gw, 'alice', 'alice-caddy-pass');
  const asAlice = await send(`${cgi.site}/app/me`, { headers: [host, ['Cookie', cookieHeader({ sgw_session: alice })], ...spellings] });
  t.same(cgiIdentity(asAlice.json<CgiView>()), { HTTP_X_FORWARDED_USER: 'alice', HTTP_X_FORWARDED_EMAIL: 'alice@example.com', HTTP_X_FORWARDED_GROUPS: 'staff,ops' }, 'alice: the gateway’s three, nothing appended');
  const anonymous = await send(`${cgi.site}/public/page`, { headers: [host, ...spellings] });
  t.equal(anonymous.status, 200);
  t.same(cgiIdentity(anonymous.json<CgiView>()), {}, 'anonymous on a public path: no identity at all');
});

t.test("the gateway's cookies never reach the app, every occurrence; the app's own pass", async (t) => {
  const alice = await login(gw, 'alice', 'alice-caddy-pass');
  const host: [string, string] = ['Host', `127.0.0.1:${cgi.port}`];
  const signedIn = await send(`${cgi.site}/app/me`, { headers: [host, ['Cookie', `a=1; sgw_session=${encodeURIComponent(alice)}; b=2; sgw_session=y; sgw_csrf=z`]] });
  t.equal(signedIn.status, 200);
  t.equal(signedIn.json<CgiView>().environ.HTTP_COOKIE, 'a=1; b=2');
  const anonymous = await send(`${cgi.site}/public/page`, { headers: [host, ['Cookie', 'a=1; sgw_session=x; b=2; sgw_session=y']] });
  t.equal(anonymous.json<CgiView>().environ.HTTP_COOKIE, 'a=1; b=2', 'anonymous on a public path too');
  const leading = await send(`${cgi.site}/public/page`, { headers: [host, ['Cookie', 'sgw_csrf=q; sgw_session=x; xsgw_session=keep; c=3']] });
  t.equal(leading.json<CgiView>().environ.HTTP_COOKIE, 'xsgw_session=keep; c=3', 'leading ones too; a name that only ends the same is the app’s');
  const only = await send(`${cgi.site}/public/page`, { headers: [host, ['Cookie', 'sgw_session=x; sgw_session=y']] });
  t.equal(only.json<CgiView>().environ.HTTP_COOKIE, undefined, 'a header with nothing left is not sent');
});

t.test('a 401 without a Location stays a 401 (never a redirect to nowhere)', async (t) => {
  const verifier = createServer((_req, res) => res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"authentication required","login":null}'));
  await new Promise<void>((resolve) => verifier.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => verifier.close(resolve)));
  const stubbed = await startCaddy('no-location', app.port, (verifier.address() as AddressInfo).port);
  const before = app.received.length;
  const res = await send(`${stubbed.site}/app/page`, { headers: browser });
  t.equal(res.status, 401);
  t.equal(res.headers.location, undefined);
  t.equal(app.received.length, before, 'nothing reached the app');
});

t.test('WebSockets behind Caddy: checked at the handshake, so an open one outlives logout; the reconnect is refused (README)', async (t) => {
  const wsApp = await startWebSocketUpstream();
  t.teardown(() => wsApp.close());
  const ws = await startCaddy('websocket', Number(new URL(wsApp.url).port));
  const cookie = await login(gw, 'alice', 'alice-caddy-pass');
  const headers = { cookie: cookieHeader({ sgw_session: cookie }), origin: ws.site };
  const socket = await openSocket(wsUrl(ws.site, '/live'), { headers });
  t.equal(await socket.next(), 'hello', 'opened through Caddy with a session');
  t.equal(wsApp.handshakes.at(-1)?.headers['x-forwarded-user'], 'alice', 'the handshake carried the identity');
  const out = await send(`${ws.site}/_auth/logout`, { method: 'POST', headers });
  t.equal(out.status, 303, 'signed out');
  socket.ws.send('still here');
  t.equal(await socket.next(), 'echo:still here', 'the open socket still relays: Caddy never asks again');
  const again = await openSocket(wsUrl(ws.site, '/live'), { headers }).then(
    (s) => {
      s.ws.terminate();
      return 101;
    },
    (err: unknown) => (err instanceof HandshakeRefused ? err.status : -1),
  );
  t.equal(again, 302, 'a new handshake with that cookie is refused (sent to the login page)');
  socket.ws.close();
});

t.test('headers that re-route or re-address a request never reach the app through Caddy (SPEC 4)', async (t) => {
  const rerouting: Array<[string, string]> = REROUTING_HEADERS.map((name) => [name, name === 'X-Real-IP' ? '6.6.6.6' : '/admin/users']);
  const signedIn = await send(`${site}/app/me`, { method: 'POST', headers: [['Host', `127.0.0.1:${port}`], ['Cookie', cookieHeader({ sgw_session: await login(gw, 'alice', 'alice-caddy-pass') })], ...rerouting] });
  t.equal(signedIn.status, 200);
  const echo = signedIn.json<Echo>();
  t.same(REROUTING_HEADERS.filter((name) => echo.headers[name.toLowerCase()] !== undefined), [], 'signed in: none of them arrives');
  const anonymous = await send(`${site}/public/x`, { headers: [['Host', `127.0.0.1:${port}`], ...rerouting] });
  t.equal(anonymous.status, 200);
  t.same(REROUTING_HEADERS.filter((name) => anonymous.json<Echo>().headers[name.toLowerCase()] !== undefined), [], 'anonymous on a public path: none either');
});

t.test('a token or password in Authorization stays with the gateway; the app\'s own Authorization reaches the app', async (t) => {
  await authorizationReachesAppOnlyWhenOwn(t, site, gw, { user: 'alice', password: 'alice-caddy-pass' });
});
