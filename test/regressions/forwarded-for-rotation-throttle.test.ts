// Attack: escape the per-IP login limit by rotating X-Forwarded-For. Behind a load balancer the
// gateway must read the client's address from X-Forwarded-For, but the client writes the left of
// that header itself: only the entries the trusted hops appended can be believed. A gateway that
// took the left-most entry (or any entry left of the first untrusted one) would give every
// rotated value a fresh budget.
// Defence: src/app.ts passes GATEWAY_TRUSTED_PROXIES to fastify's trustProxy (proxy-addr): the
// client address is the right-most X-Forwarded-For entry that is not itself a trusted proxy, and
// src/login/throttle.ts counts that address (SPEC section 2, issue 17 item 10).
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { jsonLogin, testBed } from './setup.js';

const PER_IP = 3;
const bed = await testBed(t, [{ username: 'ann', password: 'ann-Pw-Right-0020' }]);
const limits = { GATEWAY_LOGIN_MAX_ATTEMPTS: '1000', GATEWAY_LOGIN_MAX_ATTEMPTS_PER_IP: String(PER_IP) };
const forged = () => `198.51.100.${randomBytes(1)[0]}, 192.0.2.${randomBytes(1)[0]}`;
const auditIps = (logs: string[]) =>
  logs.map((line) => JSON.parse(line) as { audit?: string; ip?: string }).filter((entry) => entry.audit === 'login').map((entry) => entry.ip);

t.test('behind trusted hops: the right-most untrusted address is the client, whatever is left of it', async (t) => {
  // The balancer (127.0.0.1) and an inner hop (10.1.2.3) are trusted; 203.0.113.7 is the client.
  const gw = await bed.gateway({ ...limits, GATEWAY_TRUSTED_PROXIES: '127.0.0.1/32,10.0.0.0/8' });
  for (let i = 0; i < PER_IP; i++) {
    const res = await jsonLogin(gw, { username: `guess-${i}`, password: 'wrong' }, { 'x-forwarded-for': `${forged()}, 203.0.113.7, 10.1.2.3` });
    t.equal(res.status, 401, `guess ${i + 1} with a rotated prefix is checked`);
  }
  const refused = await jsonLogin(gw, { username: 'guess-x', password: 'wrong' }, { 'x-forwarded-for': `${forged()}, 203.0.113.7, 10.1.2.3` });
  t.equal(refused.status, 429, 'rotating the entries the client wrote itself does not buy a new budget');
  t.same(auditIps(gw.logs), Array(PER_IP + 1).fill('203.0.113.7'), 'every attempt was counted and logged against 203.0.113.7');
  const other = await jsonLogin(gw, { username: 'ann', password: 'ann-Pw-Right-0020' }, { 'x-forwarded-for': '203.0.113.8, 10.1.2.3' });
  t.equal(other.status, 200, 'another client behind the same hops has its own budget');
});

t.test('without trusted proxies X-Forwarded-For is not believed at all', async (t) => {
  const gw = await bed.gateway({ ...limits, GATEWAY_REDIS_PREFIX: `${bed.prefix}n:` });
  for (let i = 0; i < PER_IP; i++) await jsonLogin(gw, { username: `guess-${i}`, password: 'wrong' }, { 'x-forwarded-for': forged() });
  t.equal((await jsonLogin(gw, { username: 'guess-x', password: 'wrong' }, { 'x-forwarded-for': forged() })).status, 429);
  t.same(new Set(auditIps(gw.logs)), new Set(['127.0.0.1']), 'the peer address, never a forged one');
});
