// The second step's pages: the code form and the passkey button, enrolment (QR code, otpauth://
// link, the key in groups of four; a passkey) and the recovery codes shown once. Plain forms that
// work without JavaScript, under a CSP as strict as the login page's: the shared stylesheet and
// this page's own, both by hash, and the one passkey script by its hash (passkey-script.ts), which
// may talk to this origin only. Without JavaScript the passkey section stays hidden.
import { createHash } from 'node:crypto';
import { PAGE_STYLE_HASH, escapeHtml, renderDocument } from '../pages.js';
import { PASSKEY_SCRIPT, PASSKEY_SCRIPT_HASH } from './passkey-script.js';
import { qrSvg } from './qr.js';

const MFA_STYLE = `
.qr{display:block;margin:1rem auto;max-width:100%;height:auto;border-radius:4px}
.key{display:block;margin:.25rem 0 0;padding:.5rem .75rem;font:600 1.0625rem/1.6 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;letter-spacing:.05em;word-spacing:.35em;background:var(--bg);border:1px solid var(--line);border-radius:8px;overflow-wrap:anywhere}
ol.codes{columns:2;padding-left:1.75rem;font:1rem/1.9 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.steps{padding-left:1.25rem}
.steps li{margin:.5rem 0}
details{margin:.75rem 0}
summary{cursor:pointer}
.uri{overflow-wrap:anywhere;font-size:.8125rem}
a.button{display:inline-block;margin-top:1.5rem;padding:.625rem 1.25rem;font-weight:600;color:var(--on-accent);background:var(--accent);border-radius:8px;text-decoration:none}
form.login input[name=code]{font:1.25rem/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;letter-spacing:.1em}
.alt{margin-top:1.5rem;font-size:.875rem}
.passkey{margin:1.5rem 0}
.passkey button{width:100%}
h2{font-size:1.0625rem;margin:1.5rem 0 .5rem}
`;

const MFA_STYLE_HASH = `'sha256-${createHash('sha256').update(MFA_STYLE, 'utf8').digest('base64')}'`;

