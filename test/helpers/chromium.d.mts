import type { BrowserContext, BrowserContextOptions } from 'playwright-core';

export declare const CHROMIUM: string;
export declare const CHROMIUM_ARGS: readonly string[];

export interface LaunchedChromium {
  context: BrowserContext;
  close(): Promise<void>;
}

export declare function requireChromium(): void;
export declare function launchChromium(contextOptions?: BrowserContextOptions): Promise<LaunchedChromium>;
