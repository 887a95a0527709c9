// The login page in a real browser (Debian's headless Chromium via playwright-core), against a real
// gateway with real Redis and PostgreSQL: the whole sign-in journey with JavaScript switched off,
// keyboard only, on a phone-sized screen, after an idle timeout, and with operator branding.
// Every page is also checked for Content-Security-Policy violations: a style the CSP refused would
// leave the page unstyled without failing anything else.
// The callbacks given to evaluate() run in the page, so this file is typed with the DOM too.
/// <reference lib="dom" />
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { BrowserContextOptions, Page } from 'playwright-core';
import { escapeHtml } from '../../src/pages.js';
import { launchChromium, requireChromium } from '../helpers/chromium.mjs';
import { seedUsers, startTestGateway, uniquePrefix, type TestGateway } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import { services, sleep } from '../helpers/services.js';
import { startEchoUpstream } from '../helpers/upstream.js';

const PASSWORD = 'Alice-correct-horse-71';
const PROTECTED = '/reports/q?year=2026&tag=a%20b';
const TITLE = 'Sign in to Example Corp';

requireChromium();
const { redis, pg: db } = await services(t);
await seedUsers(t, db.url, [{ username: 'alice', password: PASSWORD, email: 'alice@example.com' }]);

// The protected app: a tiny HTML page showing who the gateway says is signed in, and a sign-out button.
const app = await startEchoUpstream((echo, res) => {
  const user = echo.headers['x-forwarded-user'];
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><html lang="en"><head><title>Reports</title></head><body>
<h1>Reports</h1><p>Signed in as <output id="user">${escapeHtml(String(user ?? '(nobody)'))}</output></p>
<p>Request <code id="url">${escapeHtml(echo.url)}</code></p>
<form method="post" action="/_auth/logout"><button type="submit">Sign out</button></form></body></html>`);
  return true;
});
t.teardown(() => app.close());

const gatewayEnv = (extra: Record<string, string> = {}) => ({
  REDIS_URL: redis.url,
  DATABASE_URL: db.url,
  GATEWAY_UPSTREAM: app.url,
  GATEWAY_COOKIE_SECURE: 'false',
  GATEWAY_REDIS_PREFIX: uniquePrefix(),
  GATEWAY_LOGIN_TITLE: TITLE,
  ...extra,
});
const gw = await startTestGateway(t, gatewayEnv());

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** A fresh browser for one subtest, closed (and its profile removed) when the subtest ends. */
async function browse(t: Teardown, options: BrowserContextOptions): Promise<{ page: Page; cspViolations: string[] }> {
  const browser = await launchChromium(options);
  t.teardown(() => browser.close());
  // Well under tap's per-file timeout, so a missing element fails its own assertion.
  browser.context.setDefaultTimeout(10_000);
  const page = browser.context.pages()[0] ?? (await browser.context.newPage());
  const cspViolations: string[] = [];
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
  });
  return { page, cspViolations };
}

const focusedId = (page: Page) => page.evaluate(() => document.activeElement?.id ?? document.activeElement?.tagName ?? '');
const loginUrl = (g: TestGateway) => `${g.url}${g.config.authPrefix}/login`;

async function signIn(page: Page, username: string, password: string): Promise<void> {
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  // Enter in the password field submits, as users do; wait for the page it leads to.
  await Promise.all([page.waitForEvent('load'), page.getByLabel('Password').press('Enter')]);
}

t.test('the whole journey with JavaScript switched off', async (t) => {
  const { page, cspViolations } = await browse(t, { javaScriptEnabled: false, viewport: { width: 1280, height: 800 }, colorScheme: 'light' });

  // A protected URL sends the browser to the login page, remembering where it was going.
  await page.goto(`${gw.url}${PROTECTED}`);
  t.equal(page.url(), `${loginUrl(gw)}?rd=${encodeURIComponent(PROTECTED)}`, 'landed on the login page');
  t.equal(await page.title(), TITLE);
  t.equal(await page.locator('html').getAttribute('lang'), 'en');
  t.equal(await focusedId(page), 'username', 'the username field has the focus');
  const fresh = await page.locator('main').ariaSnapshot();
  t.match(fresh, `heading "${TITLE}" [level=1]`);
  t.match(fresh, 'textbox "Username"', 'the label names the username field');
  t.match(fresh, 'textbox "Password"', 'the label names the password field');
  t.match(fresh, 'button "Sign in"');
  t.equal(await page.getByLabel('Username').getAttribute('autocomplete'), 'username');
  t.equal(await page.getByLabel('Password').getAttribute('autocomplete'), 'current-password');
  // The hashed stylesheet really applied (a refused one would leave the default grey button).
  t.equal(await page.getByRole('button', { name: 'Sign in' }).evaluate((b) => getComputedStyle(b).backgroundColor), 'rgb(11, 87, 208)');

  // A wrong password: the error is an alert, leads the title, and describes the focused field.
  await signIn(page, 'alice', 'not-the-password');
  t.equal(await page.getByRole('alert').textContent(), 'Invalid username or password.');
  t.match(await page.title(), /^Error: Invalid username or password\. – /);
  t.equal(await focusedId(page), 'password', 'focus is on the password, the field to retype');
  t.equal(await page.getByLabel('Username').inputValue(), 'alice', 'username kept');
  t.equal(await page.getByLabel('Password').inputValue(), '', 'password not echoed back');
  const failed = await page.locator('main').ariaSnapshot();
  t.match(failed, 'alert: Invalid username or password.');
  t.equal(await page.getByLabel('Password').getAttribute('aria-invalid'), 'true');
  const describedBy = (await page.getByLabel('Password').getAttribute('aria-describedby')) ?? '';
  t.equal(await page.locator(`#${describedBy}`).textContent(), 'Invalid username or password.', 'the field points at the message');

  // The right password: straight back to the original URL, signed in.
  await signIn(page, 'alice', PASSWORD);
  t.equal(page.url(), `${gw.url}${PROTECTED}`, 'back at the original URL');
  t.equal(await page.locator('#user').textContent(), 'alice', 'the app received X-Forwarded-User');
  t.equal(await page.locator('#url').textContent(), PROTECTED);

  await page.reload();
  t.equal(await page.locator('#user').textContent(), 'alice', 'a reload stays signed in');

  // Signing out lands on the login page with an announced message.
  await Promise.all([page.waitForURL(/logged_out=1/), page.getByRole('button', { name: 'Sign out' }).click()]);
  t.equal(page.url(), `${loginUrl(gw)}?logged_out=1`);
  t.equal(await page.getByRole('status').textContent(), 'You have been signed out.');
  t.equal(await page.getByLabel('Username').getAttribute('aria-describedby'), 'login-notice', 'the focused field carries the message');
  t.equal(await focusedId(page), 'username');

  await page.goto(`${gw.url}${PROTECTED}`);
  t.equal(page.url(), `${loginUrl(gw)}?rd=${encodeURIComponent(PROTECTED)}`, 'signed out: the protected URL asks for a login again');
  t.same(cspViolations, [], 'no Content-Security-Policy violation on any page');
});

