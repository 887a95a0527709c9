// Attack (login CSRF): a page on another site makes the victim's browser sign in to the gateway
// as the ATTACKER (auto-submitted form or fetch), so whatever the victim then types into the app
// lands in the attacker's account. The attacker knows valid credentials; only CSRF defences stop it.
// Defence: src/login/routes.ts + src/login/csrf.ts (HMAC token bound to a SameSite=Strict pre-login
// cookie) + src/http.ts isSameOrigin (Origin / Sec-Fetch-Site) + JSON only with
// Content-Type: application/json, which a cross-site form cannot send.
import t from 'tap';
import { send } from '../helpers/http.js';
import { jsonLogin, loginForm, postForm, testBed } from './setup.js';

const bed = await testBed(t, [{ username: 'mallory', password: 'mallory-Pw-0005' }]);
const gw = await bed.gateway({ GATEWAY_LOGIN_MAX_ATTEMPTS: '1000', GATEWAY_LOGIN_MAX_ATTEMPTS_PER_IP: '10000' });
const creds = { username: 'mallory', password: 'mallory-Pw-0005', rd: '/' };

t.test('form without a token, or without its cookie: 403, no session', async (t) => {
  const form = await loginForm(gw);
  for (const [label, fields, cookies] of [
    ['no token, no cookie', creds, {}],
    ['no token, real cookie', creds, { sgw_csrf: form.csrfCookie }],
    ['real token, no cookie', { ...creds, csrf: form.token }, {}],
  ] as const) {
    const res = await postForm(gw, fields, cookies);
    t.equal(res.status, 403, label);
    t.notOk(res.cookies.sgw_session, `${label}: no session cookie`);
  }
});

t.test('forged or mismatched tokens: 403, no session', async (t) => {
  const a = await loginForm(gw);
  const b = await loginForm(gw);
  const forged: Array<[string, string, string]> = [
    ['random token', 'A'.repeat(43), a.csrfCookie],
    ['token of another page', b.token, a.csrfCookie],
    ['cookie value as token', a.csrfCookie, a.csrfCookie],
    ['attacker-chosen cookie and token', 'x', 'x'],
    ['empty token', '', a.csrfCookie],
  ];
  for (const [label, token, cookie] of forged) {
    const res = await postForm(gw, { ...creds, csrf: token }, { sgw_csrf: cookie });
    t.equal(res.status, 403, label);
    t.notOk(res.cookies.sgw_session, `${label}: no session cookie`);
  }
});

t.test('a valid pair sent from another origin: 403, no session', async (t) => {
  const cases: Array<[string, Record<string, string>]> = [
    ['Origin of another site', { origin: 'https://evil.example' }],
    ['Origin null (sandboxed frame, data: URL)', { origin: 'null' }],
    ['Origin with another port', { origin: 'http://127.0.0.1:1' }],
    ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }],
    ['Sec-Fetch-Site: same-site (a sibling subdomain)', { 'sec-fetch-site': 'same-site' }],
  ];
  for (const [label, headers] of cases) {
    const form = await loginForm(gw);
    const res = await postForm(gw, { ...creds, csrf: form.token }, { sgw_csrf: form.csrfCookie }, headers);
    t.equal(res.status, 403, label);
    t.notOk(res.cookies.sgw_session, `${label}: no session cookie`);
  }
});

t.test('JSON credentials in the content types a cross-site form can send never sign in', async (t) => {
  const body = JSON.stringify(creds);
  for (const type of ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
    const res = await send(`${gw.url}/_auth/login`, { method: 'POST', headers: { 'content-type': type, origin: 'https://evil.example' }, body });
    t.ok(res.status >= 400 && res.status < 500, `${type}: ${res.status} is a refusal`);
    t.notOk(res.cookies.sgw_session, `${type}: no session cookie`);
    const sameOrigin = await send(`${gw.url}/_auth/login`, { method: 'POST', headers: { 'content-type': type }, body });
    t.ok(sameOrigin.status >= 400 && sameOrigin.status < 500, `${type} without Origin: ${sameOrigin.status} is a refusal`);
    t.notOk(sameOrigin.cookies.sgw_session, `${type} without Origin: no session cookie`);
  }
});

t.test('JSON from another origin (a CORS fetch) is refused too', async (t) => {
  for (const headers of [{ origin: 'https://evil.example' }, { 'sec-fetch-site': 'cross-site' }] as Array<Record<string, string>>) {
    const res = await jsonLogin(gw, creds, headers);
    t.equal(res.status, 403, JSON.stringify(headers));
    t.notOk(res.cookies.sgw_session);
  }
});

t.test('control: the same credentials from the real page, same origin, sign in', async (t) => {
  const form = await loginForm(gw);
  const origin = new URL(gw.url).origin;
  const res = await postForm(gw, { ...creds, csrf: form.token }, { sgw_csrf: form.csrfCookie }, { origin, 'sec-fetch-site': 'same-origin' });
  t.equal(res.status, 303);
  t.ok(res.cookies.sgw_session, 'a session cookie');
  t.equal((await jsonLogin(gw, creds)).status, 200, 'and a JSON client without Origin signs in');
});

t.test('the pre-login cookie cannot be sent by another site', async (t) => {
  const res = await send(`${gw.url}/_auth/login`, { headers: { accept: 'text/html' } });
  t.match(res.setCookie('sgw_csrf') ?? '', /;\s*SameSite=Strict/i);
  t.match(res.setCookie('sgw_csrf') ?? '', /;\s*HttpOnly/i);
});
