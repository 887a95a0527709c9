// Attack: guess passwords online — many tries at one account, a burst of parallel tries so they
// are all in flight before the first is counted, spreading tries over replicas, over case or
// padding variants of the name that the user table resolves to the same account, or over many
// accounts from one address (password spraying), faking the source address with X-Forwarded-For.
// Defence: src/login/throttle.ts (per-username and per-IP fixed windows in Redis, counted before the
// password is checked) and src/login/routes.ts: 429 + Retry-After, even for the right password.
import t from 'tap';
import { hashPassword } from '../../src/users/passwords.js';
import { uniquePrefix } from '../helpers/gateway.js';
import type { Response } from '../helpers/http.js';
import { jsonLogin, testBed } from './setup.js';

const USERS = ['ann', 'bea', 'cat', 'dan', 'eve', 'fay', 'gus'];
type Assert = Pick<typeof t, 'equal' | 'match' | 'ok' | 'notOk'>;
const bed = await testBed(t, USERS.map((u) => ({ username: u, password: `${u}-Pw-Right-0007` })));
const right = (u: string) => ({ username: u, password: `${u}-Pw-Right-0007` });
const wrong = (u: string, i: number) => ({ username: u, password: `wrong-${i}` });

function refusedUntilWindowEnds(t: Assert, res: Response, label: string): void {
  t.equal(res.status, 429, `${label}: 429`);
  t.match(res.headers['retry-after'], /^[1-9]\d*$/, `${label}: Retry-After in whole seconds`);
  t.ok(Number(res.headers['retry-after']) <= 600, `${label}: Retry-After within the 10m window`);
  t.notOk(res.cookies.sgw_session, `${label}: no session`);
}

t.test('per user: after the limit even the right password is refused, on every replica', async (t) => {
  const env = { GATEWAY_REDIS_PREFIX: uniquePrefix(), GATEWAY_LOGIN_MAX_ATTEMPTS: '3', GATEWAY_LOGIN_WINDOW: '10m', GATEWAY_LOGIN_MAX_ATTEMPTS_PER_IP: '1000' };
  const a = await bed.gateway(env);
  const b = await bed.gateway(env);
  t.equal((await jsonLogin(a, wrong('ann', 1))).status, 401);
  t.equal((await jsonLogin(b, wrong('ann', 2))).status, 401, 'the second guess on another replica');
  t.equal((await jsonLogin(a, wrong('ann', 3))).status, 401);
  refusedUntilWindowEnds(t, await jsonLogin(a, right('ann')), 'right password, same replica');
  refusedUntilWindowEnds(t, await jsonLogin(b, right('ann')), 'right password, other replica');
  refusedUntilWindowEnds(t, await jsonLogin(b, wrong('ann', 4)), 'more guesses');
  t.equal((await jsonLogin(b, right('bea'))).status, 200, 'another account from the same address is unaffected');
});

t.test('case variants of the name share one budget', async (t) => {
  const a = await bed.gateway({ GATEWAY_REDIS_PREFIX: uniquePrefix(), GATEWAY_LOGIN_MAX_ATTEMPTS: '3', GATEWAY_LOGIN_WINDOW: '10m', GATEWAY_LOGIN_MAX_ATTEMPTS_PER_IP: '1000' });
  for (const [i, name] of ['CAT', 'Cat', 'cAt'].entries()) t.equal((await jsonLogin(a, wrong(name, i))).status, 401, name);
  refusedUntilWindowEnds(t, await jsonLogin(a, right('cat')), 'cat after three guesses as CAT/Cat/cAt');
});

t.test('padding variants that a legacy CHAR(n) column resolves to the same account share its budget', async (t) => {
  // PostgreSQL compares char(n) ignoring trailing spaces: 'hal ' finds 'hal'. Each variant must not
  // bring a fresh per-user budget.
  await bed.pool.query('CREATE TABLE legacy_users (user_id char(16) PRIMARY KEY, pass varchar)');
  await bed.pool.query('INSERT INTO legacy_users VALUES ($1, $2)', ['hal', await hashPassword('hal-Pw-Right-0007')]);
  const a = await bed.gateway({
    GATEWAY_REDIS_PREFIX: uniquePrefix(),
    GATEWAY_USER_QUERY: 'SELECT user_id AS username, pass AS password_hash FROM legacy_users WHERE user_id = $1',
    GATEWAY_LOGIN_MAX_ATTEMPTS: '3',
    GATEWAY_LOGIN_WINDOW: '10m',
    GATEWAY_LOGIN_MAX_ATTEMPTS_PER_IP: '1000',
  });
  for (const name of ['hal', 'hal ', 'hal  ']) t.equal((await jsonLogin(a, wrong(name, 0))).status, 401, JSON.stringify(name));
  refusedUntilWindowEnds(t, await jsonLogin(a, { username: 'hal   ', password: 'hal-Pw-Right-0007' }), 'a fourth padding variant, right password');
  refusedUntilWindowEnds(t, await jsonLogin(a, { username: 'hal', password: 'hal-Pw-Right-0007' }), 'the name itself');
});