t.test('keyboard only: Tab order and Enter', async (t) => {
  const { page } = await browse(t, { javaScriptEnabled: false, viewport: { width: 1280, height: 800 } });
  await page.goto(`${gw.url}/keyboard`);
  t.equal(await focusedId(page), 'username');
  await page.keyboard.type('alice');
  await page.keyboard.press('Tab');
  t.equal(await focusedId(page), 'password', 'Tab: username → password');
  // The focus ring is drawn for keyboard focus (3px solid, not the browser's thin default).
  t.same(await page.locator('#password').evaluate((e) => [getComputedStyle(e).outlineStyle, getComputedStyle(e).outlineWidth]), ['solid', '3px']);
  await page.keyboard.press('Tab');
  t.equal(await page.evaluate(() => document.activeElement?.textContent), 'Sign in', 'Tab: password → the Sign in button');
  t.same(await page.getByRole('button', { name: 'Sign in' }).evaluate((e) => getComputedStyle(e).outlineStyle), 'solid', 'the button shows its focus');
  await page.keyboard.press('Shift+Tab');
  t.equal(await focusedId(page), 'password', 'Shift+Tab goes back');
  await page.keyboard.type(PASSWORD);
  await Promise.all([page.waitForURL(`${gw.url}/keyboard`), page.keyboard.press('Enter')]);
  t.equal(await page.locator('#user').textContent(), 'alice', 'Enter submitted the form');
});

t.test('a phone-sized screen', async (t) => {
  const { page, cspViolations } = await browse(t, { javaScriptEnabled: false, viewport: { width: 360, height: 740 }, deviceScaleFactor: 3, isMobile: true, hasTouch: true });
  await page.goto(`${gw.url}/mobile`);
  const layout = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    clientWidth: document.documentElement.clientWidth,
    mainRight: document.querySelector('main')?.getBoundingClientRect().right ?? Infinity,
  }));
  t.equal(layout.clientWidth, 360, 'the viewport meta makes the layout phone-wide, not 980px');
  t.ok(layout.scrollWidth <= layout.clientWidth, `no sideways scrolling (${layout.scrollWidth} ≤ ${layout.clientWidth})`);
  t.ok(layout.mainRight <= 360, 'the form fits the screen');
  for (const target of [page.getByLabel('Username'), page.getByLabel('Password'), page.getByRole('button', { name: 'Sign in' })]) {
    const box = await target.boundingBox();
    t.ok(box && box.height >= 44, `touch target at least 44px high (${box?.height})`);
  }
  // Below 16px, iOS zooms into a focused field.
  t.equal(await page.getByLabel('Password').evaluate((e) => getComputedStyle(e).fontSize), '16px');
  await page.getByLabel('Username').fill('alice');
  await page.getByLabel('Password').fill(PASSWORD);
  await Promise.all([page.waitForURL(`${gw.url}/mobile`), page.getByRole('button', { name: 'Sign in' }).tap()]);
  t.equal(await page.locator('#user').textContent(), 'alice', 'signed in with a tap');
  t.same(cspViolations, []);
});

