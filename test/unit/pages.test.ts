import { createHash } from 'node:crypto';
import t from 'tap';
import {
  LOGIN_PAGE_STYLE_HASH,
  escapeHtml,
  renderLoginPage,
  type LoginPageModel,
} from '../../src/login/login-page.js';
import {
  ERROR_PAGE_STYLE_HASH,
  PAGE_STYLE_HASH,
  WHOAMI_PAGE_STYLE_HASH,
  renderErrorPage,
  renderWhoamiPage,
} from '../../src/pages.js';

// Each hostile value targets a different context: element text, a double-quoted
// attribute, and a single quote for anyone tempted to switch attribute quoting.
const SCRIPT = '<script>alert(1)</script>';
const ATTR_BREAK = '"><img src=x onerror=alert(1)>';
const QUOTE = "it's";

const HOSTILE = [SCRIPT, ATTR_BREAK, QUOTE];

// Returns what went wrong rather than asserting, so failures list every broken slot at once.
function escapingProblems(html: string): string[] {
  const problems: string[] = [];
  if (/<script/i.test(html)) problems.push('raw <script');
  if (/<img/i.test(html)) problems.push('raw <img');
  if (html.includes(QUOTE)) problems.push('raw single quote');
  if (!html.includes('&lt;script&gt;alert(1)&lt;/script&gt;')) problems.push('script not shown as text');
  if (!html.includes('&quot;&gt;&lt;img src=x onerror=alert(1)&gt;')) problems.push('attr break not shown as text');
  if (!html.includes('it&#39;s')) problems.push('quote not shown as entity');
  return problems;
}

const base: LoginPageModel = {
  title: 'Sign in',
  action: '/_auth/login',
  csrfToken: 'tok123',
  rd: '/app/home?x=1',
};

function styleOf(html: string): string {
  const m = /<style>([\s\S]*?)<\/style>/.exec(html);
  if (!m || m[1] === undefined) throw new Error('no <style> element');
  return m[1];
}

