// Renders the second factor's enrolment page in headless Chromium and saves docs/mfa-setup.png for
// docs/second-factor.md. `npm run screenshot` builds first; this script then starts the real
// gateway from dist/ in its embedded demo mode with GATEWAY_MFA=required (no Redis, PostgreSQL or
// upstream needed) on a free 127.0.0.1 port, signs in as the demo user the way a user would, and
// photographs the enrolment page it lands on. The key and QR code are new on every run.
//   SCREENSHOT_OUT=path   where to write the PNG (default docs/mfa-setup.png)
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../dist/config/config.js';
import { createLogger } from '../../dist/logger.js';
import { startGateway } from '../../dist/server.js';
import { launchChromium } from '../../test/helpers/chromium.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = process.env.SCREENSHOT_OUT ?? join(root, 'docs', 'mfa-setup.png');

const config = loadConfig({
  GATEWAY_HOST: '127.0.0.1',
  GATEWAY_PORT: '0',
  GATEWAY_ADMIN_HOST: '127.0.0.1',
  GATEWAY_ADMIN_PORT: '0',
  GATEWAY_MFA: 'required',
  GATEWAY_MFA_ENCRYPTION_KEY: randomBytes(32).toString('base64url'),
  LOG_LEVEL: 'silent',
});
let announced = '';
const gateway = await startGateway(config, { logger: createLogger('silent'), announce: (text) => (announced += text) });
const password = /password \(shown once\):\s+(\S+)/.exec(announced)?.[1];
let browser;
try {
  if (!password) throw new Error('the demo password was not announced');
  browser = await launchChromium({ viewport: { width: 960, height: 1000 }, deviceScaleFactor: 1, colorScheme: 'light', javaScriptEnabled: false });
  const page = browser.context.pages()[0] ?? (await browser.context.newPage());
  await page.goto(`http://127.0.0.1:${gateway.proxyPort}/reports`);
  await page.getByLabel('Username').fill('demo');
  await page.getByLabel('Password').fill(password);
  await Promise.all([page.waitForEvent('load'), page.getByLabel('Password').press('Enter')]);
  if (!page.url().includes(`${config.authPrefix}/mfa/setup`)) throw new Error(`expected the enrolment page, got ${page.url()}`);
  await page.screenshot({ path: out, fullPage: true });
  process.stdout.write(`wrote ${out}\n`);
} finally {
  await browser?.close();
  await gateway.shutdown();
}
