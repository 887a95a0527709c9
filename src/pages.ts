/**
 * Self-contained HTML pages served by the gateway itself (login, errors, the
 * built-in demo upstream). Pure string functions: no I/O, no framework.
 *
 * Every page carries one inline stylesheet and nothing else — no scripts, no
 * external assets — so it can be served under a CSP as strict as
 * `default-src 'none'; style-src '<PAGE_STYLE_HASH>'`.
 */
import { createHash } from 'node:crypto';

const ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escapes text for both element content and quoted attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

/**
 * The single stylesheet shared by all pages. It is inserted verbatim between
 * `<style>` and `</style>`: the CSP hash covers these exact bytes, so any
 * transformation (trimming, minifying) would make browsers drop the style.
 */
export const PAGE_STYLE = `
:root{color-scheme:light dark;--bg:#f3f4f6;--fg:#1f2328;--muted:#59636e;--card:#fff;--line:#d0d7de;--accent:#0b57d0;--on-accent:#fff;--err:#b42318;--err-bg:#fef3f2;--hl:#fff8c5;--field:#6e7781}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;--card:#161b22;--line:#3d444d;--accent:#4493f8;--on-accent:#0d1117;--err:#ffa198;--err-bg:#2d1517;--hl:#2f2a10;--field:#8b949e}}
*{box-sizing:border-box}
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;padding:1rem;background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{width:100%;max-width:24rem;padding:2rem 1.5rem;background:var(--card);border:1px solid var(--line);border-radius:12px}
main.wide{max-width:56rem}
.logo{display:block;max-width:100%;max-height:4rem;margin:0 0 1rem}
h1{margin:0 0 1rem;font-size:1.375rem;line-height:1.3}
label{display:block;margin:1rem 0 .25rem;font-weight:600}
input{width:100%;padding:.625rem .75rem;font:inherit;color:inherit;background:var(--bg);border:1px solid var(--field);border-radius:8px}
input[aria-invalid=true]{border-color:var(--err)}
button{margin-top:1.5rem;padding:.625rem 1.25rem;font:inherit;font-weight:600;color:var(--on-accent);background:var(--accent);border:0;border-radius:8px;cursor:pointer}
form.login button{width:100%}
input:focus-visible,button:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
.msg{margin:0 0 1rem;padding:.75rem 1rem;border:1px solid var(--line);border-radius:8px}
.msg.error{color:var(--err);background:var(--err-bg);border-color:currentColor}
.muted{color:var(--muted)}
table{width:100%;border-collapse:collapse;font-size:.875rem}
caption{text-align:left;font-weight:600;padding-bottom:.5rem}
th,td{padding:.375rem .5rem;text-align:left;vertical-align:top;border-bottom:1px solid var(--line)}
td{word-break:break-all;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
tr.identity{background:var(--hl)}
@media (max-width:30rem){body{align-items:flex-start;padding:.5rem}main{padding:1.5rem 1rem}}
`;

/** CSP source expression (`'sha256-…'`) allowing exactly {@link PAGE_STYLE}. */
export const PAGE_STYLE_HASH = `'sha256-${createHash('sha256').update(PAGE_STYLE, 'utf8').digest('base64')}'`;
// Per-page aliases so callers can name the page they serve; all pages share one sheet.
export const ERROR_PAGE_STYLE_HASH = PAGE_STYLE_HASH;
export const WHOAMI_PAGE_STYLE_HASH = PAGE_STYLE_HASH;

/**
 * Wraps a body in the common document shell. `title` is escaped here; `body`
 * must already be safe HTML built by the caller. `extraStyle` (the login page's
 * operator CSS) follows the built-in sheet verbatim, so it can override it; the
 * caller allows it in the CSP by its own hash.
 */
export function renderDocument(title: string, body: string, extraStyle?: string): string {
  // same-origin: the gateway's URLs carry return paths that other origins need not see. Not
  // no-referrer, which makes browsers send `Origin: null` with the login form's POST.
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<meta name="robots" content="noindex, nofollow">
<title>${escapeHtml(title)}</title>
<style>${PAGE_STYLE}</style>${extraStyle === undefined ? '' : `\n<style>${extraStyle}</style>`}
</head>
<body>
${body}
</body>
</html>
`;
}

/** Minimal page for gateway-generated errors (502, 503, 404, …). */
export function renderErrorPage(status: number, title: string, message: string): string {
  const code = escapeHtml(String(status));
  return renderDocument(
    `${status} ${title}`,
    `<main>
<p class="muted">Error ${code}</p>
<h1>${escapeHtml(title)}</h1>
<p>${escapeHtml(message)}</p>
</main>`,
  );
}

/**
 * Shown instead of signing out when the request came from another site (logout CSRF): a page there
 * cannot sign a user out, but the user can, with one same-origin POST.
 */
export function renderLogoutConfirmPage(action: string): string {
  return renderDocument(
    'Sign out?',
    `<main>
<h1>Sign out?</h1>
<p>Another site asked to sign you out. You are still signed in.</p>
<form method="post" action="${escapeHtml(action)}"><button type="submit">Sign out</button></form>
</main>`,
  );
}

/** Headers the gateway injects for the upstream; shown first so the demo makes the point. */
const IDENTITY_HEADERS = ['x-forwarded-user', 'x-forwarded-email', 'x-forwarded-groups'] as const;

type HeaderValue = string | string[] | undefined;

function headerText(v: HeaderValue): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}

function headerRow(name: string, value: string | undefined, identity: boolean): string {
  // A missing identity header is itself informative in a demo, so show it as such.
  const cell = value === undefined ? '<em>(not set)</em>' : escapeHtml(value);
  const cls = identity ? ' class="identity"' : '';
  return `<tr${cls}><th scope="row">${escapeHtml(name)}</th><td>${cell}</td></tr>`;
}

function headerRows(headers: Record<string, HeaderValue>): string {
  // Node lower-cases incoming names, but normalise anyway so lookups and sorting are stable.
  const byName = new Map<string, string>();
  for (const [name, value] of Object.entries(headers)) {
    const text = headerText(value);
    if (text !== undefined) byName.set(name.toLowerCase(), text);
  }
  const identity = IDENTITY_HEADERS.map((n) => headerRow(n, byName.get(n), true));
  const others = [...byName.keys()]
    .filter((n) => !(IDENTITY_HEADERS as readonly string[]).includes(n))
    .sort()
    .map((n) => headerRow(n, byName.get(n), false));
  return [...identity, ...others].join('\n');
}

/** The built-in demo upstream: shows what a protected app receives after login. */
export function renderWhoamiPage(info: {
  method: string;
  url: string;
  headers: Record<string, HeaderValue>;
  logoutPath: string;
}): string {
  return renderDocument(
    'session-gateway — signed in',
    `<main class="wide">
<h1>It works — you are signed in through session-gateway</h1>
<p>Request: <code>${escapeHtml(info.method)} ${escapeHtml(info.url)}</code></p>
<table>
<caption>Headers received by the application (identity headers highlighted)</caption>
<thead><tr><th scope="col">Header</th><th scope="col">Value</th></tr></thead>
<tbody>
${headerRows(info.headers)}
</tbody>
</table>
<form method="post" action="${escapeHtml(info.logoutPath)}"><button type="submit">Sign out</button></form>
<p class="muted">This is the built-in demo app. Set GATEWAY_UPSTREAM to protect your own application.</p>
</main>`,
  );
}
