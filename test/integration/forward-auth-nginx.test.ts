// Forward-auth end to end with a real nginx (Debian's /usr/sbin/nginx, auth_request module) running
// the shipped deploy/examples/forward-auth/nginx.conf, only its three addresses changed: a browser is
// sent to the login page with rd, signs in through nginx, reaches the app with its identity; spoofed
// identity never reaches the app; public paths pass; logout closes the door again.
import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { seedUsers, startTestGateway, uniquePrefix } from '../helpers/gateway.js';
import { cookieHeader, send } from '../helpers/http.js';
import { browserSignIn, findBinary, renderExample, runServer } from '../helpers/proxies.js';
import { freePort, services } from '../helpers/services.js';
import { startEchoUpstream, type Echo } from '../helpers/upstream.js';
import { cgiName, rawPairs } from '../regressions/setup.js';

const EXAMPLE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'deploy', 'examples', 'forward-auth', 'nginx.conf');
const IDENTITY = new Set(['x-forwarded-user', 'x-forwarded-email', 'x-forwarded-groups', 'x-gateway-identity']);

const nginxBinary = findBinary('nginx', "install Debian's nginx-light (apt-get install -y nginx-light; .ci/run does it)");
const { redis, pg } = await services(t);
await seedUsers(t, pg.url, [{ username: 'alice', password: 'alice-nginx-pass', email: 'alice@example.com', groups: ['staff', 'ops'] }]);
const app = await startEchoUpstream();
t.teardown(() => app.close());
// nginx connects from 127.0.0.1 (trusted); the test's direct calls come from 127.0.0.2 (not).
const gw = await startTestGateway(t, {
  REDIS_URL: redis.url,
  DATABASE_URL: pg.url,
  GATEWAY_REDIS_PREFIX: uniquePrefix(),
  GATEWAY_TRUSTED_PROXIES: '127.0.0.1',
  GATEWAY_PUBLIC_PATHS: '/public',
  GATEWAY_COOKIE_SECURE: 'false',
  GATEWAY_IDENTITY_JWT: 'true',
  GATEWAY_IDENTITY_HMAC_SECRET: 'nginx-example-hmac-secret-0123456789abcdef',
});

// nginx in the foreground, one process (master_process off: no worker switching to `nobody`, which
// could not enter the 0700 temp dir), everything it writes inside the temp dir.
const dir = await mkdtemp(join(tmpdir(), 'sgw-nginx-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const nginxPort = await freePort();
// The shipped example with only its three marked addresses changed.
writeFileSync(
  join(dir, 'site.conf'),
  renderExample(EXAMPLE, [
    ['server 127.0.0.1:8000;', `server 127.0.0.1:${gw.running.proxyPort};`],
    ['server 127.0.0.1:8080;', `server 127.0.0.1:${app.port};`],
    ['listen 80;', `listen 127.0.0.1:${nginxPort};`],
  ]),
);
for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, sub));
writeFileSync(
  join(dir, 'nginx.conf'),
  `daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  include ${dir}/site.conf;
}
`,
);
await runServer(t, nginxBinary, ['-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')], nginxPort);

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
