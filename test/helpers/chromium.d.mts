import type { BrowserContext, BrowserContextOptions } from 'playwright-core';

export declare const CHROMIUM: string;
export declare const CHROMIUM_ARGS: readonly string[];

export interface LaunchedChromium {
  context: BrowserContext;
  close(): Promise<void>;
}

export declare function requireChromium(): void;
/** `args` replaces CHROMIUM_ARGS (e.g. to add `--host-resolver-rules`). */
export declare function launchChromium(contextOptions?: BrowserContextOptions & { args?: string[] }): Promise<LaunchedChromium>;
