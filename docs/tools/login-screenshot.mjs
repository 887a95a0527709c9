// Renders the login page in headless Chromium and saves docs/login-page.png for docs/login-page.md.
// `npm run screenshot` builds first; this script then starts the real gateway from dist/ in its
// embedded demo mode (no Redis, PostgreSQL or upstream needed) on a free 127.0.0.1 port, opens a
// protected URL the way a user would, photographs the login page it lands on, and stops.
//   SCREENSHOT_OUT=path   where to write the PNG (default docs/login-page.png)
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../dist/config/config.js';
import { createLogger } from '../../dist/logger.js';
import { startGateway } from '../../dist/server.js';
import { launchChromium } from '../../test/helpers/chromium.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = process.env.SCREENSHOT_OUT ?? join(root, 'docs', 'login-page.png');

const config = loadConfig({
  GATEWAY_HOST: '127.0.0.1',
  GATEWAY_PORT: '0',
  GATEWAY_ADMIN_HOST: '127.0.0.1',
  GATEWAY_ADMIN_PORT: '0',
  LOG_LEVEL: 'silent',
});
// The demo password is announced on stderr by default; a screenshot has no use for it.
const gateway = await startGateway(config, { logger: createLogger('silent'), announce: () => undefined });
let browser;
try {
  // Desktop, light scheme, 1× pixels: a small, stable PNG.
  browser = await launchChromium({ viewport: { width: 960, height: 600 }, deviceScaleFactor: 1, colorScheme: 'light', javaScriptEnabled: false });
  const page = browser.context.pages()[0] ?? (await browser.context.newPage());
  await page.goto(`http://127.0.0.1:${gateway.proxyPort}/reports`);
  if (!page.url().includes(`${config.authPrefix}/login`)) throw new Error(`expected the login page, got ${page.url()}`);
  await page.screenshot({ path: out, fullPage: true });
  process.stdout.write(`wrote ${out}\n`);
} finally {
  await browser?.close();
  await gateway.shutdown();
}
