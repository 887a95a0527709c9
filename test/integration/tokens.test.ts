// API tokens and HTTP Basic through the doors (SPEC 9), against real PostgreSQL and Redis with two
// gateway replicas sharing them: the proxy and forward-auth accept `Bearer sgw_pat_…` and (with
// GATEWAY_BASIC_AUTH) Basic with the same identity headers as a session; a gateway credential is
// never forwarded, any other Authorization is; a revocation on one replica is refused on the other
// within the bound a session revocation has; an expired token is refused; a failed Basic request
// does not tell an unknown user from a wrong password.
import t from 'tap';
import { Redis } from 'ioredis';
import { migrateTokens } from '../../src/tokens/migrations.js';
import { createToken } from '../../src/tokens/token-admin.js';
import { createPostgresTokenStore } from '../../src/tokens/token-store.js';
import { createPostgresUserStore } from '../../src/users/user-store.js';
import { callVerify } from '../helpers/forward-auth.js';
import { login, withSession } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import { metricSum } from '../helpers/metrics.js';
import { testBed } from '../regressions/setup.js';

const PASSWORD = 'alice-Pw-0115-long';
const bed = await testBed(t, [
  { username: 'alice', password: PASSWORD, email: 'alice@example.com', groups: ['staff', 'ops'] },
  { username: 'bob', password: 'bob-Pw-0115-long' },
  { username: 'carol', password: 'carol-Pw-0115-long' },
]);
await migrateTokens(bed.pool);
const env = { GATEWAY_BASIC_AUTH: 'true', GATEWAY_TRUSTED_PROXIES: '127.0.0.1' };
const [one, two] = await Promise.all([bed.gateway(env), bed.gateway(env)]);
const store = createPostgresTokenStore(bed.pool);
const users = createPostgresUserStore(bed.pool);
const issue = async (user: string, name: string, expiresInMs: number | null = null) => (await createToken(store, (n) => users.find(n), { user, name, expiresInMs })).token;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const basic = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });
const lastEcho = () => bed.upstream.received.at(-1);
const publisher = new Redis(bed.redis.url);
t.teardown(() => publisher.disconnect());
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

t.test('a token through the proxy on both replicas: identity headers, no Authorization forwarded', async (t) => {
  const token = await issue('alice', 'script');
  for (const gw of [one, two]) {
    const res = await send(`${gw.url}/api/report?x=1`, { headers: bearer(token) });
    t.equal(res.status, 200, res.body);
    const echo = lastEcho();
    t.equal(echo?.headers['x-forwarded-user'], 'alice');
    t.equal(echo?.headers['x-forwarded-email'], 'alice@example.com');
    t.equal(echo?.headers['x-forwarded-groups'], 'staff,ops');
    t.equal(echo?.headers.authorization, undefined, 'the gateway token stays at the gateway');
    t.notOk(echo?.rawHeaders.join('\n').includes(token.slice(8)), 'nowhere in what the app got');
  }
  t.notOk(one.logs.join('\n').includes(token.slice(8)), 'nor in the log');
});

t.test("the app's own Authorization passes through, as before", async (t) => {
  const cookie = await login(one, 'bob', 'bob-Pw-0115-long');
  const res = await send(`${one.url}/api/app`, { headers: withSession(one, cookie, { authorization: 'Bearer app-own-token' }) });
  t.equal(res.status, 200);
  t.equal(lastEcho()?.headers.authorization, 'Bearer app-own-token');
  t.equal(lastEcho()?.headers['x-forwarded-user'], 'bob');
});

t.test('a bad token: 401 for a script (with the Basic challenge), the login page for a browser', async (t) => {
  const bad = 'sgw_pat_' + 'x'.repeat(43);
  const before = bed.upstream.received.length;
  const api = await send(`${one.url}/api/report`, { headers: bearer(bad) });
  t.equal(api.status, 401);
  t.match(api.headers['www-authenticate'], /^Basic realm="[^"]+", charset="UTF-8"$/);
  const nav = await send(`${one.url}/page`, { headers: { ...bearer(bad), accept: 'text/html' } });
  t.equal(nav.status, 302);
  t.match(nav.headers.location, /\/_auth\/login\?rd=/);
  t.equal(nav.headers['www-authenticate'], undefined, 'no browser password dialog');
  t.equal(bed.upstream.received.length, before, 'nothing reached the app');
});

t.test('forward-auth: a token and Basic at /_auth/verify', async (t) => {
  const token = await issue('alice', 'verify');
  const ok = await callVerify(one, { ...bearer(token), 'x-forwarded-uri': '/app/x', 'x-forwarded-method': 'GET' });
  t.equal(ok.status, 204);
  t.equal(ok.headers['x-forwarded-user'], 'alice');
  t.equal(ok.headers['x-forwarded-groups'], 'staff,ops');
  const viaBasic = await callVerify(two, { ...basic('alice', PASSWORD), 'x-forwarded-uri': '/app/x', 'x-forwarded-method': 'PROPFIND' });
  t.equal(viaBasic.status, 204);
  t.equal(viaBasic.headers['x-forwarded-user'], 'alice');
  const refused = await callVerify(two, { ...basic('alice', 'wrong password!'), 'x-forwarded-uri': '/app/x' });
  t.equal(refused.status, 401);
  t.match(refused.headers['www-authenticate'], /^Basic /);
});

