// Attack (logout CSRF): a page on another site embeds `<img src="https://app/_auth/logout">`, links
// to it, or auto-submits a form to it (or to a legacy logout path such as /logout), and the
// victim is signed out without asking: an annoyance, or the first step of a login-CSRF swap.
// Defence: src/login/routes.ts and src/proxy/routes.ts refuse a logout that src/http.ts
// isSameOrigin says came from another site (Sec-Fetch-Site, Origin): the session stays, and the
// user is shown a button that signs out with a same-origin POST. Same-site clicks work as before.
import t from 'tap';
import { login, withSession } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import { apiGet, testBed } from './setup.js';

const bed = await testBed(t, [{ username: 'victim', password: 'victim-Pw-0007' }]);
const gw = await bed.gateway({ GATEWAY_LOGOUT_PATHS: '/logout' });
const stillSignedIn = async (cookie: string) => (await apiGet(gw, '/_auth/session', cookie)).status === 200;

const CROSS_SITE_IMG = { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'image' };
const CROSS_SITE_NAV = { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', accept: 'text/html' };

t.test('GET /_auth/logout from another site: still signed in, asked to confirm', async (t) => {
  const cookie = await login(gw, 'victim', 'victim-Pw-0007');
  for (const [label, headers] of [['image', CROSS_SITE_IMG], ['navigation', CROSS_SITE_NAV]] as const) {
    const res = await send(`${gw.url}/_auth/logout`, { headers: withSession(gw, cookie, headers) });
    t.equal(res.status, 200, `${label}: a page, not a redirect`);
    t.notOk(res.cookies.sgw_session === '', 'the cookie is not cleared');
    t.match(res.body, /<form method="post" action="\/_auth\/logout">/, 'the user can still sign out, on purpose');
    t.match(res.headers['content-security-policy'], /form-action 'self'/);
  }
  t.ok(await stillSignedIn(cookie), 'the session survived');
});

t.test('POST from another site (auto-submitted form), and a legacy logout link: refused too', async (t) => {
  const cookie = await login(gw, 'victim', 'victim-Pw-0007');
  const form = await send(`${gw.url}/_auth/logout`, { method: 'POST', headers: withSession(gw, cookie, { origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' }), body: '' });
  t.equal(form.status, 200);
  const api = await send(`${gw.url}/_auth/logout`, { method: 'POST', headers: withSession(gw, cookie, { origin: 'https://evil.example', accept: 'application/json', 'content-type': 'application/json' }), body: '{}' });
  t.equal(api.status, 403, 'an API client gets a refusal');
  const legacy = await send(`${gw.url}/logout`, { headers: withSession(gw, cookie, CROSS_SITE_NAV) });
  t.equal(legacy.status, 303);
  t.equal(legacy.headers.location, '/_auth/logout', "sent to the gateway's own logout, which asks");
  t.ok(await stillSignedIn(cookie), 'the session survived all three');
  t.ok(gw.logs.some((line) => /"outcome":"cross_site_refused"/.test(line)), 'refusals are in the audit log');
});

t.test('the same requests from the site itself sign out as before', async (t) => {
  for (const [label, url, options] of [
    ['GET, same-origin link', '/_auth/logout', { 'sec-fetch-site': 'same-origin' }],
    ['GET, typed in the address bar', '/_auth/logout', { 'sec-fetch-site': 'none' }],
    ['POST, same-origin form', '/_auth/logout', { origin: gw.url }],
    ['GET, legacy link', '/logout', { 'sec-fetch-site': 'same-origin' }],
    ['GET, a client that sends neither header', '/_auth/logout', {}],
  ] as const) {
    const cookie = await login(gw, 'victim', 'victim-Pw-0007');
    const method = label.startsWith('POST') ? 'POST' : 'GET';
    const res = await send(`${gw.url}${url}`, { method, headers: withSession(gw, cookie, { ...options, ...(method === 'POST' ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) }), ...(method === 'POST' ? { body: '' } : {}) });
    t.equal(res.status, 303, label);
    t.notOk(await stillSignedIn(cookie), `${label}: signed out`);
  }
});
