// Step-up in a real browser (Debian's headless Chromium via playwright-core), against a real gateway
// with real Redis and PostgreSQL: GATEWAY_MFA=optional and an access rule with `"mfa": true` on
// /admin. A session made with the password alone opens the rest of the app, but a navigation to
// /admin goes through the second step and comes back to the same URL, query and all; the app then
// sees the user and a signed identity token whose amr names the second factor. Three ways a
// password-only session meets the rule, as the API test (test/integration/mfa-step-up.test.ts)
// drives them: no factor yet (enrolment on the way, JavaScript off), TOTP set up on another device
// (a code, JavaScript off), and a passkey registered on another device and synced to this one (the
// passkey button, Chromium's virtual authenticator, JavaScript on). The public URL is
// http://localhost:<port> (WebAuthn needs a name as its RP ID); the gateway listens on 127.0.0.1.
/// <reference lib="dom" />
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { BrowserContext, Page } from 'playwright-core';
import { totpCode } from '../../src/mfa/totp.js';
import { escapeHtml } from '../../src/pages.js';
import { launchChromium, requireChromium } from '../helpers/chromium.mjs';
import { login, seedUsers, startTestGateway, uniquePrefix, withSession } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import { freePort, services } from '../helpers/services.js';
import { softPasskey } from '../helpers/soft-authenticator.js';
import { startEchoUpstream } from '../helpers/upstream.js';

const PASSWORD = 'Step-up-correct-horse-71';
const ADMIN = '/admin/page?x=1';
const ELSEWHERE = '/reports';
const STEP_MS = 30_000;
const WRONG_CODE = 'That code did not work. Check it and try again, or wait for the next one.';

requireChromium();
const { redis, pg: db } = await services(t);
await seedUsers(
  t,
  db.url,
  ['sam', 'tia', 'uma'].map((username) => ({ username, password: PASSWORD, email: `${username}@example.com` })),
);

/** The claims of the signed identity token (the app would check its HMAC; the page only shows amr). */
const claimsOf = (token: unknown) => JSON.parse(Buffer.from(String(token).split('.')[1] ?? '', 'base64url').toString()) as { amr?: string[] };

