/**
 * The gateway's login form. Pure rendering: the caller supplies the CSRF token,
 * return path and messages, and serves the result with {@link LoginPage.csp}, which
 * allows the page's own stylesheets by hash, the logo as a `data:` image, and
 * nothing else — no scripts at all: the page works without JavaScript.
 *
 * Accessibility without scripts: the first field that needs typing is autofocused;
 * an error is a role="alert" that both fields point at (aria-describedby, and
 * aria-invalid when the credentials were wrong) and is repeated at the start of
 * the document title, so it is heard on arrival even though focus is on a field;
 * a notice (signed out, session expired) is a role="status" that describes the
 * username field for the same reason.
 */
import { createHash } from 'node:crypto';
import { PAGE_STYLE, PAGE_STYLE_HASH, escapeHtml, renderDocument } from '../pages.js';
import { NO_BRANDING, PLACEHOLDER_PATTERN, type LoginBranding, type TemplatePlaceholder } from './login-branding.js';

// Re-exported so auth code needs only this module to build a safe page.
export { escapeHtml };

/** CSP `style-src` source for the built-in stylesheet (shared by all pages). */
export const LOGIN_PAGE_STYLE_HASH: string = PAGE_STYLE_HASH;

export interface LoginPageModel {
  /** Product/app title, e.g. "Sign in"; default chosen by the caller. */
  title: string;
  /** Form action path, e.g. "/_auth/login". */
  action: string;
  /** Sent back as hidden field `csrf`. */
  csrfToken: string;
  /** Sent back as hidden field `rd` (where to return after login). */
  rd: string;
  /** Re-filled after a failed attempt so the user only retypes the password. */
  username?: string;
  /** Failure message; announced immediately to screen readers (role="alert"). */
  error?: string;
  /** The error is about what was typed (wrong credentials): mark the fields aria-invalid. */
  invalid?: boolean;
  /** Neutral information such as "You have been signed out." (role="status"). */
  notice?: string;
}

export interface LoginPage {
  render(model: LoginPageModel): string;
  /** The Content-Security-Policy header value to serve every rendered page with. */
  readonly csp: string;
}

const ERROR_ID = 'login-error';
const NOTICE_ID = 'login-notice';

function cspHash(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

/** Compiles the page once at start-up: the CSP and the template's pieces are fixed from then on. */
export function createLoginPage(branding: LoginBranding = NO_BRANDING): LoginPage {
  const styleSources = [PAGE_STYLE_HASH, ...(branding.css !== null ? [cspHash(branding.css)] : [])];
  const csp = [
    "default-src 'none'",
    `style-src ${styleSources.join(' ')}`,
    // Only when there is a logo; data: images cannot run scripts or fetch anything.
    ...(branding.logo ? ['img-src data:'] : []),
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
  const fill = branding.template !== null ? compileTemplate(branding.template) : null;
  return {
    csp,
    render(m) {
      const parts = pieces(m, branding);
      return fill ? fill(parts) : builtInPage(m, parts, branding.css);
    },
  };
}

/** The login page as the routes hold it: the branding may be replaced by a SIGHUP reload. */
export interface ReplaceableLoginPage {
  /** Read once per response, so its CSP and its markup always come from one branding. */
  readonly current: LoginPage;
  replace(branding: LoginBranding): void;
}

export function createReplaceableLoginPage(branding: LoginBranding = NO_BRANDING): ReplaceableLoginPage {
  let current = createLoginPage(branding);
  return {
    get current() {
      return current;
    },
    replace(next) {
      current = createLoginPage(next);
    },
  };
}

const defaultPage = createLoginPage();

/** The built-in page without branding (what GATEWAY_LOGIN_TITLE alone gives). */
export function renderLoginPage(m: LoginPageModel): string {
  return defaultPage.render(m);
}

type Pieces = Record<TemplatePlaceholder, string>;

/** "Error: " first, as GOV.UK does: the title is the first thing read on arrival. */
function documentTitle(m: LoginPageModel): string {
  return m.error ? `Error: ${m.error} – ${m.title}` : m.title;
}

/** Every placeholder's value: escaped text, or markup built here around escaped text. */
function pieces(m: LoginPageModel, branding: LoginBranding): Pieces {
  const css = branding.css !== null ? `\n<style>${branding.css}</style>` : '';
  return {
    document_title: escapeHtml(documentTitle(m)),
    title: escapeHtml(m.title),
    styles: `<style>${PAGE_STYLE}</style>${css}`,
    logo: branding.logo ? `<img class="logo" src="${branding.logo.dataUri}" alt="${escapeHtml(branding.logo.alt)}">` : '',
    notice: m.notice ? `<p id="${NOTICE_ID}" class="msg" role="status">${escapeHtml(m.notice)}</p>` : '',
    // Before the form so it is read first; the inputs point at it via aria-describedby.
    error: m.error ? `<p id="${ERROR_ID}" class="msg error" role="alert">${escapeHtml(m.error)}</p>` : '',
    form: form(m),
  };
}

function form(m: LoginPageModel): string {
  return `<form class="login" method="post" action="${escapeHtml(m.action)}">
<input type="hidden" name="rd" value="${escapeHtml(m.rd)}">
<input type="hidden" name="csrf" value="${escapeHtml(m.csrfToken)}">
${fields(m)}
<button type="submit">Sign in</button>
</form>`;
}

function fields(m: LoginPageModel): string {
  const username = escapeHtml(m.username ?? '');
  // With the username re-filled, the password is what the user types next.
  const focusPassword = username !== '';
  const invalid = m.error && m.invalid ? ' aria-invalid="true"' : '';
  const describe = (ids: (string | false)[]) => {
    const list = ids.filter((id): id is string => id !== false);
    return list.length > 0 ? ` aria-describedby="${list.join(' ')}"` : '';
  };
  const usernameDescribedBy = describe([!!m.error && ERROR_ID, !!m.notice && NOTICE_ID]);
  const passwordDescribedBy = describe([!!m.error && ERROR_ID]);
  return `<label for="username">Username</label>
<input id="username" name="username" type="text" value="${username}" autocomplete="username" autocapitalize="none" spellcheck="false"${focusPassword ? '' : ' autofocus'} required maxlength="256"${usernameDescribedBy}${invalid}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password"${focusPassword ? ' autofocus' : ''} required maxlength="1024"${passwordDescribedBy}${invalid}>`;
}

function builtInPage(m: LoginPageModel, p: Pieces, css: string | null): string {
  const body = ['<main>', p.logo, `<h1>${p.title}</h1>`, p.notice, p.error, p.form, '</main>'].filter((line) => line !== '').join('\n');
  return renderDocument(documentTitle(m), body, css ?? undefined);
}

/**
 * Splits an operator template (validated by login-branding.ts) into literal text and
 * placeholders once, so each request only joins strings.
 */
function compileTemplate(template: string): (p: Pieces) => string {
  const literals: string[] = [];
  const names: TemplatePlaceholder[] = [];
  let last = 0;
  for (const match of template.matchAll(PLACEHOLDER_PATTERN)) {
    literals.push(template.slice(last, match.index));
    names.push(match[1] as TemplatePlaceholder);
    last = match.index + match[0].length;
  }
  literals.push(template.slice(last));
  return (p) => {
    let out = literals[0] ?? '';
    for (let i = 0; i < names.length; i++) out += p[names[i] as TemplatePlaceholder] + (literals[i + 1] ?? '');
    return out;
  };
}
