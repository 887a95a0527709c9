// The second factor in a real browser (Debian's headless Chromium via playwright-core) with
// JavaScript switched off, against a real gateway with real Redis and PostgreSQL: a user who must
// enrol signs in with the password, scans nothing but reads the key from the page, confirms with a
// first code, sees the recovery codes once, and lands where they were going; the next sign-in asks
// for a code, then a recovery code. Codes are computed from the key on the page with the same
// library an authenticator app would use.
/// <reference lib="dom" />
import t from 'tap';
import type { Page } from 'playwright-core';
import { totpCode } from '../../src/mfa/totp.js';
import { escapeHtml } from '../../src/pages.js';
import { launchChromium, requireChromium } from '../helpers/chromium.mjs';
import { seedUsers, startTestGateway, uniquePrefix } from '../helpers/gateway.js';
import { services } from '../helpers/services.js';
import { startEchoUpstream } from '../helpers/upstream.js';

const PASSWORD = 'Alice-correct-horse-71';
const PROTECTED = '/reports/q?year=2026';
const STEP_MS = 30_000;

requireChromium();
const { redis, pg: db } = await services(t);
await seedUsers(t, db.url, [{ username: 'alice', password: PASSWORD, email: 'alice@example.com' }]);
const app = await startEchoUpstream((echo, res) => {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><html lang="en"><head><title>Reports</title></head><body><h1>Reports</h1>
<p>Signed in as <output id="user">${escapeHtml(String(echo.headers['x-forwarded-user'] ?? '(nobody)'))}</output></p>
<form method="post" action="/_auth/logout"><button type="submit">Sign out</button></form></body></html>`);
  return true;
});
t.teardown(() => app.close());
const gw = await startTestGateway(t, {
  REDIS_URL: redis.url,
  DATABASE_URL: db.url,
  GATEWAY_UPSTREAM: app.url,
  GATEWAY_COOKIE_SECURE: 'false',
  GATEWAY_REDIS_PREFIX: uniquePrefix(),
  GATEWAY_MFA: 'required',
  GATEWAY_MFA_ENCRYPTION_KEY: 'browser-test-key-0123456789-abcdefghijklmnopqrstuvwxyz',
});

async function submit(page: Page, field: string, value: string): Promise<void> {
  await page.getByLabel(field).fill(value);
  await Promise.all([page.waitForEvent('load'), page.getByLabel(field).press('Enter')]);
}

t.test('enrol TOTP and sign in with a code, JavaScript off', async (t) => {
  const browser = await launchChromium({ javaScriptEnabled: false, viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
  t.teardown(() => browser.close());
  browser.context.setDefaultTimeout(10_000);
  const page = browser.context.pages()[0] ?? (await browser.context.newPage());
  const cspViolations: string[] = [];
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
  });
  const requests: string[] = [];
  page.on('request', (request) => requests.push(request.url()));

  await page.goto(`${gw.url}${PROTECTED}`);
  await page.getByLabel('Username').fill('alice');
  await submit(page, 'Password', PASSWORD);

  // GATEWAY_MFA=required and no factor yet: straight to enrolment.
  t.equal(new URL(page.url()).pathname, '/_auth/mfa/setup', 'sent to enrolment after the password');
  t.equal(await page.title(), 'Set up two-step verification');
  const qr = page.getByRole('img', { name: 'QR code to add alice to an authenticator app' });
  t.equal(await qr.evaluate((e) => e.tagName.toLowerCase()), 'svg', 'the QR code is inline SVG');
  t.ok(((await qr.boundingBox())?.width ?? 0) >= 200, 'drawn at a scannable size');
  const key = (await page.locator('#totp-key').textContent()) ?? '';
  t.match(key, /^([A-Z2-7]{4} ){7}[A-Z2-7]{4}$/, 'the key in groups of four');
  const link = (await page.getByRole('link', { name: 'Open in an authenticator app on this device' }).getAttribute('href')) ?? '';
  t.equal(new URL(link).searchParams.get('secret'), key.replace(/ /g, ''), 'the otpauth:// link carries the same key');
  t.equal(await page.getByLabel('Code from the app').getAttribute('autocomplete'), 'one-time-code');
  const secret = key.replace(/ /g, '');

  // A wrong first code: an alert, the same key still shown.
  await submit(page, 'Code from the app', '000000');
  t.equal(await page.getByRole('alert').textContent(), 'That code did not work. Check it and try again, or wait for the next one.');
  t.equal((await page.locator('#totp-key').textContent()) ?? '', key, 'the same key after a wrong code');

  await submit(page, 'Code from the app', totpCode(secret, Date.now()));
  t.equal(await page.title(), 'Save your recovery codes');
  const codes = await page.locator('ol.codes code').allTextContents();
  t.equal(codes.length, 10, 'ten recovery codes shown');
  await Promise.all([page.waitForEvent('load'), page.getByRole('link', { name: 'Continue' }).click()]);
  t.equal(page.url(), `${gw.url}${PROTECTED}`, 'back at the original URL');
  t.equal(await page.locator('#user').textContent(), 'alice', 'signed in');

  // Sign out; the next sign-in asks for a code after the password.
  await Promise.all([page.waitForURL(/logged_out=1/), page.getByRole('button', { name: 'Sign out' }).click()]);
  await page.goto(`${gw.url}${PROTECTED}`);
  await page.getByLabel('Username').fill('alice');
  await submit(page, 'Password', PASSWORD);
  t.equal(new URL(page.url()).pathname, '/_auth/mfa', 'the code step');
  t.equal(await page.title(), 'Two-step verification');
  t.match(await page.locator('main').ariaSnapshot(), 'textbox "Verification code"');
  await page.goto(`${gw.url}/elsewhere`);
  t.equal(new URL(page.url()).pathname, '/_auth/login', 'half signed in, the app still asks for a login');
  await page.goBack();
  await submit(page, 'Verification code', '111111');
  t.equal(await page.getByRole('alert').textContent(), 'That code did not work. Check it and try again, or wait for the next one.');
  await submit(page, 'Verification code', totpCode(secret, Date.now() + STEP_MS));
  t.equal(page.url(), `${gw.url}${PROTECTED}`, 'signed in with a code, back at the original URL');
  t.equal(await page.locator('#user').textContent(), 'alice');

  // And once with a recovery code.
  await Promise.all([page.waitForURL(/logged_out=1/), page.getByRole('button', { name: 'Sign out' }).click()]);
  await page.goto(`${gw.url}${PROTECTED}`);
  await page.getByLabel('Username').fill('alice');
  await submit(page, 'Password', PASSWORD);
  await submit(page, 'Verification code', codes[0] ?? '');
  t.equal(await page.locator('#user').textContent(), 'alice', 'signed in with a recovery code');

  t.same(cspViolations, [], 'no Content-Security-Policy violation on any page');
  t.same(requests.filter((url) => !url.startsWith(gw.url)), [], 'nothing requested from anywhere else');
});
