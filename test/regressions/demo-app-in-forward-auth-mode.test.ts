// Attack: the embedded mode's demo "whoami" app kept running in production forward-auth mode (no
// GATEWAY_UPSTREAM, real Redis and PostgreSQL). Behind the shipped Caddyfile, `/_AUTH/…` matches
// Caddy's case-insensitive `handle /_auth/*` and went to the gateway, which proxied it to the demo
// app: a page listing every request header (cookies of other apps on the origin included) that no
// operator knew was there.
// Defence: src/server.ts starts the demo app only in the embedded mode (nothing configured);
// otherwise the gateway proxies nothing (src/app.ts) and any path but its own routes is 404.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { login, seedUsers, startTestGateway, uniquePrefix, withSession } from '../helpers/gateway.js';
import { cookieHeader, send } from '../helpers/http.js';
import { findBinary, renderExample, runServer } from '../helpers/proxies.js';
import { freePort, services } from '../helpers/services.js';
import { startEchoUpstream } from '../helpers/upstream.js';

const CADDYFILE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'deploy', 'examples', 'forward-auth', 'Caddyfile');
const { redis, pg } = await services(t);
await seedUsers(t, pg.url, [{ username: 'alice', password: 'alice-Pw-0034' }]);
const gw = await startTestGateway(t, { REDIS_URL: redis.url, DATABASE_URL: pg.url, GATEWAY_REDIS_PREFIX: uniquePrefix(), GATEWAY_TRUSTED_PROXIES: '127.0.0.1', GATEWAY_COOKIE_SECURE: 'false' });
const cookie = await login(gw, 'alice', 'alice-Pw-0034');
const isWhoami = (body: string) => /x-forwarded-user/i.test(body) || /<table/i.test(body);

t.test('forward-auth mode: no demo app behind the gateway, whatever the path', async (t) => {
  for (const path of ['/', '/whoami', '/_AUTH/login', '/app/page']) {
    const res = await send(`${gw.url}${path}`, { headers: withSession(gw, cookie, { accept: 'text/html', 'x-forwarded-user': 'alice' }) });
    t.equal(res.status, 404, `${path}: not found`);
    t.notOk(isWhoami(res.body), `${path}: no page echoing the request`);
  }
  t.equal((await send(`${gw.url}/_auth/verify`, { headers: withSession(gw, cookie) })).status, 204, 'the gateway’s own routes still answer');
});

t.test('through the shipped Caddyfile, /_AUTH/… reaches no demo app', async (t) => {
  const app = await startEchoUpstream();
  t.teardown(() => app.close());
  const dir = await mkdtemp(join(tmpdir(), 'sgw-demo-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const port = await freePort();
  const site = `http://127.0.0.1:${port}`;
  writeFileSync(
    join(dir, 'Caddyfile'),
    `{\n\tadmin off\n\tauto_https off\n\tdefault_bind 127.0.0.1\n}\n` +
      renderExample(CADDYFILE, [
        ['app.example.com {', `${site} {`],
        ['reverse_proxy 127.0.0.1:8000', `reverse_proxy 127.0.0.1:${gw.running.proxyPort}`],
        ['forward_auth 127.0.0.1:8000 {', `forward_auth 127.0.0.1:${gw.running.proxyPort} {`],
        ['reverse_proxy 127.0.0.1:8080', `reverse_proxy 127.0.0.1:${app.port}`],
      ]),
  );
  await runServer(t, findBinary('caddy', "install Debian's caddy"), ['run', '--config', join(dir, 'Caddyfile'), '--adapter', 'caddyfile'], port, { HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir });
  for (const path of ['/_AUTH/whoami', '/_Auth/x']) {
    const res = await send(`${site}${path}`, { headers: { accept: 'text/html', cookie: cookieHeader({ sgw_session: cookie, other_app: 'secret' }) } });
    t.equal(res.status, 404, `${path}: not found`);
    t.notOk(isWhoami(res.body) || res.body.includes('other_app'), `${path}: nothing echoes the request`);
  }
});