t.test('an idle session sends the user to the login page with the reason', async (t) => {
  const idle = await startTestGateway(t, gatewayEnv({ GATEWAY_SESSION_IDLE_TIMEOUT: '1s' }));
  const { page } = await browse(t, { javaScriptEnabled: false });
  await page.goto(`${idle.url}/work`);
  await signIn(page, 'alice', PASSWORD);
  t.equal(await page.locator('#user').textContent(), 'alice');
  await sleep(2_500);
  await page.goto(`${idle.url}/work?step=2`);
  t.equal(page.url(), `${loginUrl(idle)}?rd=${encodeURIComponent('/work?step=2')}&expired=1`);
  t.equal(await page.getByRole('status').textContent(), 'Your session has expired. Please sign in again.');
  await signIn(page, 'alice', PASSWORD);
  t.equal(page.url(), `${idle.url}/work?step=2`, 'and back where they were after signing in again');

  // Only a session that timed out says so: no cookie, or one that never named a session, does not.
  for (const cookie of [undefined, 'sgw_session=forged.value']) {
    const res = await send(`${idle.url}/work`, { headers: { accept: 'text/html', ...(cookie ? { cookie } : {}) } });
    t.equal(res.headers.location, `${idle.config.authPrefix}/login?rd=%2Fwork`, `cookie ${cookie ?? '(none)'}: no expired notice`);
  }
});

t.test('a branded page: template, logo and CSS under the strict CSP', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-brand-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const logo = join(dir, 'logo.svg');
  writeFileSync(logo, '<svg xmlns="http://www.w3.org/2000/svg" width="160" height="40"><rect width="160" height="40" rx="6" fill="#7a1fa2"/></svg>');
  const css = join(dir, 'brand.css');
  writeFileSync(css, ':root{--accent:#7a1fa2}\r\n.brand{border-bottom:4px solid var(--accent)}\r\n');
  const template = join(dir, 'login.html');
  writeFileSync(
    template,
    `<!doctype html>
<html lang="de">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{{document_title}}</title>{{styles}}</head>
<body><main><header class="brand">{{logo}}</header><h1>{{title}}</h1>{{notice}}{{error}}{{form}}<p>Example Corp IT</p></main></body>
</html>
`,
  );
  const branded = await startTestGateway(t, gatewayEnv({ GATEWAY_LOGIN_TEMPLATE_FILE: template, GATEWAY_LOGIN_LOGO_FILE: logo, GATEWAY_LOGIN_LOGO_ALT: 'Example Corp', GATEWAY_LOGIN_CSS_FILE: css }));
  const { page, cspViolations } = await browse(t, { javaScriptEnabled: false });
  const response = await page.goto(`${branded.url}/branded`);
  const csp = (await response?.headerValue('content-security-policy')) ?? '';
  t.match(csp, /^default-src 'none'; style-src 'sha256-[^']+' 'sha256-[^']+'; img-src data:; /, 'two hashed styles and data: images, nothing else');
  t.equal(await page.locator('html').getAttribute('lang'), 'de', 'the template owns the document');
  t.equal(await page.locator('footer, p').last().textContent(), 'Example Corp IT');
  const image = page.getByRole('img', { name: 'Example Corp' });
  t.equal(await image.evaluate((img) => (img as HTMLImageElement).naturalWidth), 160, 'the logo loaded');
  t.equal(await page.getByRole('button', { name: 'Sign in' }).evaluate((b) => getComputedStyle(b).backgroundColor), 'rgb(122, 31, 162)', 'the operator CSS overrides the accent');
  t.equal(await page.locator('.brand').evaluate((e) => getComputedStyle(e).borderBottomWidth), '4px');
  await signIn(page, 'alice', 'wrong-password');
  t.equal(await page.getByRole('alert').textContent(), 'Invalid username or password.', 'errors show in the template');
  await signIn(page, 'alice', PASSWORD);
  t.equal(await page.locator('#user').textContent(), 'alice', 'and the template form signs in');
  t.same(cspViolations, [], 'no CSP violation: every style and the logo were allowed');
});
