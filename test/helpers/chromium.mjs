// Debian's headless Chromium driven by playwright-core, shared by the browser tests (TypeScript,
// typed by chromium.d.mts) and the screenshot script (plain Node, docs/tools/). Plain JavaScript so
// both can import it without a build step.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Nothing leaves the machine: no update checks, no sync, no QUIC, no first-run pages. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Throws one clear line when the browser is not installed (a browser test must not skip). */
export function requireChromium() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is missing: ${CHROMIUM} not found (apt-get install chromium; .ci/run installs it)`);
  }
}

/**
 * A fresh Chromium with its own temporary profile (no state shared between runs or tests).
 * `close()` ends the browser process and removes the profile.
 */
export async function launchChromium(contextOptions = {}) {
  requireChromium();
  const userDataDir = mkdtempSync(join(tmpdir(), 'sgw-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      ...contextOptions,
    });
  } catch (err) {
    rmSync(userDataDir, { recursive: true, force: true });
    throw err;
  }
  return {
    context,
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
