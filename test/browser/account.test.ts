// Self-service in a real browser (Debian's headless Chromium via playwright-core) with JavaScript
// switched off, against a real gateway on real Redis and PostgreSQL: change the password through the
// form, then see where one is signed in and end another session, which stops working at once.
// `ACCOUNT_SCREENSHOT=docs/account-sessions.png npx tap test/browser/account.test.ts` redraws the
// sessions page's picture in the docs.
import t from 'tap';
import type { Page } from 'playwright-core';
import { launchChromium, requireChromium } from '../helpers/chromium.mjs';
import { seedUsers, startTestGateway, uniquePrefix, withSession } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import { services } from '../helpers/services.js';
import { startEchoUpstream } from '../helpers/upstream.js';

const OLD = 'Alice-correct-horse-71';
const NEW = 'purple tractor mango 42';
const CURL = 'curl/8.11.0';

requireChromium();
const { redis, pg: db } = await services(t);
await seedUsers(t, db.url, [{ username: 'alice', password: OLD, email: 'alice@example.com' }]);
const upstream = await startEchoUpstream();
t.teardown(() => upstream.close());
const gw = await startTestGateway(t, {
  REDIS_URL: redis.url,
  DATABASE_URL: db.url,
  GATEWAY_UPSTREAM: upstream.url,
  GATEWAY_COOKIE_SECURE: 'false',
  GATEWAY_REDIS_PREFIX: uniquePrefix(),
});

const browser = await launchChromium({ javaScriptEnabled: false, viewport: { width: 1000, height: 640 }, colorScheme: 'light' });
t.teardown(() => browser.close());
browser.context.setDefaultTimeout(10_000);
const page: Page = browser.context.pages()[0] ?? (await browser.context.newPage());
const cspViolations: string[] = [];
page.on('console', (message) => {
  if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
});

/** Another device: a script's session (JSON sign-in), to be seen and ended from the browser. */
async function scriptSession(password: string): Promise<string> {
  const res = await send(`${gw.url}/_auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': CURL }, body: JSON.stringify({ username: 'alice', password }) });
  const cookie = res.cookies[gw.config.cookieName];
  if (res.status !== 200 || !cookie) throw new Error(`script sign-in: ${res.status} ${res.body}`);
  return cookie;
}
const scriptCanReach = async (cookie: string) => (await send(`${gw.url}/app`, { headers: withSession(gw, cookie, { accept: 'application/json' }) })).status === 200;

async function submit(page: Page, button: string): Promise<void> {
  await Promise.all([page.waitForEvent('load'), page.getByRole('button', { name: button, exact: true }).click()]);
}

t.test('sign in, then change the password with the form', async (t) => {
  const script = await scriptSession(OLD);
  // Straight to the account page: the gateway sends the browser through sign-in and back.
  await page.goto(`${gw.url}/_auth/account/password`);
  t.match(new URL(page.url()).pathname, '/_auth/login');
  await page.getByLabel('Username').fill('alice');
  await page.getByLabel('Password').fill(OLD);
  await submit(page, 'Sign in');
  t.equal(new URL(page.url()).pathname, '/_auth/account/password', 'back on the account page after sign-in');

  t.ok(await scriptCanReach(script), 'the other session works before');

  await page.getByLabel('Current password').fill(OLD);
  await page.getByLabel('New password', { exact: true }).fill(NEW);
  await page.getByLabel('New password again').fill(NEW);
  await submit(page, 'Change password');
  t.match(await page.getByRole('status').textContent(), /password was changed/);
  t.notOk(await scriptCanReach(script), 'the other session was signed out');
  await page.goto(`${gw.url}/app`);
  t.equal(new URL(page.url()).pathname, '/app', 'this browser is still signed in');

  const oldRefused = await send(`${gw.url}/_auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', password: OLD }) });
  t.equal(oldRefused.status, 401, 'the old password is refused');
  t.same(cspViolations, [], 'no CSP violations');
});

t.test('see where one is signed in and end another session', async (t) => {
  const script = await scriptSession(NEW);
  t.ok(await scriptCanReach(script));
  await page.goto(`${gw.url}/_auth/account/sessions`);
  const rows = page.locator('tbody tr');
  t.equal(await rows.count(), 2, 'this browser and the script');
  const current = rows.filter({ hasText: 'This session' });
  t.match(await current.locator('th').textContent(), /^Chrome on Linux$/);
  const other = rows.filter({ hasText: 'curl' });
  t.equal(await other.count(), 1, 'the script is listed as curl');
  if (process.env.ACCOUNT_SCREENSHOT) await page.screenshot({ path: process.env.ACCOUNT_SCREENSHOT, fullPage: true });

  await Promise.all([page.waitForEvent('load'), other.getByRole('button', { name: /^Sign out curl/ }).click()]);
  t.match(await page.getByRole('status').textContent(), /One session was signed out/);
  t.equal(await page.locator('tbody tr').count(), 1, 'only this session is left');
  t.notOk(await scriptCanReach(script), 'the script is refused at once');
  t.same(cspViolations, [], 'no CSP violations');
});