/** The CSP every second-step page is served with: two stylesheets and one script by hash, fetch to this origin only. */
export const MFA_PAGE_CSP = [
  "default-src 'none'",
  `style-src ${PAGE_STYLE_HASH} ${MFA_STYLE_HASH}`,
  "form-action 'self'",
  `script-src ${PASSKEY_SCRIPT_HASH}`,
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

const ERROR_ID = 'mfa-error';

interface FormModel {
  action: string;
  csrfToken: string;
  rd: string;
  error?: string;
}

/** The passkey ceremony's two JSON endpoints (options, then the answer), for the script. */
export interface PasskeyEndpoints {
  options: string;
  verify: string;
}

export interface VerifyPageModel extends FormModel {
  title: string;
  /** Where "sign in as someone else" leads (the logout route, which ends the pending sign-in too). */
  cancelPath: string;
  /** The code form: for a TOTP code (or a recovery code), for recovery codes only, or none. */
  code: 'totp' | 'recovery' | null;
  /** The passkey button, when the user has a passkey. */
  passkey: PasskeyEndpoints | null;
}

export interface SetupPageModel extends FormModel {
  title: string;
  user: string;
  /** The authenticator app's enrolment; null when the user has TOTP already (a passkey can still be added). */
  totp: { otpauth: string; key: string } | null;
  passkey: PasskeyEndpoints;
}

const documentTitle = (title: string, error?: string) => (error ? `Error: ${error} – ${title}` : title);
const errorBlock = (error?: string) => (error ? `<p id="${ERROR_ID}" class="msg error" role="alert">${escapeHtml(error)}</p>\n` : '');

function codeForm(m: FormModel, label: string, button: string, hint: string): string {
  const described = m.error ? ` aria-describedby="${ERROR_ID} code-hint" aria-invalid="true"` : ' aria-describedby="code-hint"';
  return `<form class="login" method="post" action="${escapeHtml(m.action)}">
<input type="hidden" name="rd" value="${escapeHtml(m.rd)}">
<input type="hidden" name="csrf" value="${escapeHtml(m.csrfToken)}">
<label for="code">${escapeHtml(label)}</label>
<p id="code-hint" class="muted">${escapeHtml(hint)}</p>
<input id="code" name="code" type="text" autocomplete="one-time-code" autocapitalize="none" spellcheck="false" autofocus required maxlength="32"${described}>
<button type="submit">${escapeHtml(button)}</button>
</form>`;
}

/** The passkey section: hidden until the script finds WebAuthn in the browser and shows it. */
function passkeySection(mode: 'register' | 'authenticate', endpoints: PasskeyEndpoints, rd: string, inner: string, button: string): string {
  const data = `data-mode="${mode}" data-options="${escapeHtml(endpoints.options)}" data-verify="${escapeHtml(endpoints.verify)}" data-rd="${escapeHtml(rd)}"`;
  return `<section id="passkey" class="passkey" ${data}${mode === 'register' ? ' data-enrol' : ''} hidden>
${inner}<button type="button" id="passkey-button">${escapeHtml(button)}</button>
<p id="passkey-status" class="msg error" role="alert" hidden></p>
</section>`;
}

const script = `<script>${PASSKEY_SCRIPT}</script>`;

export function renderVerifyPage(m: VerifyPageModel): string {
  // One entry per way of completing the step the user has: a passkey, a code.
  const methods: string[] = [];
  if (m.passkey) {
    methods.push(passkeySection('authenticate', m.passkey, m.rd, '', 'Use a passkey'));
    if (m.code === null) methods.push('<noscript><p class="msg">Signing in with a passkey needs JavaScript.</p></noscript>');
  }
  if (m.code === 'totp') methods.push(codeForm(m, 'Verification code', 'Verify', 'The 6-digit code from your authenticator app, or one of your recovery codes.'));
  if (m.code === 'recovery') methods.push(codeForm(m, 'Recovery code', 'Verify', 'One of the recovery codes you saved when you set up your passkey.'));
  const body = `<main>
<h1>${escapeHtml(m.title)}</h1>
${errorBlock(m.error)}${methods.join('\n')}
<p class="alt"><a href="${escapeHtml(m.cancelPath)}">Sign in as someone else</a></p>
</main>${m.passkey ? `\n${script}` : ''}`;
  return renderDocument(documentTitle(m.title, m.error), body, MFA_STYLE);
}

function totpSteps(m: SetupPageModel, totp: { otpauth: string; key: string }): string {
  return `<div data-enrol>
<p>Signed in as <strong>${escapeHtml(m.user)}</strong>. Add this account to an authenticator app (for example on your phone).</p>
<ol class="steps">
<li>Scan this QR code with the app:
${qrSvg(totp.otpauth, `QR code to add ${m.user} to an authenticator app`)}</li>
<li>Or type this key into the app:
<code class="key" id="totp-key">${escapeHtml(totp.key)}</code>
<p><a href="${escapeHtml(totp.otpauth)}">Open in an authenticator app on this device</a></p>
<details><summary>Setup link as text</summary><p class="uri"><code>${escapeHtml(totp.otpauth)}</code></p></details></li>
<li>Enter the code the app shows to finish.</li>
</ol>
${codeForm(m, 'Code from the app', 'Turn on two-step verification', 'Six digits; a new one appears every 30 seconds.')}
</div>`;
}

export function renderSetupPage(m: SetupPageModel): string {
  const intro = m.totp
    ? '<h2>Or use a passkey</h2>\n<p>A passkey on this device, or a security key, instead of an authenticator app.</p>\n'
    : `<p>Signed in as <strong>${escapeHtml(m.user)}</strong>. Two-step verification is on with an authenticator app; you can add a passkey (this device, or a security key) as another way to sign in.</p>\n`;
  // Filled by the script once a passkey is registered: the recovery codes, if this was the first factor.
  const done = `<section id="passkey-done" hidden>
<p class="msg" role="status">Passkey added. Two-step verification is on.</p>
<p>If you lose your passkey, each of these codes signs you in once. Keep them somewhere safe: they are shown only now.</p>
<ol class="codes" id="passkey-code-list"></ol>
<a class="button" id="passkey-continue" href="${escapeHtml(m.rd)}">Continue</a>
</section>`;
  const body = `<main>
<h1>${escapeHtml(m.title)}</h1>
${errorBlock(m.error)}${m.totp ? totpSteps(m, m.totp) : ''}
${passkeySection('register', m.passkey, m.rd, intro, 'Add a passkey')}
<noscript><p class="msg">Adding a passkey needs JavaScript${m.totp ? '; the authenticator app above does not' : ''}.</p></noscript>
${done}
</main>
${script}`;
  return renderDocument(documentTitle(m.title, m.error), body, MFA_STYLE);
}

export function renderRecoveryCodesPage(m: { codes: string[]; next: string }): string {
  const title = 'Save your recovery codes';
  const body = `<main>
<h1>${title}</h1>
<p class="msg" role="status">Two-step verification is on.</p>
<p>If you lose your authenticator app, each of these codes signs you in once. Keep them somewhere safe: they are shown only now.</p>
<ol class="codes">
${m.codes.map((code) => `<li><code>${escapeHtml(code)}</code></li>`).join('\n')}
</ol>
<a class="button" href="${escapeHtml(m.next)}">Continue</a>
</main>`;
  return renderDocument(title, body, MFA_STYLE);
}

export function renderAlreadyEnrolledPage(m: { next: string }): string {
  const title = 'Two-step verification is already on';
  return renderDocument(
    title,
    `<main>
<h1>${title}</h1>
<p>This account already has a second factor (an authenticator app or a passkey). To add another, sign in with it first; to replace it, ask an administrator to reset it (<code>users mfa reset</code>).</p>
<a class="button" href="${escapeHtml(m.next)}">Continue</a>
</main>`,
    MFA_STYLE,
  );
}