// The app: shows the path it was asked for, the user and the amr of the identity token.
const app = await startEchoUpstream((echo, res) => {
  const amr = echo.headers['x-gateway-identity'] === undefined ? '(no token)' : (claimsOf(echo.headers['x-gateway-identity']).amr ?? []).join(' ');
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><html lang="en"><head><title>App</title></head><body><h1>App</h1>
<p>Path <output id="path">${escapeHtml(echo.url)}</output></p>
<p>Signed in as <output id="user">${escapeHtml(String(echo.headers['x-forwarded-user'] ?? '(nobody)'))}</output></p>
<p>Signed in with <output id="amr">${escapeHtml(amr)}</output></p></body></html>`);
  return true;
});
t.teardown(() => app.close());

const dir = mkdtempSync(join(tmpdir(), 'sgw-stepup-browser-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const rules = join(dir, 'rules.yaml');
writeFileSync(rules, 'rules:\n  - { path: /admin, policy: authenticated, mfa: true }\n');

const port = await freePort();
const origin = `http://localhost:${port}`;
const gw = await startTestGateway(t, {
  REDIS_URL: redis.url,
  DATABASE_URL: db.url,
  GATEWAY_UPSTREAM: app.url,
  GATEWAY_PORT: String(port),
  GATEWAY_PUBLIC_URL: origin,
  GATEWAY_COOKIE_SECURE: 'false',
  GATEWAY_REDIS_PREFIX: uniquePrefix(),
  GATEWAY_MFA: 'optional',
  GATEWAY_MFA_ENCRYPTION_KEY: 'browser-step-up-key-0123456789-abcdefghijklmnopqrstuvwxyz',
  GATEWAY_ACCESS_RULES: rules,
  GATEWAY_IDENTITY_JWT: 'true',
  GATEWAY_IDENTITY_HMAC_SECRET: 'identity-hmac-0123456789-abcdefghijklmnopqrstuvwxyz',
});

/** What the helpers below use of a (sub)test. */
type Tap = Pick<typeof t, 'equal' | 'same' | 'teardown'>;

const json = { 'content-type': 'application/json', accept: 'application/json' };

interface Watched {
  page: Page;
  context: BrowserContext;
  /** Console messages about the Content-Security-Policy. */
  cspViolations: string[];
  /** Every URL the page requested. */
  requests: string[];
}

/** A fresh Chromium (its own profile, so no cookies) whose CSP messages and requests are kept. */
async function openBrowser(t: Tap, javaScriptEnabled: boolean): Promise<Watched> {
  const browser = await launchChromium({ javaScriptEnabled, viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
  t.teardown(() => browser.close());
  browser.context.setDefaultTimeout(15_000);
  const page = browser.context.pages()[0] ?? (await browser.context.newPage());
  const watched: Watched = { page, context: browser.context, cspViolations: [], requests: [] };
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) watched.cspViolations.push(message.text());
  });
  page.on('request', (request) => watched.requests.push(request.url()));
  return watched;
}

async function submit(page: Page, field: string, value: string): Promise<void> {
  await page.getByLabel(field).fill(value);
  await Promise.all([page.waitForEvent('load'), page.getByLabel(field).press('Enter')]);
}

/** Sign in with the password on the way to a page outside the rule: no second step is asked. */
async function signInWithPassword(t: Tap, page: Page, user: string): Promise<void> {
  await page.goto(`${origin}${ELSEWHERE}`);
  t.equal(new URL(page.url()).pathname, '/_auth/login', 'the login page');
  await page.getByLabel('Username').fill(user);
  await submit(page, 'Password', PASSWORD);
  t.equal(page.url(), `${origin}${ELSEWHERE}`, 'the password alone opens a page outside the rule');
  t.same(await appPage(page), { path: ELSEWHERE, user, amr: 'pwd' }, 'the app sees the user; the identity token says: password only');
}

/** What the app page shows: the path it was asked for, the user, the token's amr. */
async function appPage(page: Page): Promise<{ path: string | null; user: string | null; amr: string | null }> {
  return { path: await page.locator('#path').textContent(), user: await page.locator('#user').textContent(), amr: await page.locator('#amr').textContent() };
}

/** The browser's session as the gateway describes it (sent with the browser's own cookies). */
async function sessionOf(context: BrowserContext): Promise<{ user: string; amr: string[] }> {
  const res = await context.request.get(`${origin}/_auth/session`, { headers: { accept: 'application/json' } });
  return (await res.json()) as { user: string; amr: string[] };
}

/** Another device of the same user: a password sign-in through the JSON API (no factor yet). */
const otherDevice = (user: string) => login(gw, user, PASSWORD);

function noStrayRequests(t: Tap, watched: Watched): void {
  t.same(watched.cspViolations, [], 'no Content-Security-Policy violation on any page');
  t.same(
    watched.requests.filter((url) => !url.startsWith(origin)),
    [],
    'nothing requested from anywhere else',
  );
}

t.test('no factor yet, JavaScript off: the rule sends the session to enrolment, then back', async (t) => {
  const browser = await openBrowser(t, false);
  const { page } = browser;
  await signInWithPassword(t, page, 'sam');

  await page.goto(`${origin}${ADMIN}`);
  t.equal(new URL(page.url()).pathname, '/_auth/mfa/setup', 'the mfa rule sends a user without a factor to enrolment');
  t.equal(new URL(page.url()).searchParams.get('rd'), ADMIN, 'keeping the way back');
  t.equal(await page.title(), 'Set up two-step verification');
  const secret = ((await page.locator('#totp-key').textContent()) ?? '').replace(/ /g, '');
  t.match(secret, /^[A-Z2-7]{32}$/, 'the key is on the page');

  await submit(page, 'Code from the app', totpCode(secret, Date.now()));
  t.equal(await page.title(), 'Save your recovery codes');
  t.equal((await page.locator('ol.codes code').allTextContents()).length, 10, 'ten recovery codes shown once');
  await Promise.all([page.waitForEvent('load'), page.getByRole('link', { name: 'Continue' }).click()]);
  t.equal(page.url(), `${origin}${ADMIN}`, 'back at the URL the rule stopped, query and all');
  t.same(await appPage(page), { path: ADMIN, user: 'sam', amr: 'pwd otp' }, 'the app sees the user, and a token saying password and a code');
  t.same((await sessionOf(browser.context)).amr, ['pwd', 'otp'], '/_auth/session says the same');

  await page.goto(`${origin}${ELSEWHERE}`);
  t.same(await appPage(page), { path: ELSEWHERE, user: 'sam', amr: 'pwd otp' }, 'the rest of the app with the same session');
  noStrayRequests(t, browser);
});

t.test('TOTP set up on another device, JavaScript off: a password-only session steps up with a code', async (t) => {
  const browser = await openBrowser(t, false);
  const { page } = browser;
  // Signed in here before the factor existed: this session stays password-only.
  await signInWithPassword(t, page, 'tia');

  // The user enrols an authenticator app from another device (the JSON API).
  const other = await otherDevice('tia');
  const setup = await send(`${gw.url}/_auth/mfa/setup`, { headers: withSession(gw, other, json) });
  t.equal(setup.status, 200, 'the enrolment key, on the other device');
  const secret = new URL(setup.json<{ otpauth: string }>().otpauth).searchParams.get('secret') ?? '';
  const enrolled = await send(`${gw.url}/_auth/mfa/setup`, { method: 'POST', headers: withSession(gw, other, json), body: JSON.stringify({ code: totpCode(secret, Date.now()) }) });
  t.equal(enrolled.status, 200, 'enrolled there with a first code');

  await page.reload();
  t.same(await appPage(page), { path: ELSEWHERE, user: 'tia', amr: 'pwd' }, 'outside the rule, the password-only session still opens the app');

  await page.goto(`${origin}${ADMIN}`);
  t.equal(new URL(page.url()).pathname, '/_auth/mfa', 'the mfa rule sends the session to the second step');
  t.equal(new URL(page.url()).searchParams.get('rd'), ADMIN, 'keeping the way back');
  t.equal(await page.title(), 'Two-step verification');
  t.notOk(await page.getByRole('button', { name: 'Use a passkey' }).isVisible(), 'no passkey button: the user has none');
  await submit(page, 'Verification code', '000000');
  t.equal(await page.getByRole('alert').textContent(), WRONG_CODE, 'a wrong code: an alert, still the second step');
  t.equal(new URL(page.url()).pathname, '/_auth/mfa');
  // The next period's code: the enrolment used this one, and a code is good once.
  await submit(page, 'Verification code', totpCode(secret, Date.now() + STEP_MS));
  t.equal(page.url(), `${origin}${ADMIN}`, 'back at the URL the rule stopped, query and all');
  t.same(await appPage(page), { path: ADMIN, user: 'tia', amr: 'pwd otp' }, 'the app sees the user, and a token saying password and a code');
  t.match(await sessionOf(browser.context), { user: 'tia', amr: ['pwd', 'otp'] }, '/_auth/session says the same');
  noStrayRequests(t, browser);
});

t.test('a passkey synced from another device, JavaScript on: the session steps up with it', async (t) => {
  const browser = await openBrowser(t, true);
  const { page } = browser;
  const cdp = await browser.context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });
  await signInWithPassword(t, page, 'uma');

  // The user registers a passkey on another device (the JSON ceremony with a software passkey)...
  const other = await otherDevice('uma');
  const key = softPasskey(origin);
  const options = await send(`${gw.url}/_auth/mfa/webauthn/register/options`, { method: 'POST', headers: withSession(gw, other, json), body: '{}' });
  t.equal(options.status, 200, 'registration options, on the other device');
  const registered = await send(`${gw.url}/_auth/mfa/webauthn/register`, {
    method: 'POST',
    headers: withSession(gw, other, json),
    body: JSON.stringify({ credential: key.register(options.json<{ challenge: string }>()) }),
  });
  t.equal(registered.status, 200, 'the passkey registered there');
  // ...and the passkey provider syncs it to this browser.
  await cdp.send('WebAuthn.addCredential', {
    authenticatorId,
    credential: {
      credentialId: Buffer.from(key.credentialId, 'base64url').toString('base64'),
      isResidentCredential: false,
      rpId: 'localhost',
      privateKey: key.privateKeyPkcs8().toString('base64'),
      signCount: key.counter,
    },
  });

  await page.goto(`${origin}${ELSEWHERE}`);
  t.same(await appPage(page), { path: ELSEWHERE, user: 'uma', amr: 'pwd' }, 'outside the rule, the password-only session still opens the app');

  await page.goto(`${origin}${ADMIN}`);
  t.equal(new URL(page.url()).pathname, '/_auth/mfa', 'the mfa rule sends the session to the second step');
  t.equal(await page.title(), 'Two-step verification');
  t.ok(await page.getByLabel('Recovery code').isVisible(), 'a recovery code would do too');
  await Promise.all([page.waitForURL(`${origin}${ADMIN}`), page.getByRole('button', { name: 'Use a passkey' }).click()]);
  t.same(await appPage(page), { path: ADMIN, user: 'uma', amr: 'pwd hwk' }, 'back at the URL; the app sees the user, and a token saying password and a hardware key');
  const session = await page.evaluate(async () => (await fetch('/_auth/session')).json() as Promise<{ amr: string[] }>);
  t.same(session.amr, ['pwd', 'hwk'], '/_auth/session says the same');
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  t.ok((credentials[0]?.signCount ?? 0) > key.counter, 'the synced passkey signed');
  noStrayRequests(t, browser);
});
