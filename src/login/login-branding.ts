/**
 * Operator branding for the login page: a logo, extra CSS and optionally a whole template,
 * read and checked once at start-up (GATEWAY_LOGIN_LOGO_FILE, GATEWAY_LOGIN_LOGO_ALT,
 * GATEWAY_LOGIN_CSS_FILE, GATEWAY_LOGIN_TEMPLATE_FILE). Every problem becomes one config line.
 *
 * Everything is inlined into the page rather than served as separate files, so the page's CSP
 * stays `default-src 'none'`: the CSS is allowed by its sha256 hash, the logo is a `data:` URI
 * allowed by `img-src data:` (only when a logo is configured). A `data:` image cannot run
 * scripts (an SVG in `<img>` is inert), and nothing is ever fetched from anywhere, not even the
 * gateway's own origin, where a served SVG opened directly would run as a document.
 */
import { readFileSync, statSync } from 'node:fs';
import { extname } from 'node:path';

/** Inline on every login page view, so kept small. */
export const MAX_LOGO_BYTES = 100 * 1024;
export const MAX_CSS_BYTES = 64 * 1024;
export const MAX_TEMPLATE_BYTES = 64 * 1024;

export type LogoType = 'image/png' | 'image/svg+xml' | 'image/jpeg';

export interface LoginBranding {
  /** Ready to use as `<img src>`; null: no logo. */
  logo: { type: LogoType; dataUri: string; alt: string } | null;
  /** Appended after the built-in stylesheet in its own `<style>`; line endings normalised. */
  css: string | null;
  /** A validated template with placeholders; null: the built-in page. */
  template: string | null;
}

export const NO_BRANDING: LoginBranding = { logo: null, css: null, template: null };

/**
 * Placeholders a template may use, each replaced by escaped text or by markup the gateway builds
 * from escaped text. `form` and `error` are required: without them nobody could sign in or see
 * why signing in failed.
 */
export const TEMPLATE_PLACEHOLDERS = ['document_title', 'title', 'styles', 'logo', 'notice', 'error', 'form'] as const;
export type TemplatePlaceholder = (typeof TEMPLATE_PLACEHOLDERS)[number];
const REQUIRED_PLACEHOLDERS: readonly TemplatePlaceholder[] = ['form', 'error'];
/** Anything that looks like a placeholder, so a typo ({{From}}, {{ form }}) is reported, not shown. */
export const PLACEHOLDER_PATTERN = /\{\{\s*([^{}]*?)\s*\}\}/g;

/** The part of config.ts's EnvReader this module needs. */
export interface VariableReader {
  optional(name: string): string | null;
  problem(line: string): void;
}

export function readLoginBranding(r: VariableReader): LoginBranding {
  const altText = r.optional('GATEWAY_LOGIN_LOGO_ALT');
  const logo = readLogo(r, altText ?? '');
  if (altText !== null && r.optional('GATEWAY_LOGIN_LOGO_FILE') === null) {
    r.problem('GATEWAY_LOGIN_LOGO_ALT is set but GATEWAY_LOGIN_LOGO_FILE is not');
  }
  const css = readCss(r);
  const template = readTemplate(r);
  // A template that leaves out {{logo}} or {{styles}} would drop the configured file silently.
  if (template !== null && logo !== null && !template.includes('{{logo}}')) {
    r.problem('GATEWAY_LOGIN_LOGO_FILE is set but GATEWAY_LOGIN_TEMPLATE_FILE has no {{logo}} placeholder');
  }
  if (template !== null && css !== null && !template.includes('{{styles}}')) {
    r.problem('GATEWAY_LOGIN_CSS_FILE is set but GATEWAY_LOGIN_TEMPLATE_FILE has no {{styles}} placeholder');
  }
  return { logo, css, template };
}

const LOGO_TYPES: Readonly<Record<string, LogoType>> = {
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
};

const LOGO_NAMES: Readonly<Record<LogoType, string>> = { 'image/png': 'PNG', 'image/svg+xml': 'SVG', 'image/jpeg': 'JPEG' };

function readLogo(r: VariableReader, alt: string): LoginBranding['logo'] {
  const name = 'GATEWAY_LOGIN_LOGO_FILE';
  const path = r.optional(name);
  if (path === null) return null;
  const type = LOGO_TYPES[extname(path).toLowerCase()];
  if (!type) {
    r.problem(`${name}: ${path} must be a .png, .svg or .jpg file`);
    return null;
  }
  const bytes = readBounded(r, name, path, MAX_LOGO_BYTES);
  if (!bytes) return null;
  // The extension alone would let a mislabelled file through as a broken image.
  if (sniffImage(bytes) !== type) {
    r.problem(`${name}: ${path} does not contain ${LOGO_NAMES[type]} data`);
    return null;
  }
  return { type, dataUri: `data:${type};base64,${bytes.toString('base64')}`, alt };
}

