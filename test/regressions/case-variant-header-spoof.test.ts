// Attack: a client sends the identity headers in another case (REMOTE-USER, x-FORWARDED-user), or
// several times, hoping that a case-sensitive comparison against the configured name lets one
// copy through, or that the app reads the first of two values.
// Defence: src/identity/headers.ts compares names case-insensitively (configured names
// included) and removes every copy before adding exactly one of its own.
import t from 'tap';
import { login, withSession } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import type { Echo } from '../helpers/upstream.js';
import { cgiName, exactHeaders, rawPairs, testBed } from './setup.js';

const bed = await testBed(t, [{ username: 'alice', password: 'alice-Pw-0002', email: 'alice@example.com', groups: ['staff'] }]);
// Mixed-case configured names: the operator's spelling must not matter either.
const gw = await bed.gateway({ GATEWAY_HEADER_USER: 'Remote-User', GATEWAY_HEADER_EMAIL: 'REMOTE-EMAIL', GATEWAY_HEADER_GROUPS: 'remote-Groups', GATEWAY_PUBLIC_PATHS: '/public' });
const cookie = await login(gw, 'alice', 'alice-Pw-0002');

const SPOOFS: Array<[string, string]> = [
  ['REMOTE-USER', 'admin'],
  ['remote-user', 'root'],
  ['Remote-User', 'admin'],
  ['rEmOtE-eMaIl', 'admin@example.com'],
  ['REMOTE-GROUPS', 'admins'],
  ['X-FORWARDED-USER', 'admin'],
  ['x-Forwarded-user', 'admin'],
  ['X-FORWARDED-EMAIL', 'admin@example.com'],
  ['x-forwarded-GROUPS', 'admins'],
  ['X-GATEWAY-IDENTITY', 'admin'],
];
const NAMES = new Set(['remote-user', 'remote-email', 'remote-groups', 'x-forwarded-user', 'x-forwarded-email', 'x-forwarded-groups', 'x-gateway-identity']);
const identitySeen = (echo: Echo) =>
  rawPairs(echo)
    .filter(([name]) => NAMES.has(cgiName(name)))
    .map(([name, value]) => [cgiName(name), value])
    .sort();

t.test('signed in as alice: the app receives exactly one copy of each identity header, the gateway\'s', async (t) => {
  const res = await send(`${gw.url}/whoami`, { headers: exactHeaders(gw, [...Object.entries(withSession(gw, cookie)), ...SPOOFS]) });
  t.equal(res.status, 200);
  t.same(identitySeen(res.json<Echo>()), [
    ['remote-email', 'alice@example.com'],
    ['remote-groups', 'staff'],
    ['remote-user', 'alice'],
  ]);
});

t.test('anonymous on a public path: no copy at all', async (t) => {
  const res = await send(`${gw.url}/public/x`, { headers: exactHeaders(gw, SPOOFS) });
  t.equal(res.status, 200);
  t.same(identitySeen(res.json<Echo>()), []);
});

t.test('anonymous on a protected path: refused, and the spoofed name does not count as a session', async (t) => {
  const before = bed.upstream.received.length;
  const res = await send(`${gw.url}/admin`, { headers: exactHeaders(gw, [['Accept', 'application/json'], ...SPOOFS]) });
  t.equal(res.status, 401);
  t.equal(bed.upstream.received.length, before, 'nothing reached the app');
});
