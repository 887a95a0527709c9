// The login page's accessibility attributes, its branding (logo, CSS, template) and the CSP it is
// served with: every style in the page must be allowed by a hash in that CSP, the logo by img-src,
// and nothing else may be allowed. Plus the colour contrast of the built-in stylesheet (WCAG AA).
import { createHash } from 'node:crypto';
import t from 'tap';
import type { LoginBranding } from '../../src/login/login-branding.js';
import { createLoginPage, renderLoginPage, type LoginPageModel } from '../../src/login/login-page.js';
import { PAGE_STYLE, PAGE_STYLE_HASH } from '../../src/pages.js';

const base: LoginPageModel = { title: 'Sign in', action: '/_auth/login', csrfToken: 'tok', rd: '/x' };
const SVG_URI = `data:image/svg+xml;base64,${Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>').toString('base64')}`;
const branded: LoginBranding = {
  logo: { type: 'image/svg+xml', dataUri: SVG_URI, alt: 'ACME "Corp"' },
  css: ':root{--accent:#7a1fa2}\nh1{letter-spacing:.02em}\n',
  template: null,
};

const hashOf = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
const stylesOf = (html: string) => [...html.matchAll(/<style>([\s\S]*?)<\/style>/g)].map((m) => m[1] ?? '');
const inputOf = (html: string, id: string) => new RegExp(`<input id="${id}"[^>]*>`).exec(html)?.[0] ?? '';
const directives = (csp: string) => new Map(csp.split('; ').map((d) => { const [name = '', ...values] = d.split(' '); return [name, values]; }));

t.test('the first empty field has the focus', async (t) => {
  const fresh = renderLoginPage(base);
  t.match(inputOf(fresh, 'username'), / autofocus /);
  t.notMatch(inputOf(fresh, 'password'), /autofocus/);
  t.equal(fresh.match(/autofocus/g)?.length, 1, 'exactly one autofocus');
  const retry = renderLoginPage({ ...base, username: 'alice', error: 'Invalid username or password.', invalid: true });
  t.notMatch(inputOf(retry, 'username'), /autofocus/);
  t.match(inputOf(retry, 'password'), / autofocus /);
});

t.test('an error leads the document title and is tied to the fields', async (t) => {
  const wrong = renderLoginPage({ ...base, username: 'alice', error: 'Invalid username or password.', invalid: true });
  t.match(wrong, /<title>Error: Invalid username or password\. – Sign in<\/title>/);
  t.match(wrong, /<h1>Sign in<\/h1>/, 'the heading stays the title');
  for (const id of ['username', 'password']) {
    t.match(inputOf(wrong, id), /aria-describedby="login-error"/, `${id} described by the error`);
    t.match(inputOf(wrong, id), /aria-invalid="true"/, `${id} flagged invalid`);
  }
  // Throttling or an expired form is not the user's typing: described, but not flagged invalid.
  const throttled = renderLoginPage({ ...base, error: 'Too many failed sign-in attempts. Try again later.' });
  t.notMatch(inputOf(throttled, 'username'), /aria-invalid/);
  t.notMatch(inputOf(throttled, 'password'), /aria-invalid/);
  t.match(inputOf(throttled, 'password'), /aria-describedby="login-error"/);
  t.match(throttled, /<title>Error: Too many failed sign-in attempts\. Try again later\. – Sign in<\/title>/);
  t.match(renderLoginPage(base), /<title>Sign in<\/title>/);
});

t.test('a notice is a status that describes the focused username field', async (t) => {
  const html = renderLoginPage({ ...base, notice: 'You have been signed out.' });
  t.match(html, /<p id="login-notice" class="msg" role="status">You have been signed out\.<\/p>/);
  t.match(inputOf(html, 'username'), /aria-describedby="login-notice"/);
  t.notMatch(inputOf(html, 'password'), /aria-describedby/);
  t.notMatch(html, /role="alert"/);
  const both = renderLoginPage({ ...base, notice: 'n', error: 'e' });
  t.match(inputOf(both, 'username'), /aria-describedby="login-error login-notice"/);
});

t.test('the built-in CSP allows exactly the built-in stylesheet and nothing to load', async (t) => {
  const page = createLoginPage();
  t.equal(page.csp, `default-src 'none'; style-src ${PAGE_STYLE_HASH}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`);
  t.same(stylesOf(page.render(base)).map(hashOf), [PAGE_STYLE_HASH]);
});

t.test('a logo is an inline data: image allowed by img-src data: only', async (t) => {
  const page = createLoginPage({ ...branded, css: null });
  const html = page.render(base);
  t.match(html, `<img class="logo" src="${SVG_URI}" alt="ACME &quot;Corp&quot;">`);
  t.ok(html.indexOf('<img') < html.indexOf('<h1>'), 'logo above the heading');
  const csp = directives(page.csp);
  t.same(csp.get('img-src'), ['data:']);
  t.same(csp.get('default-src'), ["'none'"]);
  t.same(csp.get('style-src'), [PAGE_STYLE_HASH]);
  t.notMatch(page.csp, /script-src|unsafe/, 'no script source, nothing unsafe');
  const decorative = createLoginPage({ ...branded, css: null, logo: { type: 'image/png', dataUri: 'data:image/png;base64,AA==', alt: '' } }).render(base);
  t.match(decorative, /<img class="logo" src="data:image\/png;base64,AA==" alt="">/, 'no alt text: decorative');
});

