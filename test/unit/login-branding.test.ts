// Login-page branding files (GATEWAY_LOGIN_LOGO_FILE, _LOGO_ALT, _CSS_FILE, _TEMPLATE_FILE) read
// through loadConfig, as at start-up: good files load, and every kind of bad file is one config
// line naming the variable, all reported together.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { MAX_CSS_BYTES, MAX_LOGO_BYTES, MAX_TEMPLATE_BYTES, sniffImage } from '../../src/login/login-branding.js';
import { ConfigError, loadConfig } from '../../src/config/config.js';

/** A valid 1×1 PNG. */
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64');
const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00]);
const SVG = '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40"><rect width="120" height="40" fill="#123"/></svg>\n';
const TEMPLATE = '<!doctype html><html lang="en"><head><title>{{document_title}}</title>{{styles}}</head><body>{{logo}}<h1>{{title}}</h1>{{notice}}{{error}}{{form}}</body></html>';

const dir = mkdtempSync(join(tmpdir(), 'sgw-branding-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

t.test('no branding by default', async (t) => {
  t.same(loadConfig({}).loginBranding, { logo: null, css: null, template: null });
});

t.test('a PNG, JPEG or SVG logo becomes a data: URI of the right type', async (t) => {
  const png = loadConfig({ GATEWAY_LOGIN_LOGO_FILE: file('logo.png', PNG), GATEWAY_LOGIN_LOGO_ALT: 'ACME' }).loginBranding.logo;
  t.same(png, { type: 'image/png', dataUri: `data:image/png;base64,${PNG.toString('base64')}`, alt: 'ACME' });
  const jpeg = loadConfig({ GATEWAY_LOGIN_LOGO_FILE: file('logo.JPEG', JPEG) }).loginBranding.logo;
  t.equal(jpeg?.type, 'image/jpeg', 'extension case does not matter');
  t.equal(jpeg?.alt, '', 'no alt text: decorative');
  const svg = loadConfig({ GATEWAY_LOGIN_LOGO_FILE: file('logo.svg', SVG) }).loginBranding.logo;
  t.equal(svg?.dataUri, `data:image/svg+xml;base64,${Buffer.from(SVG).toString('base64')}`);
});

t.test('image sniffing', async (t) => {
  t.equal(sniffImage(PNG), 'image/png');
  t.equal(sniffImage(JPEG), 'image/jpeg');
  t.equal(sniffImage(Buffer.from(SVG)), 'image/svg+xml');
  t.equal(sniffImage(Buffer.from('<html><body>not an image</body></html>')), null);
  t.equal(sniffImage(Buffer.from('GIF89a')), null);
});

t.test('CSS is read with line endings normalised (the browser hashes it that way)', async (t) => {
  const css = loadConfig({ GATEWAY_LOGIN_CSS_FILE: file('brand.css', ':root{--accent:#7a1fa2}\r\nh1{color:red}\r\n') }).loginBranding.css;
  t.equal(css, ':root{--accent:#7a1fa2}\nh1{color:red}\n');
});

t.test('a template with the required placeholders loads', async (t) => {
  const branding = loadConfig({
    GATEWAY_LOGIN_TEMPLATE_FILE: file('ok.html', TEMPLATE),
    GATEWAY_LOGIN_LOGO_FILE: file('t.svg', SVG),
    GATEWAY_LOGIN_CSS_FILE: file('t.css', 'h1{color:red}'),
  }).loginBranding;
  t.equal(branding.template, TEMPLATE);
  const minimal = '<!doctype html><title>x</title>{{error}}{{form}}';
  t.equal(loadConfig({ GATEWAY_LOGIN_TEMPLATE_FILE: file('minimal.html', minimal) }).loginBranding.template, minimal);
});

t.test('every bad file is one line naming its variable, all at once', async (t) => {
  mkdirSync(join(dir, 'a-directory.png'));
  const cases: [string, Record<string, string>, RegExp][] = [
    ['missing logo', { GATEWAY_LOGIN_LOGO_FILE: join(dir, 'nope.png') }, /^GATEWAY_LOGIN_LOGO_FILE: cannot read .*nope\.png \(ENOENT\)$/],
    ['wrong extension', { GATEWAY_LOGIN_LOGO_FILE: file('logo.gif', 'GIF89a') }, /^GATEWAY_LOGIN_LOGO_FILE: .*logo\.gif must be a \.png, \.svg or \.jpg file$/],
    ['content not matching the extension', { GATEWAY_LOGIN_LOGO_FILE: file('fake.png', SVG) }, /^GATEWAY_LOGIN_LOGO_FILE: .*fake\.png does not contain PNG data$/],
    ['HTML named .svg', { GATEWAY_LOGIN_LOGO_FILE: file('page.svg', '<html>hi</html>') }, /^GATEWAY_LOGIN_LOGO_FILE: .*page\.svg does not contain SVG data$/],
    ['a directory', { GATEWAY_LOGIN_LOGO_FILE: join(dir, 'a-directory.png') }, /^GATEWAY_LOGIN_LOGO_FILE: .*a-directory\.png is not a regular file$/],
    ['empty logo', { GATEWAY_LOGIN_LOGO_FILE: file('empty.png', '') }, /^GATEWAY_LOGIN_LOGO_FILE: .*empty\.png is empty$/],
    ['logo too large', { GATEWAY_LOGIN_LOGO_FILE: file('big.png', Buffer.concat([PNG, Buffer.alloc(MAX_LOGO_BYTES)])) }, /^GATEWAY_LOGIN_LOGO_FILE: .*big\.png is 101 KiB; at most 100 KiB \(it is inlined into every login page\)$/],
    ['alt without logo', { GATEWAY_LOGIN_LOGO_ALT: 'ACME' }, /^GATEWAY_LOGIN_LOGO_ALT is set but GATEWAY_LOGIN_LOGO_FILE is not$/],
    ['CSS too large', { GATEWAY_LOGIN_CSS_FILE: file('big.css', 'a'.repeat(MAX_CSS_BYTES + 1)) }, /^GATEWAY_LOGIN_CSS_FILE: .*big\.css is 65 KiB; at most 64 KiB/],
    ['CSS ending the style element', { GATEWAY_LOGIN_CSS_FILE: file('evil.css', 'h1{}</STYLE><script>x</script>') }, /^GATEWAY_LOGIN_CSS_FILE: .*evil\.css contains "<\/style", which would end the page's <style> element$/],
    ['binary CSS', { GATEWAY_LOGIN_CSS_FILE: file('bin.css', PNG) }, /^GATEWAY_LOGIN_CSS_FILE: .*bin\.css is not a text file$/],
    ['missing template', { GATEWAY_LOGIN_TEMPLATE_FILE: join(dir, 'nope.html') }, /^GATEWAY_LOGIN_TEMPLATE_FILE: cannot read .*nope\.html \(ENOENT\)$/],
    ['template too large', { GATEWAY_LOGIN_TEMPLATE_FILE: file('big.html', `{{error}}{{form}}${' '.repeat(MAX_TEMPLATE_BYTES)}`) }, /^GATEWAY_LOGIN_TEMPLATE_FILE: .*big\.html is 65 KiB; at most 64 KiB/],
    ['template without the form', { GATEWAY_LOGIN_TEMPLATE_FILE: file('noform.html', '<h1>{{title}}</h1>{{error}}') }, /^GATEWAY_LOGIN_TEMPLATE_FILE: .*noform\.html has no \{\{form\}\} placeholder \(the sign-in form goes there\)$/],
    ['template without the error', { GATEWAY_LOGIN_TEMPLATE_FILE: file('noerror.html', '{{form}}') }, /^GATEWAY_LOGIN_TEMPLATE_FILE: .*noerror\.html has no \{\{error\}\} placeholder \(sign-in errors are shown there\)$/],
    ['unknown placeholder', { GATEWAY_LOGIN_TEMPLATE_FILE: file('typo.html', '{{error}}{{form}}{{Title}}') }, /^GATEWAY_LOGIN_TEMPLATE_FILE: .*typo\.html has an unknown placeholder \{\{Title\}\} \(known: \{\{document_title\}\}, \{\{title\}\}, .*\{\{form\}\}\)$/],
    ['spaced placeholder', { GATEWAY_LOGIN_TEMPLATE_FILE: file('spaced.html', '{{error}}{{form}}{{ title }}') }, /unknown placeholder \{\{ title \}\}/],
    ['form twice', { GATEWAY_LOGIN_TEMPLATE_FILE: file('twice.html', '{{error}}{{form}}{{form}}') }, /^GATEWAY_LOGIN_TEMPLATE_FILE: .*twice\.html uses \{\{form\}\} more than once$/],
    ['script in template', { GATEWAY_LOGIN_TEMPLATE_FILE: file('script.html', '{{error}}{{form}}<SCRIPT src="x.js"></SCRIPT>') }, /script\.html contains <script>: the login page allows no scripts/],
    ['style in template', { GATEWAY_LOGIN_TEMPLATE_FILE: file('style.html', '<style>h1{}</style>{{error}}{{form}}') }, /style\.html contains <style>: put styles in GATEWAY_LOGIN_CSS_FILE/],
    ['referrer policy in template', { GATEWAY_LOGIN_TEMPLATE_FILE: file('referrer.html', '<META content="no-referrer" name=referrer>{{error}}{{form}}') }, /referrer\.html sets a referrer policy/],
    ['link in template', { GATEWAY_LOGIN_TEMPLATE_FILE: file('link.html', '<link rel="stylesheet" href="/x.css">{{error}}{{form}}') }, /link\.html contains <link>/],
    ['logo the template leaves out', { GATEWAY_LOGIN_TEMPLATE_FILE: file('nologo.html', '{{error}}{{form}}'), GATEWAY_LOGIN_LOGO_FILE: file('l.png', PNG) }, /^GATEWAY_LOGIN_LOGO_FILE is set but GATEWAY_LOGIN_TEMPLATE_FILE has no \{\{logo\}\} placeholder$/],
    ['CSS the template leaves out', { GATEWAY_LOGIN_TEMPLATE_FILE: file('nostyles.html', '{{error}}{{form}}'), GATEWAY_LOGIN_CSS_FILE: file('c.css', 'h1{}') }, /^GATEWAY_LOGIN_CSS_FILE is set but GATEWAY_LOGIN_TEMPLATE_FILE has no \{\{styles\}\} placeholder$/],
  ];
  for (const [name, env, pattern] of cases) {
    const problems = problemsOf(env);
    t.equal(problems.length, 1, `${name}: one problem: ${JSON.stringify(problems)}`);
    t.match(problems[0] ?? '', pattern, name);
    t.notMatch(problems[0] ?? '', /\n/, `${name}: one line`);
  }
  // A start-up with several bad files reports them all in one go.
  const all = problemsOf({
    GATEWAY_LOGIN_LOGO_FILE: join(dir, 'nope.png'),
    GATEWAY_LOGIN_CSS_FILE: join(dir, 'nope.css'),
    GATEWAY_LOGIN_TEMPLATE_FILE: file('noform2.html', '{{error}}'),
    GATEWAY_PORT: 'eighty',
  });
  t.equal(all.length, 4, JSON.stringify(all));
  for (const variable of ['GATEWAY_LOGIN_LOGO_FILE', 'GATEWAY_LOGIN_CSS_FILE', 'GATEWAY_LOGIN_TEMPLATE_FILE', 'GATEWAY_PORT']) {
    t.ok(all.some((p) => p.startsWith(variable)), `${variable} reported`);
  }
});
