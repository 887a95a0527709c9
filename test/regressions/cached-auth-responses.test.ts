// Attack: a shared cache (corporate proxy, CDN, the load balancer's cache) stores a response that
// carries one user's session — the login answer with its Set-Cookie, /_auth/session's identity, the
// redirect after sign-in — and serves it to the next person who asks.
// Defence: src/login/routes.ts sends Cache-Control: no-store (and Pragma: no-cache) on every gateway
// route, plus nosniff and Referrer-Policy: same-origin so no URL of the flow leaks to other sites.
import t from 'tap';
import { login, withSession } from '../helpers/gateway.js';
import { send, type Response } from '../helpers/http.js';
import { browserLogin, jsonLogin, testBed } from './setup.js';

type Assert = Pick<typeof t, 'match' | 'equal'>;
const bed = await testBed(t, [{ username: 'alice', password: 'alice-Pw-0018' }]);
const gw = await bed.gateway();

function uncacheable(t: Assert, res: Response, label: string): void {
  t.match(res.headers['cache-control'] ?? '', /\bno-store\b/, `${label}: Cache-Control no-store`);
  t.equal(res.headers['x-content-type-options'], 'nosniff', `${label}: nosniff`);
  t.equal(res.headers['referrer-policy'], 'same-origin', `${label}: Referrer-Policy`);
}

t.test('every response that carries or reveals a session is marked no-store', async (t) => {
  const json = await jsonLogin(gw, { username: 'alice', password: 'alice-Pw-0018' });
  t.ok(json.cookies.sgw_session, 'JSON login sets the cookie');
  uncacheable(t, json, 'JSON login');
  const form = await browserLogin(gw, { username: 'alice', password: 'alice-Pw-0018', rd: '/home' });
  t.equal(form.status, 303);
  uncacheable(t, form, 'form login redirect');
  const cookie = await login(gw, 'alice', 'alice-Pw-0018');
  const session = await send(`${gw.url}/_auth/session`, { headers: withSession(gw, cookie) });
  t.equal(session.json().user, 'alice');
  uncacheable(t, session, '/_auth/session');
  // Forward-auth answers go to the proxy, not to a browser page: no-store (an nginx proxy_cache
  // in front of it must not replay one user's 204 for another), none of the page headers.
  const verify = await send(`${gw.url}/_auth/verify`, { headers: withSession(gw, cookie) });
  t.equal(verify.headers['x-forwarded-user'], 'alice');
  t.match(verify.headers['cache-control'] ?? '', /\bno-store\b/, '/_auth/verify: Cache-Control no-store');
  const refused = await send(`${gw.url}/_auth/verify`);
  t.equal(refused.status, 401);
  t.match(refused.headers['cache-control'] ?? '', /\bno-store\b/, '/_auth/verify 401: Cache-Control no-store');
  uncacheable(t, await send(`${gw.url}/_auth/login`, { headers: { accept: 'text/html' } }), 'login page (carries a CSRF pair)');
  uncacheable(t, await send(`${gw.url}/_auth/logout`, { headers: withSession(gw, cookie) }), 'logout');
});

t.test('failures are not cached either', async (t) => {
  uncacheable(t, await jsonLogin(gw, { username: 'alice', password: 'wrong' }), 'failed login');
  uncacheable(t, await send(`${gw.url}/_auth/session`), '/_auth/session without a session');
});
