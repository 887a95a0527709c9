// Attack: forge or keep using cookies across a change of GATEWAY_SESSION_SECRET — sign an id with
// a guessed, leaked-then-retired or default secret, or keep replaying a cookie signed with a secret
// the operator has since removed. Users must not be logged out by a routine rotation either.
// Defence: src/session/id.ts (the first secret signs, all listed verify, a cookie signed with a
// listed older one is re-signed on use) and src/config/config.ts (secrets of at least 32 characters).
import { createHmac } from 'node:crypto';
import t from 'tap';
import { loadConfig } from '../../src/config/config.js';
import { login } from '../helpers/gateway.js';
import { apiGet, testBed } from './setup.js';

const OLD = 'old-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
const NEW = 'new-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
const bed = await testBed(t, [{ username: 'alice', password: 'alice-Pw-0014' }]);
const before = await bed.gateway({ GATEWAY_SESSION_SECRET: OLD });
const during = await bed.gateway({ GATEWAY_SESSION_SECRET: `${NEW},${OLD}` });
const after = await bed.gateway({ GATEWAY_SESSION_SECRET: NEW });

const idOf = (cookie: string) => cookie.slice(0, cookie.lastIndexOf('.'));
/** The cookie format (@fastify/cookie): `<id>.<base64 HMAC-SHA256 of id, unpadded>`. */
const signWith = (secret: string, id: string) => `${id}.${createHmac('sha256', secret).update(id).digest('base64').replace(/=+$/, '')}`;

t.test('a routine rotation keeps users signed in and moves their cookie to the new secret', async (t) => {
  const cookie = await login(before, 'alice', 'alice-Pw-0014');
  const res = await apiGet(during, '/x', cookie);
  t.equal(res.status, 200, 'an old-secret cookie is accepted while OLD is still listed');
  const renewed = res.cookies.sgw_session ?? '';
  t.equal(renewed, signWith(NEW, idOf(cookie)), 'and re-signed with the new secret, same session');
  t.equal((await apiGet(after, '/x', renewed)).status, 200, 'the renewed cookie survives dropping OLD');
  t.equal((await apiGet(after, '/x', cookie)).status, 401, 'the un-renewed old cookie does not');
});

t.test('a cookie signed with any secret the gateway does not list is refused, even for a live session id', async (t) => {
  const cookie = await login(after, 'alice', 'alice-Pw-0014');
  const id = idOf(cookie);
  t.equal(cookie, signWith(NEW, id), 'the cookie format assumed here is the real one');
  for (const secret of ['', 'secret', 'changeme', 'attacker-guess-0123456789-abcdefghijklmnop', OLD]) {
    t.equal((await apiGet(after, '/x', signWith(secret, id))).status, 401, `signed with ${JSON.stringify(secret.slice(0, 12))}: 401`);
  }
  t.equal((await apiGet(after, '/x', id)).status, 401, 'the bare id: 401');
  t.equal((await apiGet(after, '/x', `${id}.`)).status, 401, 'the id with an empty signature: 401');
  t.equal((await apiGet(after, '/x', cookie)).status, 200, 'control: the real cookie works');
});

t.test('a weak secret is refused at start-up, naming the variable', async (t) => {
  const env = { REDIS_URL: bed.redis.url, DATABASE_URL: bed.pg.url };
  t.throws(() => loadConfig({ ...env, GATEWAY_SESSION_SECRET: 'short' }), /GATEWAY_SESSION_SECRET/);
  t.throws(() => loadConfig({ ...env, GATEWAY_SESSION_SECRET: `${NEW},short` }), /GATEWAY_SESSION_SECRET/, 'every listed secret, not just the first');
  t.throws(() => loadConfig(env), /GATEWAY_SESSION_SECRET/, 'and with Redis it is required (no per-process random secret)');
});
