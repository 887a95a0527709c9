// Attack (session fixation): the attacker puts a cookie value of their choosing (or their own valid
// session) into the victim's browser — via a sibling subdomain, a header-injection bug, a shared
// computer — and waits for the victim to sign in, hoping the gateway adopts that value.
// Defence: src/login/routes.ts issues a brand-new id at every login and destroys the one presented;
// src/session/id.ts never accepts a value it did not sign.
import { createHmac, randomBytes } from 'node:crypto';
import t from 'tap';
import { login } from '../helpers/gateway.js';
import { cookieHeader, send } from '../helpers/http.js';
import { apiGet, browserLogin, jsonLogin, sleep, testBed } from './setup.js';

const bed = await testBed(t, [
  { username: 'alice', password: 'alice-Pw-0006' },
  { username: 'mallory', password: 'mallory-Pw-0006' },
]);
const gw = await bed.gateway();
const replica = await bed.gateway();

/** Signs an id the way @fastify/cookie does, with a secret the gateway does not have. */
const signWith = (secret: string, id: string) => `${id}.${createHmac('sha256', secret).update(id).digest('base64').replace(/=+$/, '')}`;

const planted = [
  'attacker-chosen-value',
  randomBytes(32).toString('base64url'),
  signWith('not-the-gateway-secret-0123456789abcdef', randomBytes(32).toString('base64url')),
];

t.test('a value the gateway did not issue is never a session, and is never adopted at login', async (t) => {
  for (const value of planted) {
    const before = await apiGet(gw, '/account', value);
    t.equal(before.status, 401, 'refused before login');
    const res = await jsonLogin(gw, { username: 'alice', password: 'alice-Pw-0006' }, { cookie: cookieHeader({ sgw_session: value }) });
    t.equal(res.status, 200, 'the victim signs in');
    const issued = res.cookies.sgw_session ?? '';
    t.ok(issued !== '' && issued !== value, 'a fresh cookie value is issued');
    t.notOk(issued.includes(value.split('.')[0] ?? value), 'the new value does not contain the planted one');
    t.equal((await apiGet(gw, '/account', value)).status, 401, 'the planted value still opens nothing');
    t.equal((await apiGet(replica, '/account', value)).status, 401, 'on no replica');
  }
});

t.test("the attacker's own valid session, planted in the victim's browser, is replaced and ended", async (t) => {
  const mallory = await login(gw, 'mallory', 'mallory-Pw-0006');
  t.equal((await apiGet(gw, '/x', mallory)).status, 200, "the attacker's session works");
  // The victim's browser carries mallory's cookie and signs in through the real form.
  const res = await browserLogin(gw, { username: 'alice', password: 'alice-Pw-0006', rd: '/' }, { cookies: { sgw_session: mallory } });
  t.equal(res.status, 303);
  const alice = res.cookies.sgw_session ?? '';
  t.ok(alice !== '' && alice !== mallory, 'the victim gets a new id');
  const replay = await apiGet(gw, '/x', mallory);
  t.equal(replay.status, 401, "the attacker's planted cookie no longer works");
  const asAlice = await apiGet(gw, '/x', alice);
  t.equal(asAlice.json<{ headers: Record<string, string> }>().headers['x-forwarded-user'], 'alice');
});

t.test('every login issues a new id, and the previous one stops working everywhere', async (t) => {
  const first = await login(gw, 'alice', 'alice-Pw-0006');
  t.equal((await apiGet(replica, '/x', first)).status, 200, 'the first session works on a replica (and is cached there)');
  const again = await send(`${gw.url}/_auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', cookie: cookieHeader({ sgw_session: first }) },
    body: JSON.stringify({ username: 'alice', password: 'alice-Pw-0006' }),
  });
  const second = again.cookies.sgw_session ?? '';
  t.ok(second !== '' && second !== first, 'a different id');
  t.equal((await apiGet(gw, '/x', first)).status, 401, 'the old id is refused here');
  // The replica hears of it over pub/sub: give the message a moment to arrive, then insist.
  let status = 0;
  for (let i = 0; i < 20 && status !== 401; i++) {
    status = (await apiGet(replica, '/x', first)).status;
    if (status !== 401) await sleep(50);
  }
  t.equal(status, 401, 'and on the replica that had it cached');
  t.equal((await apiGet(gw, '/x', second)).status, 200, 'the new one works');
});
