/**
 * The self-service pages (password change, "where am I signed in"). Pure rendering, like the login
 * page: the built-in stylesheet, allowed by its hash in {@link ACCOUNT_PAGE_CSP}, and no scripts at
 * all, so both pages work without JavaScript. Every value is escaped here.
 */
import { PAGE_STYLE_HASH, escapeHtml, renderDocument } from '../pages.js';

export const ACCOUNT_PAGE_CSP = `default-src 'none'; style-src ${PAGE_STYLE_HASH}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`;

export interface AccountNav {
  passwordPath: string;
  sessionsPath: string;
  logoutPath: string;
}

export interface PasswordPageModel extends AccountNav {
  user: string;
  csrfToken: string;
  error?: string;
  notice?: string;
  minLength: number;
}

export interface SessionRow {
  /** The opaque handle (id-hash prefix), never the id. */
  handle: string;
  client: string;
  created: string;
  lastSeen: string;
  current: boolean;
}

export interface SessionsPageModel extends AccountNav {
  user: string;
  csrfToken: string;
  sessions: SessionRow[];
  error?: string;
  notice?: string;
}

function messages(m: { error?: string; notice?: string }): string {
  return [
    m.notice ? `<p id="account-notice" class="msg" role="status">${escapeHtml(m.notice)}</p>` : '',
    m.error ? `<p id="account-error" class="msg error" role="alert">${escapeHtml(m.error)}</p>` : '',
  ].join('');
}

function nav(m: AccountNav, here: 'password' | 'sessions'): string {
  const link = (path: string, text: string, current: boolean) => `<a href="${escapeHtml(path)}"${current ? ' aria-current="page"' : ''}>${text}</a>`;
  return `<nav class="muted">${link(m.passwordPath, 'Password', here === 'password')} · ${link(m.sessionsPath, 'Where you are signed in', here === 'sessions')}</nav>`;
}

function title(base: string, error?: string): string {
  return error ? `Error: ${error} – ${base}` : base;
}

export function renderPasswordPage(m: PasswordPageModel): string {
  const invalid = m.error ? ' aria-invalid="true" aria-describedby="account-error"' : '';
  return renderDocument(
    title('Change password', m.error),
    `<main>
<h1>Change password</h1>
<p class="muted">Signed in as <strong>${escapeHtml(m.user)}</strong></p>
${nav(m, 'password')}
${messages(m)}
<form class="login" method="post" action="${escapeHtml(m.passwordPath)}">
<input type="hidden" name="csrf" value="${escapeHtml(m.csrfToken)}">
<label for="current">Current password</label>
<input id="current" name="current" type="password" autocomplete="current-password" required maxlength="1024" autofocus${invalid}>
<label for="new">New password</label>
<input id="new" name="new" type="password" autocomplete="new-password" required minlength="${m.minLength}" maxlength="1024" aria-describedby="new-hint">
<p id="new-hint" class="muted">At least ${m.minLength} characters, and not a common password. Your other sessions will be signed out.</p>
<label for="confirm">New password again</label>
<input id="confirm" name="confirm" type="password" autocomplete="new-password" required minlength="${m.minLength}" maxlength="1024">
<button type="submit">Change password</button>
</form>
</main>`,
  );
}

export function renderSessionsPage(m: SessionsPageModel): string {
  const csrf = `<input type="hidden" name="csrf" value="${escapeHtml(m.csrfToken)}">`;
  const rows = m.sessions
    .map((s) => {
      const action = s.current
        ? '<strong>This session</strong>'
        : `<form method="post" action="${escapeHtml(m.sessionsPath)}">${csrf}<input type="hidden" name="session" value="${escapeHtml(s.handle)}"><button type="submit" aria-label="Sign out ${escapeHtml(s.client)}, signed in ${escapeHtml(s.created)}">Sign out</button></form>`;
      return `<tr${s.current ? ' class="identity"' : ''}><th scope="row">${escapeHtml(s.client)}</th><td>${escapeHtml(s.created)}</td><td>${escapeHtml(s.lastSeen)}</td><td>${action}</td></tr>`;
    })
    .join('\n');
  const others = m.sessions.some((s) => !s.current)
    ? `<form method="post" action="${escapeHtml(m.sessionsPath)}">${csrf}<input type="hidden" name="session" value="others"><button type="submit">Sign out all other sessions</button></form>`
    : '<p class="muted">You are signed in nowhere else.</p>';
  return renderDocument(
    title('Where you are signed in', m.error),
    `<main class="wide">
<h1>Where you are signed in</h1>
<p class="muted">Signed in as <strong>${escapeHtml(m.user)}</strong></p>
${nav(m, 'sessions')}
${messages(m)}
<table>
<caption>Your sessions (times in UTC)</caption>
<thead><tr><th scope="col">Client</th><th scope="col">Signed in</th><th scope="col">Last seen</th><th scope="col"></th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
${others}
<form method="post" action="${escapeHtml(m.logoutPath)}"><button type="submit">Sign out of this session</button></form>
</main>`,
  );
}