t.test('operator CSS follows the built-in sheet and both hashes are in the CSP', async (t) => {
  const page = createLoginPage({ ...branded, logo: null });
  const html = page.render(base);
  const styles = stylesOf(html);
  t.equal(styles.length, 2);
  t.equal(styles[0], PAGE_STYLE, 'built-in first');
  t.equal(styles[1], branded.css, 'operator CSS second, verbatim, so it overrides');
  t.same(directives(page.csp).get('style-src'), styles.map(hashOf), 'every style element allowed, in order');
  t.notOk(directives(page.csp).has('img-src'), 'no img-src without a logo');
});

t.test('a template gets every placeholder, escaped or built from escaped text', async (t) => {
  const template = [
    '<!doctype html><html lang="de"><head><title>{{document_title}}</title>{{styles}}</head>',
    '<body><header>{{logo}}</header><main><h1>{{title}}</h1>{{notice}}{{error}}{{form}}</main>',
    '<footer>{{title}} &copy; ACME</footer></body></html>',
  ].join('\n');
  const page = createLoginPage({ ...branded, template });
  const evil = '<script>alert(1)</script>';
  const html = page.render({ ...base, title: `Acme ${evil}`, username: evil, error: evil, notice: evil, invalid: true });
  t.notMatch(html, /<script/, 'nothing hostile survives');
  t.match(html, /^<!doctype html><html lang="de">/, 'the template owns the document');
  t.match(html, /<title>Error: &lt;script&gt;alert\(1\)&lt;\/script&gt; – Acme &lt;script&gt;/);
  t.equal(html.match(/Acme &lt;script&gt;alert\(1\)&lt;\/script&gt;/g)?.length, 3, 'title in <title>, <h1> and footer');
  t.match(html, /<header><img class="logo" src="data:image\/svg\+xml;base64,[^"]+" alt="ACME &quot;Corp&quot;"><\/header>/);
  t.match(html, /<p id="login-notice" class="msg" role="status">&lt;script&gt;/);
  t.match(html, /<p id="login-error" class="msg error" role="alert">&lt;script&gt;/);
  t.match(html, /<form class="login" method="post" action="\/_auth\/login">/);
  t.match(inputOf(html, 'password'), /aria-invalid="true"/);
  t.notMatch(html, /\{\{[a-z_]*\}\}/, 'no placeholder left');
  t.same(directives(page.csp).get('style-src'), stylesOf(html).map(hashOf), 'the CSP allows the styles {{styles}} put in');
  const plain = page.render(base);
  t.notMatch(plain, /role="alert"|role="status"/, 'empty message placeholders leave nothing behind');
});

/** WCAG 2 relative luminance and contrast ratio. */
function contrast(a: string, b: string): number {
  const luminance = (hex: string) => {
    const full = hex.length === 4 ? hex.replace(/[0-9a-f]/gi, (c) => c + c).slice(1) : hex.slice(1);
    const [r = 0, g = 0, bl = 0] = [0, 2, 4].map((i) => parseInt(full.slice(i, i + 2), 16) / 255).map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

function palette(block: string): Record<string, string> {
  return Object.fromEntries([...block.matchAll(/--([a-z-]+):(#[0-9a-f]{3,6})/gi)].map((m) => [m[1] ?? '', m[2] ?? '']));
}

t.test('the built-in colours meet WCAG AA contrast in light and dark mode', async (t) => {
  const light = palette(/^:root\{[^}]*\}/m.exec(PAGE_STYLE)?.[0] ?? '');
  const dark = { ...light, ...palette(/prefers-color-scheme:dark\)\{:root\{[^}]*\}/.exec(PAGE_STYLE)?.[0] ?? '') };
  t.ok(Object.keys(light).length >= 10 && dark.bg !== light.bg, 'both palettes found');
  // [foreground, background, minimum]: 4.5 for text, 3 for the edges of controls and the focus ring.
  const pairs: [string, string, number][] = [
    ['fg', 'card', 4.5], ['fg', 'bg', 4.5], ['muted', 'card', 4.5], ['on-accent', 'accent', 4.5],
    ['err', 'err-bg', 4.5], ['err', 'card', 3], ['field', 'card', 3], ['field', 'bg', 3], ['accent', 'card', 3],
  ];
  for (const [mode, colours] of [['light', light], ['dark', dark]] as const) {
    for (const [fg, bg, min] of pairs) {
      const a = colours[fg];
      const b = colours[bg];
      if (!a || !b) {
        t.fail(`${mode}: --${fg} or --${bg} missing`);
        continue;
      }
      const ratio = contrast(a, b);
      t.ok(ratio >= min, `${mode}: --${fg} on --${bg} is ${ratio.toFixed(2)}:1 (at least ${min}:1)`);
    }
  }
  t.match(PAGE_STYLE, /input\{[^}]*border:1px solid var\(--field\)/, 'inputs are edged with the contrasting colour');
  t.match(PAGE_STYLE, /input:focus-visible,button:focus-visible\{outline:3px solid var\(--accent\)/, 'visible focus ring');
});
