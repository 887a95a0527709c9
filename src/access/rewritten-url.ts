// IIS's URL Rewrite and the frameworks that follow it (Zend Framework 1 and so Magento 1, old
// Symfony) route a request by the URL in its `X-Original-URL` or `X-Rewrite-URL` header, not by the
// request line. From anyone but a GATEWAY_TRUSTED_PROXIES peer those headers are removed
// (identity/headers.ts), but a load balancer in front passes its client's copies on, so from a
// trusted peer they reach the app. Each such URL is then another path the app may route by: the
// rules for it (the default included) must allow the request too (rules.ts), and a logout path
// there is a logout (gate.ts). One that cannot be normalised is refused: it cannot be authorised.
import type { IncomingHttpHeaders } from 'node:http';
import { normaliseHeaderName } from '../identity/headers.js';
import { normaliseRequestUrl } from './paths.js';

const REWRITE_HEADERS: ReadonlySet<string> = new Set(['x-original-url', 'x-rewrite-url']);

export type RewrittenPaths = { ok: true; paths: string[] } | { ok: false; reason: string };

const NONE: RewrittenPaths = Object.freeze({ ok: true, paths: [] }) as RewrittenPaths;

/** The normalised paths of the request's re-routing headers, in any spelling; none when it has none. */
export function rewrittenPaths(headers: IncomingHttpHeaders): RewrittenPaths {
  let paths: string[] | null = null;
  for (const name of Object.keys(headers)) {
    // Only names as long as the two are compared (every request from a trusted proxy walks here).
    if ((name.length !== 14 && name.length !== 13) || !REWRITE_HEADERS.has(normaliseHeaderName(name))) continue;
    const value = headers[name];
    for (const url of Array.isArray(value) ? value : [value ?? '']) {
      const normalised = normaliseRequestUrl(url.trim());
      if (!normalised.ok) return { ok: false, reason: `${name}: ${normalised.reason}` };
      (paths ??= []).push(normalised.path);
    }
  }
  return paths === null ? NONE : { ok: true, paths };
}
