/**
 * The gateway's login form. Pure rendering: the caller supplies the CSRF token,
 * return path and messages, and serves the result with a CSP that allows
 * {@link LOGIN_PAGE_STYLE_HASH} as the only style and no scripts at all.
 */
import { PAGE_STYLE_HASH, escapeHtml, renderDocument } from '../pages.js';

// Re-exported so auth code needs only this module to build a safe page.
export { escapeHtml };

/** CSP `style-src` source for the login page's inline stylesheet (shared by all pages). */
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
  /** Neutral information such as "You have been signed out." (role="status"). */
  notice?: string;
}

const ERROR_ID = 'login-error';

function messages(m: LoginPageModel): string {
  const out: string[] = [];
  if (m.notice) out.push(`<p class="msg" role="status">${escapeHtml(m.notice)}</p>`);
  // Before the form so it is read first; the inputs point at it via aria-describedby.
  if (m.error) out.push(`<p id="${ERROR_ID}" class="msg error" role="alert">${escapeHtml(m.error)}</p>`);
  return out.join('\n');
}

function fields(m: LoginPageModel): string {
  // After a failure both fields are described by (and flagged with) the error.
  const invalid = m.error ? ` aria-describedby="${ERROR_ID}" aria-invalid="true"` : '';
  const username = escapeHtml(m.username ?? '');
  return `<label for="username">Username</label>
<input id="username" name="username" type="text" value="${username}" autocomplete="username" autocapitalize="none" spellcheck="false" autofocus required maxlength="256"${invalid}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024"${invalid}>`;
}

export function renderLoginPage(m: LoginPageModel): string {
  return renderDocument(
    m.title,
    `<main>
<h1>${escapeHtml(m.title)}</h1>
${messages(m)}
<form class="login" method="post" action="${escapeHtml(m.action)}">
<input type="hidden" name="rd" value="${escapeHtml(m.rd)}">
<input type="hidden" name="csrf" value="${escapeHtml(m.csrfToken)}">
${fields(m)}
<button type="submit">Sign in</button>
</form>
</main>`,
  );
}
