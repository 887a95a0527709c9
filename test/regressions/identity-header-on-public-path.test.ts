// Attack: public paths are forwarded without a session, but the app code behind them often shares
// the middleware that trusts X-Forwarded-User — so a spoofed identity header on /public/… (or on a
// gateway running with authentication off) would impersonate anyone there.
// Defence: src/proxy/routes.ts runs the same header rewrite (src/identity/headers.ts) on
// every forwarded request, public or not, and injects identity only from a validated session.
import t from 'tap';
import { login, withSession } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import type { Echo } from '../helpers/upstream.js';
import { cgiName, exactHeaders, rawPairs, testBed } from './setup.js';

const bed = await testBed(t, [{ username: 'mallory', password: 'mallory-Pw-0015' }]);
const gw = await bed.gateway({ GATEWAY_PUBLIC_PATHS: '/public,/assets/' });
const open = await bed.gateway({ GATEWAY_PUBLIC_PATHS: '/' });

const SPOOFS: Array<[string, string]> = [
  ['X-Forwarded-User', 'admin'],
  ['x-forwarded-user', 'root'],
  ['X_Forwarded_User', 'admin'],
  ['X-FORWARDED-EMAIL', 'admin@example.com'],
  ['X-Forwarded-Groups', 'admins'],
  ['X-Gateway-Identity', 'admin'],
];
const NAMES = new Set(['x-forwarded-user', 'x-forwarded-email', 'x-forwarded-groups', 'x-gateway-identity']);
const identitySeen = (echo: Echo) => rawPairs(echo).filter(([name]) => NAMES.has(cgiName(name)));

t.test('anonymous: spoofed identity on public paths never reaches the app', async (t) => {
  for (const path of ['/public', '/public/', '/public/api/me', '/assets/app.js', '/public/../public/x']) {
    const res = await send(`${gw.url}${path}`, { headers: exactHeaders(gw, SPOOFS) });
    t.equal(res.status, 200, `${path}: served`);
    t.same(identitySeen(res.json<Echo>()), [], `${path}: no identity header at all`);
  }
});

t.test('signed in as mallory: a spoofed "admin" on a public path is not what the app reads', async (t) => {
  const cookie = await login(gw, 'mallory', 'mallory-Pw-0015');
  const res = await send(`${gw.url}/public/api/me`, { headers: exactHeaders(gw, [...Object.entries(withSession(gw, cookie)), ...SPOOFS]) });
  t.equal(res.status, 200);
  const seen = identitySeen(res.json<Echo>());
  t.ok(seen.length <= 1, 'at most one identity header');
  t.notOk(seen.some(([, value]) => value !== 'mallory'), 'and never a spoofed value');
});

t.test('with authentication off (GATEWAY_PUBLIC_PATHS=/), spoofs are still removed', async (t) => {
  const res = await send(`${open.url}/admin`, { headers: exactHeaders(open, SPOOFS) });
  t.equal(res.status, 200);
  t.same(identitySeen(res.json<Echo>()), []);
});

t.test('forward-auth: a spoofed identity does not make /_auth/verify vouch for anyone', async (t) => {
  const res = await send(`${gw.url}/_auth/verify`, { headers: exactHeaders(gw, SPOOFS) });
  t.equal(res.status, 401);
  t.notOk(res.headers['x-forwarded-user'], 'no identity in the answer');
});
