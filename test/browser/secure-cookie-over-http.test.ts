// Issue 14 §3.1 in a real browser: a staging host served over plain http with Redis configured,
// so cookies are Secure by default. Chromium drops the Secure pre-login cookie on http:// (host
// names other than localhost), and the sign-in used to say only "The sign-in form expired". The
// host name is mapped to 127.0.0.1 inside Chromium: no traffic leaves the machine.
import t from 'tap';
import { CHROMIUM_ARGS, launchChromium, requireChromium } from '../helpers/chromium.mjs';
import { seedUsers, startTestGateway, uniquePrefix, type TestGateway } from '../helpers/gateway.js';
import { services } from '../helpers/services.js';
import { startEchoUpstream } from '../helpers/upstream.js';

const HOST = 'staging.test';
const PASSWORD = 'Stage-correct-horse-72';

requireChromium();
const { redis, pg: db } = await services(t);
await seedUsers(t, db.url, [{ username: 'sam', password: PASSWORD }]);
const app = await startEchoUpstream();
t.teardown(() => app.close());
const gateway = (extra: Record<string, string> = {}) =>
  startTestGateway(t, { REDIS_URL: redis.url, DATABASE_URL: db.url, GATEWAY_UPSTREAM: app.url, GATEWAY_REDIS_PREFIX: uniquePrefix(), ...extra });

/** Signs in on http://staging.test:<port>/ and returns the page's alert text (null: no alert, signed in). */
async function signInOnStagingHost(t: { teardown(fn: () => unknown): void }, gw: TestGateway): Promise<{ alert: string | null; url: string }> {
  const browser = await launchChromium({ args: [...CHROMIUM_ARGS, `--host-resolver-rules=MAP ${HOST} 127.0.0.1`] });
  t.teardown(() => browser.close());
  browser.context.setDefaultTimeout(10_000);
  const page = browser.context.pages()[0] ?? (await browser.context.newPage());
  await page.goto(`http://${HOST}:${new URL(gw.url).port}/`);
  await page.getByLabel('Username').fill('sam');
  await page.getByLabel('Password').fill(PASSWORD);
  await Promise.all([page.waitForEvent('load'), page.getByLabel('Password').press('Enter')]);
  const alert = page.getByRole('alert');
  return { alert: (await alert.count()) > 0 ? await alert.textContent() : null, url: page.url() };
}

t.test('Secure cookies on a plain-http staging host: the page names the cause and both fixes', async (t) => {
  const gw = await gateway();
  const { alert } = await signInOnStagingHost(t, gw);
  t.match(alert ?? '', /plain http/, 'the page says why');
  t.match(alert ?? '', /GATEWAY_PUBLIC_URL=https:\/\//, 'and names https');
  t.match(alert ?? '', /GATEWAY_COOKIE_SECURE=false/, 'and the plain-http switch');
  t.ok(gw.logs.some((line) => line.includes('csrf_cookie_missing') && line.includes('GATEWAY_COOKIE_SECURE=false')), 'the log names it too');
});

t.test('the fix the page names works: GATEWAY_COOKIE_SECURE=false signs in on the same host', async (t) => {
  const gw = await gateway({ GATEWAY_COOKIE_SECURE: 'false' });
  const { alert, url } = await signInOnStagingHost(t, gw);
  t.equal(alert, null, 'no error');
  t.equal(new URL(url).pathname, '/', 'back on the app');
});