t.test('a burst of parallel guesses gets no more tries than the limit', async (t) => {
  const a = await bed.gateway({ GATEWAY_REDIS_PREFIX: uniquePrefix(), GATEWAY_LOGIN_MAX_ATTEMPTS: '3', GATEWAY_LOGIN_WINDOW: '10m', GATEWAY_LOGIN_MAX_ATTEMPTS_PER_IP: '1000' });
  const b = await bed.gateway({ GATEWAY_REDIS_PREFIX: a.config.redisPrefix, GATEWAY_LOGIN_MAX_ATTEMPTS: '3', GATEWAY_LOGIN_WINDOW: '10m', GATEWAY_LOGIN_MAX_ATTEMPTS_PER_IP: '1000' });
  const burst = await Promise.all(Array.from({ length: 30 }, (_, i) => jsonLogin(i % 2 ? a : b, wrong('dan', i))));
  const judged = burst.filter((r) => r.status === 401).length;
  // 503 + Retry-After: more sign-ins in flight from one address than the hashing queue gives it
  // (test/regressions/hash-queue-flood.test.ts); refused before any count or check, like a 429.
  const refused = burst.filter((r) => r.status === 429 || (r.status === 503 && r.headers['retry-after'] !== undefined)).length;
  t.ok(judged <= 3, `${judged} of 30 parallel guesses had their password checked (at most 3)`);
  t.equal(judged + refused, 30, 'every other one was refused (429, or 503 while the address has sign-ins in flight)');
  refusedUntilWindowEnds(t, await jsonLogin(a, right('dan')), 'right password after the burst');
});

t.test('per IP: spraying many accounts from one address is stopped, X-Forwarded-For from it is not believed', async (t) => {
  const a = await bed.gateway({ GATEWAY_REDIS_PREFIX: uniquePrefix(), GATEWAY_LOGIN_MAX_ATTEMPTS: '100', GATEWAY_LOGIN_WINDOW: '10m', GATEWAY_LOGIN_MAX_ATTEMPTS_PER_IP: '4' });
  const b = await bed.gateway({ GATEWAY_REDIS_PREFIX: a.config.redisPrefix, GATEWAY_LOGIN_MAX_ATTEMPTS: '100', GATEWAY_LOGIN_WINDOW: '10m', GATEWAY_LOGIN_MAX_ATTEMPTS_PER_IP: '4' });
  for (const [i, name] of ['x1', 'x2', 'x3', 'x4'].entries()) {
    const res = await jsonLogin(i % 2 ? a : b, wrong(name, i), { 'x-forwarded-for': `198.51.100.${i + 1}` });
    t.equal(res.status, 401, `guess ${i + 1} at ${name}`);
  }
  refusedUntilWindowEnds(t, await jsonLogin(a, right('eve')), 'an untouched account, right password');
  refusedUntilWindowEnds(t, await jsonLogin(b, right('eve')), 'on the other replica');
  refusedUntilWindowEnds(t, await jsonLogin(a, right('eve'), { 'x-forwarded-for': '203.0.113.77' }), 'with a made-up X-Forwarded-For');
});

t.test('behind a trusted load balancer the limit is per client, so one client cannot lock out the rest', async (t) => {
  const a = await bed.gateway({
    GATEWAY_REDIS_PREFIX: uniquePrefix(),
    GATEWAY_TRUSTED_PROXIES: '127.0.0.1/32',
    GATEWAY_LOGIN_MAX_ATTEMPTS: '100',
    GATEWAY_LOGIN_WINDOW: '10m',
    GATEWAY_LOGIN_MAX_ATTEMPTS_PER_IP: '2',
  });
  const attacker = { 'x-forwarded-for': '198.51.100.9' };
  t.equal((await jsonLogin(a, wrong('y1', 1), attacker)).status, 401);
  t.equal((await jsonLogin(a, wrong('y2', 2), attacker)).status, 401);
  refusedUntilWindowEnds(t, await jsonLogin(a, right('fay'), attacker), 'the guessing client');
  t.equal((await jsonLogin(a, right('gus'), { 'x-forwarded-for': '192.0.2.10' })).status, 200, 'another client behind the same balancer signs in');
});
