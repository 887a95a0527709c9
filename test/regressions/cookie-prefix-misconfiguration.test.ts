// Attack (availability, self-inflicted): GATEWAY_COOKIE_NAME=__Host-session with a
// GATEWAY_COOKIE_DOMAIN, or a __Secure-/__Host- name without Secure. Browsers silently drop such a
// cookie (RFC 6265bis section 4.1.3), so the gateway looked healthy while nobody could sign in: every
// login "succeeded" and landed back on the login page.
// Defence: src/config/config.ts checkCookiePrefix: start-up stops with one line naming the rule; an
// accepted prefixed name is set with exactly what the prefix demands (Secure, Path=/, no Domain).
import t from 'tap';
import { login, seedUsers, startTestGateway, TEST_SECRET, uniquePrefix } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import { ensureBuilt, runCli } from '../helpers/cli.js';
import { services } from '../helpers/services.js';

await ensureBuilt();
const { redis, pg } = await services(t);
await seedUsers(t, pg.url, [{ username: 'alice', password: 'alice-Pw-0033' }]);
const base = { REDIS_URL: redis.url, DATABASE_URL: pg.url, GATEWAY_SESSION_SECRET: TEST_SECRET, GATEWAY_REDIS_PREFIX: uniquePrefix(), GATEWAY_UPSTREAM: 'http://127.0.0.1:9', GATEWAY_PORT: '0', GATEWAY_ADMIN_PORT: '0', GATEWAY_HOST: '127.0.0.1', GATEWAY_ADMIN_HOST: '127.0.0.1' };

const BROKEN: Array<[string, Record<string, string>, RegExp]> = [
  ['__Host- with a Domain', { GATEWAY_COOKIE_NAME: '__Host-sgw', GATEWAY_COOKIE_DOMAIN: 'example.com' }, /GATEWAY_COOKIE_NAME: a __Host- cookie must not have GATEWAY_COOKIE_DOMAIN/],
  ['__Host- without Secure', { GATEWAY_COOKIE_NAME: '__Host-sgw', GATEWAY_COOKIE_SECURE: 'false' }, /GATEWAY_COOKIE_NAME: a __Host- cookie needs GATEWAY_COOKIE_SECURE=true/],
  ['__Secure- without Secure', { GATEWAY_COOKIE_NAME: '__Secure-sgw', GATEWAY_COOKIE_SECURE: 'false' }, /GATEWAY_COOKIE_NAME: a __Secure- cookie needs GATEWAY_COOKIE_SECURE=true/],
];

for (const [name, env, rule] of BROKEN) {
  t.test(`${name}: the gateway refuses to start and names the rule`, async (t) => {
    const result = await runCli(['serve'], { env: { ...base, ...env }, timeoutMs: 15_000 });
    t.equal(result.code, 1, 'exit 1 instead of serving logins nobody can complete');
    t.match(result.stderr + result.stdout, rule);
  });
}

t.test('an accepted __Host- name is set as browsers require: Secure, Path=/, no Domain', async (t) => {
  const gw = await startTestGateway(t, { ...base, GATEWAY_COOKIE_NAME: '__Host-sgw' });
  const cookie = await login(gw, 'alice', 'alice-Pw-0033');
  t.ok(cookie);
  const res = await send(`${gw.url}/_auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', password: 'alice-Pw-0033' }) });
  const line = res.setCookie('__Host-sgw') ?? '';
  t.match(line, /; Secure/);
  t.match(line, /; Path=\/(;|$)/);
  t.notMatch(line, /Domain=/i);
});