t.test('revoked on one replica, refused on the other within a session revocation\'s bound', async (t) => {
  const token = await issue('alice', 'revoke-me');
  t.equal((await send(`${two.url}/x`, { headers: bearer(token) })).status, 200, 'hot on replica two');
  t.equal((await send(`${two.url}/x`, { headers: bearer(token) })).status, 200);
  const sessionCookie = await login(two, 'bob', 'bob-Pw-0115-long');
  t.equal((await send(`${two.url}/x`, { headers: withSession(two, sessionCookie) })).status, 200);

  // The token, as `tokens revoke` does it (delete, then publish the hash).
  const started = Date.now();
  const hash = await store.revoke('alice', 'revoke-me');
  await publisher.publish(`${bed.prefix}invalidate`, `t:${hash}`);
  let tokenMs = -1;
  for (let i = 0; i < 500; i++) {
    if ((await send(`${two.url}/x`, { headers: bearer(token) })).status === 401) {
      tokenMs = Date.now() - started;
      break;
    }
    await sleep(2);
  }
  // A session, for the bound: logout on replica one, refused on replica two.
  const sessionStarted = Date.now();
  await send(`${one.url}/_auth/logout`, { method: 'POST', headers: withSession(one, sessionCookie, { origin: one.url }) });
  let sessionMs = -1;
  for (let i = 0; i < 500; i++) {
    if ((await send(`${two.url}/x`, { headers: withSession(two, sessionCookie) })).status === 401) {
      sessionMs = Date.now() - sessionStarted;
      break;
    }
    await sleep(2);
  }
  t.ok(tokenMs >= 0 && sessionMs >= 0, `token refused after ${tokenMs} ms, session after ${sessionMs} ms`);
  // The same pub/sub hop as a session: the two differ by no more than a busy machine's jitter.
  t.ok(tokenMs <= sessionMs + 250 && tokenMs < 1_000, 'a revoked token is refused on the other replica within a session revocation\'s bound');
  const metrics = await send(`${two.adminUrl}/metrics`);
  t.ok(metricSum(metrics.body, 'gateway_token_validations_total', { outcome: 'revoked' }) >= 1, 'counted as revoked');
  t.ok(metricSum(metrics.body, 'gateway_token_validations_total', { outcome: 'valid' }) >= 2);
});

t.test('an expired token is refused', async (t) => {
  const token = await issue('alice', 'brief', 1_500);
  t.equal((await send(`${one.url}/x`, { headers: bearer(token) })).status, 200);
  await sleep(1_600);
  const res = await send(`${one.url}/x`, { headers: bearer(token) });
  t.equal(res.status, 401);
  t.equal((await send(`${two.url}/x`, { headers: bearer(token) })).status, 401, 'on the replica that never cached it too');
});

t.test('Basic through the proxy; the header is not forwarded; wrong password and unknown user look alike', async (t) => {
  const ok = await send(`${one.url}/dav/`, { method: 'PROPFIND', headers: basic('alice', PASSWORD) });
  t.equal(ok.status, 200);
  t.equal(lastEcho()?.headers['x-forwarded-user'], 'alice');
  t.equal(lastEcho()?.headers.authorization, undefined, 'the password stays at the gateway');

  const wrong = await send(`${one.url}/dav/`, { headers: basic('bob', 'not-the-password') });
  const unknown = await send(`${one.url}/dav/`, { headers: basic('nobody-at-all', 'not-the-password') });
  t.equal(wrong.status, 401);
  t.equal(unknown.status, wrong.status);
  t.equal(unknown.body, wrong.body, 'the same body');
  t.equal(unknown.headers['www-authenticate'], wrong.headers['www-authenticate'], 'the same challenge');

  const anonymous = await send(`${one.url}/dav/`);
  t.equal(anonymous.status, 401);
  t.match(anonymous.headers['www-authenticate'], /^Basic realm=/, 'a non-browser 401 invites Basic');
  const browser = await send(`${one.url}/page`, { headers: { accept: 'text/html' } });
  t.equal(browser.status, 302, 'a browser navigation still gets the login page');
});

t.test('Basic is throttled like the form: 429 with Retry-After, then even the right password', async (t) => {
  const gw = await bed.gateway({ ...env, GATEWAY_LOGIN_MAX_ATTEMPTS: '2' });
  for (let i = 0; i < 2; i++) t.equal((await send(`${gw.url}/x`, { headers: basic('carol', `guess-${i}`) })).status, 401);
  const throttled = await send(`${gw.url}/x`, { headers: basic('carol', 'carol-Pw-0115-long') });
  t.equal(throttled.status, 429);
  t.ok(Number(throttled.headers['retry-after']) > 0);
  t.ok(gw.logs.some((line) => line.includes('"audit":"login"') && line.includes('"method":"basic"') && line.includes('"outcome":"throttled"')), 'audited like a sign-in');
  t.notOk(gw.logs.join('\n').includes('carol-Pw-0115-long'), 'no password in the log');
});