/** What the bytes are, by signature (PNG, JPEG) or by an `<svg` element in text (SVG). */
export function sniffImage(bytes: Buffer): LogoType | null {
  if (bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'image/png';
  if (bytes.length > 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'image/jpeg';
  if (!bytes.includes(0) && /<svg[\s>]/i.test(bytes.toString('utf8'))) return 'image/svg+xml';
  return null;
}

function readCss(r: VariableReader): string | null {
  const name = 'GATEWAY_LOGIN_CSS_FILE';
  const path = r.optional(name);
  if (path === null) return null;
  const text = readText(r, name, path, MAX_CSS_BYTES);
  if (text === null) return null;
  // The CSS is placed verbatim inside <style>; "</style" would end it and turn the rest into markup.
  if (/<\/style/i.test(text)) {
    r.problem(`${name}: ${path} contains "</style", which would end the page's <style> element`);
    return null;
  }
  return text;
}

function readTemplate(r: VariableReader): string | null {
  const name = 'GATEWAY_LOGIN_TEMPLATE_FILE';
  const path = r.optional(name);
  if (path === null) return null;
  const text = readText(r, name, path, MAX_TEMPLATE_BYTES);
  if (text === null) return null;
  const problems: string[] = [];
  const counts = new Map<string, number>();
  for (const match of text.matchAll(PLACEHOLDER_PATTERN)) {
    const placeholder = match[1] ?? '';
    if (!(TEMPLATE_PLACEHOLDERS as readonly string[]).includes(placeholder) || match[0] !== `{{${placeholder}}}`) {
      problems.push(`has an unknown placeholder ${match[0]} (known: ${TEMPLATE_PLACEHOLDERS.map((p) => `{{${p}}}`).join(', ')})`);
    }
    counts.set(placeholder, (counts.get(placeholder) ?? 0) + 1);
  }
  for (const required of REQUIRED_PLACEHOLDERS) {
    if (!counts.has(required)) problems.push(`has no {{${required}}} placeholder (${required === 'form' ? 'the sign-in form goes there' : 'sign-in errors are shown there'})`);
  }
  for (const once of ['form', 'error', 'notice', 'logo'] as const) {
    // These carry element ids (the fields point at the error's and notice's ids): one each.
    if ((counts.get(once) ?? 0) > 1) problems.push(`uses {{${once}}} more than once`);
  }
  // The page's CSP allows no scripts and only the hashed styles: these would silently do nothing.
  if (/<script\b/i.test(text)) problems.push('contains <script>: the login page allows no scripts (it works without JavaScript)');
  if (/<style\b/i.test(text)) problems.push('contains <style>: put styles in GATEWAY_LOGIN_CSS_FILE and {{styles}} in the template');
  if (/<link\b/i.test(text)) problems.push('contains <link>: the login page loads nothing from elsewhere; use GATEWAY_LOGIN_CSS_FILE and GATEWAY_LOGIN_LOGO_FILE');
  // A page-level referrer policy overrides the gateway's header; no-referrer would make browsers
  // send `Origin: null` with the form's POST, which the same-origin check refuses.
  if (/<meta\b[^>]*\bname\s*=\s*["']?referrer\b/i.test(text)) problems.push('sets a referrer policy (<meta name="referrer">): leave it to the gateway, which sends Referrer-Policy: same-origin');
  for (const line of problems) r.problem(`${name}: ${path} ${line}`);
  return problems.length === 0 ? text : null;
}

/**
 * UTF-8 text with line endings normalised to \n: the HTML parser does the same before the
 * browser hashes a `<style>` element, so the CSP hash must be computed over the normalised text.
 */
function readText(r: VariableReader, name: string, path: string, maxBytes: number): string | null {
  const bytes = readBounded(r, name, path, maxBytes);
  if (!bytes) return null;
  if (bytes.includes(0)) {
    r.problem(`${name}: ${path} is not a text file`);
    return null;
  }
  return bytes.toString('utf8').replace(/\r\n?/g, '\n');
}

function readBounded(r: VariableReader, name: string, path: string, maxBytes: number): Buffer | null {
  try {
    const stat = statSync(path);
    if (!stat.isFile()) {
      r.problem(`${name}: ${path} is not a regular file`);
      return null;
    }
    if (stat.size > maxBytes) {
      r.problem(`${name}: ${path} is ${Math.ceil(stat.size / 1024)} KiB; at most ${maxBytes / 1024} KiB (it is inlined into every login page)`);
      return null;
    }
    const bytes = readFileSync(path);
    if (bytes.length === 0) {
      r.problem(`${name}: ${path} is empty`);
      return null;
    }
    return bytes;
  } catch (err) {
    r.problem(`${name}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    return null;
  }
}
