// A passkey in a real browser (Debian's headless Chromium via playwright-core, JavaScript on) with
// Chromium's virtual authenticator (CDP WebAuthn.addVirtualAuthenticator), against a real gateway
// with real Redis and PostgreSQL: sign in with the password, register a passkey on the setup page
// (the recovery codes of a first factor shown once), sign out, sign in with the password again and
// complete the second step with the passkey, landing where the user was going. WebAuthn needs a
// secure context and an RP ID that is a name, not an IP address: the gateway's public URL is
// http://localhost:<port> (it still listens on 127.0.0.1 only).
/// <reference lib="dom" />
import t from 'tap';
import type { Page } from 'playwright-core';
import { escapeHtml } from '../../src/pages.js';
import { launchChromium, requireChromium } from '../helpers/chromium.mjs';
import { seedUsers, startTestGateway, uniquePrefix } from '../helpers/gateway.js';
import { freePort, services } from '../helpers/services.js';
import { startEchoUpstream } from '../helpers/upstream.js';

const PASSWORD = 'Alice-correct-horse-71';
const PROTECTED = '/reports/q?year=2026';

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

const port = await freePort();
const origin = `http://localhost:${port}`;
await startTestGateway(t, {
  REDIS_URL: redis.url,
  DATABASE_URL: db.url,
  GATEWAY_UPSTREAM: app.url,
  GATEWAY_PORT: String(port),
  GATEWAY_PUBLIC_URL: origin,
  GATEWAY_COOKIE_SECURE: 'false',
  GATEWAY_REDIS_PREFIX: uniquePrefix(),
  GATEWAY_MFA: 'optional',
  GATEWAY_MFA_ENCRYPTION_KEY: 'browser-passkey-key-0123456789-abcdefghijklmnopqrstuvwxyz',
});

async function signIn(page: Page): Promise<void> {
  await page.goto(`${origin}${PROTECTED}`);
  await page.getByLabel('Username').fill('alice');
  await page.getByLabel('Password').fill(PASSWORD);
  await Promise.all([page.waitForEvent('load'), page.getByLabel('Password').press('Enter')]);
}

t.test('register a passkey on the setup page, then sign in with it', async (t) => {
  const browser = await launchChromium({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
  t.teardown(() => browser.close());
  browser.context.setDefaultTimeout(15_000);
  const page = browser.context.pages()[0] ?? (await browser.context.newPage());
  const cspViolations: string[] = [];
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
  });
  const requests: string[] = [];
  page.on('request', (request) => requests.push(request.url()));

  // Chromium's virtual authenticator: a platform passkey that is always present and verified.
  const cdp = await browser.context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });

  // GATEWAY_MFA=optional and no factor yet: the password alone signs in.
  await signIn(page);
  t.equal(page.url(), `${origin}${PROTECTED}`);
  t.equal(await page.locator('#user').textContent(), 'alice');

  await page.goto(`${origin}/_auth/mfa/setup?rd=${encodeURIComponent(PROTECTED)}`);
  t.equal(await page.title(), 'Set up two-step verification');
  const add = page.getByRole('button', { name: 'Add a passkey' });
  t.ok(await add.isVisible(), 'the script shows the passkey button');
  await add.click();
  await page.getByRole('status').filter({ hasText: 'Passkey added' }).waitFor();
  t.equal(await page.title(), 'Save your recovery codes');
  const codes = await page.locator('#passkey-code-list code').allTextContents();
  t.equal(codes.length, 10, 'ten recovery codes shown once');
  t.notOk(await page.locator('#totp-key').isVisible(), 'the authenticator-app part is put away');
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  t.equal(credentials.length, 1, 'the authenticator holds one passkey');
  t.equal(credentials[0]?.rpId, 'localhost', 'for the RP ID of the public URL');
  await Promise.all([page.waitForEvent('load'), page.getByRole('link', { name: 'Continue' }).click()]);
  t.equal(page.url(), `${origin}${PROTECTED}`, 'back where the user was going');
  t.equal(await page.locator('#user').textContent(), 'alice');

  // Sign out; the next sign-in asks for the passkey after the password.
  await Promise.all([page.waitForURL(/logged_out=1/), page.getByRole('button', { name: 'Sign out' }).click()]);
  await signIn(page);
  t.equal(new URL(page.url()).pathname, '/_auth/mfa', 'the second step');
  t.equal(await page.title(), 'Two-step verification');
  t.ok(await page.getByLabel('Recovery code').isVisible(), 'a recovery code works too (no authenticator app)');
  await Promise.all([page.waitForURL(`${origin}${PROTECTED}`), page.getByRole('button', { name: 'Use a passkey' }).click()]);
  t.equal(await page.locator('#user').textContent(), 'alice', 'signed in with the passkey, back at the original URL');
  const session = await page.evaluate(async () => (await fetch('/_auth/session')).json() as Promise<{ amr: string[] }>);
  t.same(session.amr, ['pwd', 'hwk'], 'the session says how: password and a hardware key');
  const after = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  t.ok((after.credentials[0]?.signCount ?? 0) >= 1, 'the authenticator counted a signature');

  t.same(cspViolations, [], 'no Content-Security-Policy violation on any page');
  t.same(requests.filter((url) => !url.startsWith(origin)), [], 'nothing requested from anywhere else');
});
