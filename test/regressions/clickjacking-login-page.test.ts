// Attack (clickjacking): a page on another site frames the real login page, invisibly or under a
// decoy, so the victim's clicks and keystrokes go to it — or styles and scripts are injected into it
// to read what is typed.
// Defence: src/login/routes.ts — every gateway page is sent with X-Frame-Options: DENY and the login
// page with a CSP that forbids framing, scripts, foreign styles and foreign form targets.
import t from 'tap';
import { send } from '../helpers/http.js';
import { testBed } from './setup.js';

const bed = await testBed(t, [{ username: 'alice', password: 'alice-Pw-0017' }]);
const gw = await bed.gateway();

const directives = (csp: string | undefined) =>
  new Map((csp ?? '').split(';').map((d) => d.trim().split(/\s+/)).filter((d) => d[0]).map(([name, ...values]) => [name as string, values]));

t.test('the login page may not be framed, runs no script, and posts only to itself', async (t) => {
  for (const path of ['/_auth/login', '/_auth/login?rd=/x', '/_auth/login?logged_out=1']) {
    const res = await send(`${gw.url}${path}`, { headers: { accept: 'text/html' } });
    t.equal(res.status, 200);
    t.equal(res.headers['x-frame-options'], 'DENY', `${path}: X-Frame-Options`);
    const csp = directives(res.headers['content-security-policy'] as string | undefined);
    t.same(csp.get('frame-ancestors'), ["'none'"], `${path}: frame-ancestors 'none'`);
    t.same(csp.get('default-src'), ["'none'"], `${path}: nothing loads by default (no script-src)`);
    t.notOk(csp.has('script-src'), `${path}: no script source at all`);
    t.same(csp.get('form-action'), ["'self'"], `${path}: the form posts only to this origin`);
    t.notMatch(res.body, /<script/i, `${path}: no script in the page`);
  }
});

t.test('a failed sign-in page is protected the same way', async (t) => {
  const form = await send(`${gw.url}/_auth/login`, { headers: { accept: 'text/html' } });
  const res = await send(`${gw.url}/_auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html', cookie: `sgw_csrf=${encodeURIComponent(form.cookies.sgw_csrf ?? '')}` },
    body: new URLSearchParams({ username: 'alice', password: 'wrong', csrf: 'bad' }).toString(),
  });
  t.equal(res.status, 403);
  t.equal(res.headers['x-frame-options'], 'DENY');
  t.same(directives(res.headers['content-security-policy'] as string | undefined).get('frame-ancestors'), ["'none'"]);
});