function cspHash(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

const whoami = () =>
  renderWhoamiPage({
    method: 'GET',
    url: '/whoami',
    logoutPath: '/_auth/logout',
    headers: {
      'user-agent': 'curl/8',
      accept: '*/*',
      'x-forwarded-groups': 'admins, staff',
      host: 'app.local',
      'x-forwarded-user': 'alice',
      'x-forwarded-email': 'alice@example.org',
      'x-multi': ['a', 'b'],
      'x-missing': undefined,
    },
  });

const pages = (): Record<string, string> => ({
  login: renderLoginPage(base),
  loginWithEverything: renderLoginPage({ ...base, username: 'bob', error: 'Invalid username or password.', notice: 'You have been signed out.' }),
  error: renderErrorPage(502, 'Bad gateway', 'The application is not answering.'),
  whoami: whoami(),
});

t.test('escapeHtml escapes the five significant characters', async (t) => {
  t.equal(escapeHtml(`&<>"'`), '&amp;&lt;&gt;&quot;&#39;');
  t.equal(escapeHtml('plain text'), 'plain text');
  t.equal(escapeHtml('&amp;'), '&amp;amp;', 'not idempotent: escapes exactly once per call');
});

t.test('login page escapes every interpolated slot', async (t) => {
  const slots: (keyof LoginPageModel)[] = ['title', 'action', 'csrfToken', 'rd', 'username', 'error', 'notice'];
  for (const slot of slots) {
    const html = renderLoginPage({ ...base, [slot]: HOSTILE.join(' ') });
    t.same(escapingProblems(html), [], `login.${slot}`);
  }
});

t.test('login form structure', async (t) => {
  const html = renderLoginPage({ ...base, username: 'bob' });
  t.match(html, /<html lang="en">/);
  t.match(html, /<meta name="viewport" content="width=device-width, initial-scale=1">/);
  t.match(html, /<meta name="referrer" content="same-origin">/);
  t.match(html, /<form class="login" method="post" action="\/_auth\/login">/);

  const username = /<input id="username"[^>]*>/.exec(html)?.[0] ?? '';
  t.match(username, /name="username"/);
  t.match(username, /value="bob"/, 'username re-filled');
  t.match(username, /autocomplete="username"/);
  t.notMatch(username, /autofocus/, 'with the username re-filled, focus goes to the password');
  t.match(username, / required /);
  t.match(username, /maxlength="256"/);

  const password = /<input id="password"[^>]*>/.exec(html)?.[0] ?? '';
  t.match(password, /name="password"/);
  t.match(password, /type="password"/);
  t.match(password, /autocomplete="current-password"/);
  t.match(password, / autofocus /);
  t.match(password, / required /);
  t.match(password, /maxlength="1024"/);
  t.notMatch(password, /value=/, 'password is never echoed back');

  t.match(html, /<label for="username">/);
  t.match(html, /<label for="password">/);
  t.match(html, /<input type="hidden" name="rd" value="\/app\/home\?x=1">/);
  t.match(html, /<input type="hidden" name="csrf" value="tok123">/);
  t.match(html, /<button type="submit">Sign in<\/button>/);
});

t.test('error is an alert linked to the fields; notice is a status', async (t) => {
  const clean = renderLoginPage(base);
  t.notMatch(clean, /role="alert"/, 'no alert without an error');
  t.notMatch(clean, /role="status"/, 'no status without a notice');
  t.notMatch(clean, / aria-describedby="| aria-invalid="/, 'no field points at a message that is not there');

  const failed = renderLoginPage({ ...base, error: 'Invalid username or password.' });
  t.equal(failed.match(/role="alert"/g)?.length, 1, 'exactly one alert');
  t.match(failed, /<p id="login-error" class="msg error" role="alert">Invalid username or password\.<\/p>/);
  t.equal(failed.match(/aria-describedby="login-error"/g)?.length, 2, 'both inputs described by the error');
  t.ok(failed.indexOf('role="alert"') < failed.indexOf('<form'), 'error placed before the form');

  const notice = renderLoginPage({ ...base, notice: 'Your session has expired.' });
  t.match(notice, /role="status">Your session has expired\.</);
  t.notMatch(notice, /role="alert"/);
});

t.test('error page renders and escapes', async (t) => {
  const html = renderErrorPage(502, 'Bad gateway', 'The application is not answering.');
  t.match(html, /<title>502 Bad gateway<\/title>/);
  t.match(html, /<h1>Bad gateway<\/h1>/);
  t.match(html, /Error 502/);
  t.match(html, /The application is not answering\./);
  t.same(escapingProblems(renderErrorPage(500, HOSTILE.join(' '), 'x')), [], 'error.title');
  t.same(escapingProblems(renderErrorPage(500, 'x', HOSTILE.join(' '))), [], 'error.message');
});

t.test('whoami lists identity headers first, then the rest sorted', async (t) => {
  const html = whoami();
  t.match(html, /It works — you are signed in through session-gateway/);
  t.match(html, /This is the built-in demo app\. Set GATEWAY_UPSTREAM to protect your own application\./);
  t.match(html, /<form method="post" action="\/_auth\/logout"><button type="submit">Sign out<\/button><\/form>/);

  const names = [...html.matchAll(/<th scope="row">([^<]*)<\/th>/g)].map((m) => m[1]);
  t.same(names, [
    'x-forwarded-user',
    'x-forwarded-email',
    'x-forwarded-groups',
    'accept',
    'host',
    'user-agent',
    'x-multi',
  ]);
  t.equal(html.match(/<tr class="identity">/g)?.length, 3, 'identity rows highlighted');
  t.match(html, /<th scope="row">x-forwarded-user<\/th><td>alice<\/td>/);
  t.match(html, /<th scope="row">x-multi<\/th><td>a, b<\/td>/, 'array values joined');
});

t.test('whoami shows missing identity headers as not set', async (t) => {
  const html = renderWhoamiPage({ method: 'GET', url: '/', headers: { host: 'h' }, logoutPath: '/_auth/logout' });
  t.match(html, /<tr class="identity"><th scope="row">x-forwarded-user<\/th><td><em>\(not set\)<\/em><\/td><\/tr>/);
});

t.test('whoami escapes every interpolated slot', async (t) => {
  const evil = HOSTILE.join(' ');
  const ok = { method: 'GET', url: '/', headers: {}, logoutPath: '/_auth/logout' };
  t.same(escapingProblems(renderWhoamiPage({ ...ok, method: evil })), [], 'whoami.method');
  t.same(escapingProblems(renderWhoamiPage({ ...ok, url: evil })), [], 'whoami.url');
  t.same(escapingProblems(renderWhoamiPage({ ...ok, logoutPath: evil })), [], 'whoami.logoutPath');
  t.same(escapingProblems(renderWhoamiPage({ ...ok, headers: { 'x-forwarded-user': evil } })), [], 'whoami.identity value');
  t.same(escapingProblems(renderWhoamiPage({ ...ok, headers: { 'x-other': [evil, 'b'] } })), [], 'whoami.header value');
  t.same(escapingProblems(renderWhoamiPage({ ...ok, headers: { [evil]: 'v' } })), [], 'whoami.header name');
});

t.test('style hash matches the stylesheet actually served', async (t) => {
  t.match(PAGE_STYLE_HASH, /^'sha256-[A-Za-z0-9+/]{43}='$/);
  t.equal(LOGIN_PAGE_STYLE_HASH, PAGE_STYLE_HASH);
  t.equal(ERROR_PAGE_STYLE_HASH, PAGE_STYLE_HASH);
  t.equal(WHOAMI_PAGE_STYLE_HASH, PAGE_STYLE_HASH);
  for (const [name, html] of Object.entries(pages())) {
    t.equal(html.match(/<style>/g)?.length, 1, `${name}: one style element`);
    t.equal(cspHash(styleOf(html)), PAGE_STYLE_HASH, `${name}: hash matches`);
    t.notMatch(styleOf(html), /<\/|url\(|@import/, `${name}: stylesheet loads nothing`);
  }
});

t.test('pages are self-contained: no scripts, no external assets', async (t) => {
  for (const [name, html] of Object.entries(pages())) {
    t.notMatch(html, /<script/i, `${name}: no script`);
    t.notMatch(html, /https?:\/\//i, `${name}: no absolute URLs`);
    t.notMatch(html, /\s(src|href|srcset|style|on[a-z]+)\s*=/i, `${name}: no asset refs, inline styles or handlers`);
    t.notMatch(html, /<(link|iframe|object|embed|img|base)\b/i, `${name}: no loading elements`);
    t.match(html, /^<!doctype html>\n<html lang="en">/, `${name}: standards mode, lang set`);
  }
});
