import t from 'tap';
import {
  MAX_REDIRECT_LENGTH,
  MAX_URL_LENGTH,
  createPathMatcher,
  normaliseRequestUrl,
  safeRedirectTarget,
  queryRoutedPath,
  withoutPathParameters,
  withoutFormatSuffix,
  withoutScriptName,
  withoutWindowsNameTails,
  withoutFacesPrefix,
  otherReadings,
} from '../../src/access/paths.js';

// [rawUrl, expected path, expected url (defaults to expected path)]
const accepted: ReadonlyArray<readonly [string, string, string?]> = [
  // fast path: returned unchanged
  ['/', '/'],
  ['/a', '/a'],
  ['/a/b/', '/a/b/'],
  ['/a/b/c.html', '/a/b/c.html'],
  ['/a/...', '/a/...'],
  ['/a/.b/..c/c..', '/a/.b/..c/c..'],
  ["/a!$&'()*+,;=:@b", "/a!$&'()*+,;=:@b"],
  ['/public;jsessionid=1', '/public;jsessionid=1'],
  ['/Public', '/Public'],
  ['/~user', '/~user'],
  // query kept verbatim and not part of the path
  ['/a?x=1', '/a', '/a?x=1'],
  ['/a?x=../..', '/a', '/a?x=../..'],
  ['/a?x=%2F%2f&y=//z', '/a', '/a?x=%2F%2f&y=//z'],
  ['/a?', '/a', '/a?'],
  ['/?next=/b', '/', '/?next=/b'],
  ['/a?x=a\\b"<>', '/a', '/a?x=a\\b"<>'],
  ['/a?x=1?y=2', '/a', '/a?x=1?y=2'],
  ['/a/./b//c?x=1', '/a/b/c', '/a/b/c?x=1'],
  ['/a?x=é', '/a', '/a?x=%C3%A9'],
  // fragment dropped, also when it contains "?"
  ['/a#frag', '/a'],
  ['/a?x=1#frag', '/a', '/a?x=1'],
  ['/a#b?c', '/a'],
  ['/a/#/../..', '/a/'],
  // repeated slashes
  ['//a///b', '/a/b'],
  ['//', '/'],
  ['/a//', '/a/'],
  ['///?q', '/', '/?q'],
  // dot segments (RFC 3986 §5.2.4)
  ['/.', '/'],
  ['/./', '/'],
  ['/a/..', '/'],
  ['/a/../', '/'],
  ['/a/./b', '/a/b'],
  ['/a/b/.', '/a/b/'],
  ['/a/b/..', '/a/'],
  ['/a/b/../c', '/a/c'],
  ['/a/b/c/./../../g', '/a/g'],
  ['/a/b/../../c', '/c'],
  ['/public/../admin', '/admin'],
  ['//public/../admin', '/admin'],
  ['/public/./../admin/', '/admin/'],
  ['/a//..', '/'], // slashes collapse before dot removal
  // percent-decoding of unreserved characters only, case-insensitive hex
  ['/%7Euser', '/~user'],
  ['/%7euser', '/~user'],
  ['/%41%5a%61%7A%30%39%2D%2E%5F', '/AZaz09-._'],
  ['/public/%2e%2e/admin', '/admin'],
  ['/public/%2E%2E/admin', '/admin'],
  ['/public/.%2e/admin', '/admin'],
  ['/a/%2e/b', '/a/b'],
  ['/a/%2e%2e%2e', '/a/...'],
  ['/a%20b', '/a%20b'],
  ['/a%3ab', '/a%3Ab'],
  ['/a%3a%40%3F%23', '/a%3A%40%3F%23'],
  ['/a%c3%a9', '/a%C3%A9'],
  ['/a%25', '/a%25'],
  ['/a%252e%252e/b', '/a%252e%252e/b'], // no double decoding
  ['/a%252F', '/a%252F'],
  ['/a%0A', '/a%0A'], // encoded controls other than NUL stay encoded
  // raw characters that are not legal in a path get encoded (UTF-8)
  ['/a b', '/a%20b'],
  ['/a"<>`{|}^[]', '/a%22%3C%3E%60%7B%7C%7D%5E%5B%5D'],
  ['/café', '/caf%C3%A9'],
  ['/日本', '/%E6%97%A5%E6%9C%AC'],
  ['/😀', '/%F0%9F%98%80'],
  ['/a%C3%A9/é', '/a%C3%A9/%C3%A9'],
];

// [rawUrl, reason substring]
const rejected: ReadonlyArray<readonly [string, string]> = [
  ['', 'origin-form'],
  ['*', 'origin-form'],
  ['a/b', 'origin-form'],
  ['http://host/a', 'origin-form'],
  ['HTTP://host/a', 'origin-form'],
  ['?x=1', 'origin-form'],
  ['\\a', 'origin-form'],
  // encoded separators
  ['/public%2f..%2fadmin', 'encoded slash'],
  ['/public%2F..%2Fadmin', 'encoded slash'],
  ['/%2F%2Fevil', 'encoded slash'],
  ['/a%5cb', 'encoded backslash'],
  ['/a%5Cb', 'encoded backslash'],
  ['/a\\b', 'backslash'],
  ['/a/..\\admin', 'backslash'],
  // NUL and controls
  ['/a%00', 'NUL'],
  ['/a\u0000b', 'control'],
  ['/a\tb', 'control'],
  ['/a\rb', 'control'],
  ['/a\nb', 'control'],
  ['/a\u001fb', 'control'],
  ['/a\u007fb', 'control'],
  ['/a?x=\r\nSet-Cookie:x', 'control'],
  ['/a#\n', 'control'],
  // dot segments above the root
  ['/..', 'escapes root'],
  ['/../', 'escapes root'],
  ['/../a', 'escapes root'],
  ['/a/../..', 'escapes root'],
  ['/a/../../b', 'escapes root'],
  ['/a/%2E%2E/%2e%2e/..', 'escapes root'],
  ['/%2e%2e', 'escapes root'],
  ['/.%2E/etc/passwd', 'escapes root'],
  ['//..', 'escapes root'],
  // dot segments with path parameters (Tomcat-style `..;`)
  ['/public/..;/admin', 'parameters'],
  ['/public/..;x=1/admin', 'parameters'],
  ['/public/.;/admin', 'parameters'],
  ['/public/%2e%2e;/admin', 'parameters'],
  ['/public/..%3b/admin', 'parameters'],
  // malformed percent-encoding
  ['/a%2x', 'percent'],
  ['/a%', 'percent'],
  ['/a%2', 'percent'],
  ['/a%%32%65', 'percent'],
  ['/a%u002e', 'percent'],
  ['/a%g0', 'percent'],
  // unencodable unicode
  ['/a\ud800', 'unicode'],
  ['/a\udc00b', 'unicode'],
  ['/a?x=\ud800', 'unicode'],
  // length
  ['/' + 'a'.repeat(MAX_URL_LENGTH), 'too long'],
];

t.test('normaliseRequestUrl accepts and normalises', async (t) => {
  for (const [raw, path, url = path] of accepted) {
    t.strictSame(normaliseRequestUrl(raw), { ok: true, path, url }, JSON.stringify(raw));
  }
});

t.test('normaliseRequestUrl rejects', async (t) => {
  for (const [raw, reason] of rejected) {
    const result = normaliseRequestUrl(raw);
    t.equal(result.ok, false, `${JSON.stringify(raw.slice(0, 60))} is rejected`);
    if (!result.ok) t.match(result.reason, reason, `${JSON.stringify(raw.slice(0, 60))} reason`);
  }
});

t.test('normaliseRequestUrl output is canonical (idempotent)', async (t) => {
  for (const [raw] of accepted) {
    const first = normaliseRequestUrl(raw);
    if (!first.ok) {
      t.fail(`${JSON.stringify(raw)} should be accepted`);
      continue;
    }
    t.strictSame(normaliseRequestUrl(first.url), first, `${JSON.stringify(raw)} → ${first.url}`);
    t.ok(first.url.startsWith(first.path), 'url begins with path');
    t.notMatch(first.path, /\/\//, 'no repeated slash');
  }
});

t.test('normaliseRequestUrl length bound is inclusive', async (t) => {
  const longest = '/' + 'a'.repeat(MAX_URL_LENGTH - 1);
  t.strictSame(normaliseRequestUrl(longest), { ok: true, path: longest, url: longest });
  const longQuery = '/a?' + 'q'.repeat(MAX_URL_LENGTH);
  t.equal(normaliseRequestUrl(longQuery).ok, false, 'the bound covers the query too');
});

t.test('normaliseRequestUrl fast path returns the input string', async (t) => {
  const raw = '/app/static/main.js?v=123';
  const result = normaliseRequestUrl(raw);
  t.ok(result.ok);
  if (result.ok) t.equal(result.url, raw);
});

// [prefixes, path, expected]
const matches: ReadonlyArray<readonly [readonly string[], string, boolean]> = [
  [[], '/', false],
  [[], '/public', false],
  [['/public'], '/public', true],
  [['/public'], '/public/', true],
  [['/public'], '/public/x', true],
  [['/public'], '/public/x/y.css', true],
  [['/public'], '/publicity', false],
  [['/public'], '/public.html', false],
  [['/public'], '/Public', false],
  [['/public'], '/PUBLIC/x', false],
  [['/public'], '/', false],
  [['/public'], '/pub', false],
  [['/public'], '/admin/public', false],
  [['/public'], '/admin', false],
  [['/static/'], '/static', true],
  [['/static/'], '/static/', true],
  [['/static/'], '/static/app.js', true],
  [['/static/'], '/staticfile', false],
  [['/'], '/', true],
  [['/'], '/anything/at/all', true],
  [['/a/b'], '/a', false],
  [['/a/b'], '/a/', false],
  [['/a/b'], '/a/b', true],
  [['/a/b'], '/a/bc', false],
  [['/a/b'], '/a/b/c', true],
  [['/login', '/static/', '/healthz'], '/healthz', true],
  [['/login', '/static/', '/healthz'], '/static/x', true],
  [['/login', '/static/', '/healthz'], '/login', true],
  [['/login', '/static/', '/healthz'], '/loginx', false],
  [['/login', '/static/', '/healthz'], '/admin', false],
  [['/login', '/login/'], '/login/x', true],
  [['/admin', '/'], '/admin/x', true],
  // prefixes are normalised at creation
  [['//public//'], '/public/x', true],
  [['/a/./b/../public'], '/a/public/x', true],
  [['/%7Euser'], '/~user/x', true],
  [['/a%c3%a9'], '/a%C3%A9', true],
  [['/café'], '/caf%C3%A9/x', true],
  [['/a b'], '/a%20b', true],
  [['/.'], '/x', true],
];

t.test('createPathMatcher', async (t) => {
  for (const [prefixes, path, expected] of matches) {
    t.equal(createPathMatcher(prefixes)(path), expected, `${JSON.stringify(prefixes)} vs ${path}`);
  }
});

t.test('createPathMatcher end-to-end with normaliseRequestUrl', async (t) => {
  const isPublic = createPathMatcher(['/public', '/static/']);
  const cases: ReadonlyArray<readonly [string, boolean | 'rejected']> = [
    ['/public/../admin', false],
    ['/public/%2e%2e/admin', false],
    ['//public/../admin', false],
    ['/public%2f..%2fadmin', 'rejected'],
    ['/public/..;/admin', 'rejected'],
    ['/static/../../etc/passwd', 'rejected'],
    ['/public/./x', true],
    ['/%70ublic/x', true],
    ['//static//x', true],
    ['/publicity', false],
  ];
  for (const [raw, expected] of cases) {
    const n = normaliseRequestUrl(raw);
    t.equal(n.ok ? isPublic(n.path) : 'rejected', expected, raw);
  }
});

t.test('createPathMatcher rejects bad prefixes, naming them', async (t) => {
  const bad = ['', 'public', '*', 'http://x/', '/a/../..', '/..', '/a%2Fb', '/a%5c', '/a\\b', '/a%zz', '/a\nb', '/a?x', '/a#x'];
  for (const prefix of bad) {
    t.throws(() => createPathMatcher(['/ok', prefix]), { message: JSON.stringify(prefix) }, JSON.stringify(prefix));
  }
  t.throws(() => createPathMatcher([42 as unknown as string]), /must start with/);
});

// [rd, expected] (fallback '/')
const redirects: ReadonlyArray<readonly [unknown, string]> = [
  ['/', '/'],
  ['/dashboard', '/dashboard'],
  ['/a/b?x=1&y=2', '/a/b?x=1&y=2'],
  ['/a/./b/../c//d', '/a/c/d'],
  ['/a?next=//evil', '/a?next=//evil'],
  ['/a#section', '/a#section'],
  ['/a?x=1#s?t', '/a?x=1#s?t'],
  ['/%7Euser', '/~user'],
  ['/café', '/caf%C3%A9'],
  ['/a#é', '/a#%C3%A9'],
  ['/a?q=é', '/a?q=%C3%A9'],
  ['/.//evil', '/evil'],
  ['/..//evil', '/'],
  ['/%2e%2e/evil', '/'],
  // off-origin or ambiguous → fallback
  ['//evil', '/'],
  ['//evil.com/path', '/'],
  ['///evil', '/'],
  ['/\\evil', '/'],
  ['/\\/evil', '/'],
  ['/a\\b', '/'],
  ['https://evil', '/'],
  ['http:/evil', '/'],
  ['evil.com', '/'],
  ['%2F%2Fevil', '/'],
  ['/%2F%2Fevil', '/'],
  ['/%2fevil', '/'],
  ['/%5Cevil', '/'],
  ['javascript:alert(1)', '/'],
  ['JaVaScRiPt:alert(1)', '/'],
  ['data:text/html,x', '/'],
  // whitespace and control characters anywhere, never trimmed
  ['\t/evil', '/'],
  [' /evil', '/'],
  ['/evil ', '/'],
  ['/ev\nil', '/'],
  ['/ev\ril', '/'],
  ['/\t/evil', '/'],
  ['/a\u0000', '/'],
  ['/a\u007f', '/'],
  ['/a\u0085', '/'],
  ['/a\u00a0', '/'],
  ['/a\u200b', '/'],
  ['/a\u202e', '/'],
  ['/a\ufeff', '/'],
  ['/a#x\ny', '/'],
  ['/a#\u0000', '/'],
  // malformed
  ['/a%2x', '/'],
  ['/a%00', '/'],
  ['/..', '/'],
  ['/a\ud800', '/'],
  ['/a#\ud800', '/'],
  ['/a/..;/b', '/'],
  // length and type
  ['/' + 'a'.repeat(MAX_REDIRECT_LENGTH - 1), '/' + 'a'.repeat(MAX_REDIRECT_LENGTH - 1)],
  ['/' + 'a'.repeat(MAX_REDIRECT_LENGTH), '/'],
  ['', '/'],
  [undefined, '/'],
  [null, '/'],
  [42, '/'],
  [['/a'], '/'],
  [{ toString: () => '/a' }, '/'],
];

t.test('safeRedirectTarget', async (t) => {
  for (const [rd, expected] of redirects) {
    const label = typeof rd === 'string' ? JSON.stringify(rd.slice(0, 60)) : String(rd);
    t.equal(safeRedirectTarget(rd), expected, label);
  }
});

t.test('safeRedirectTarget uses the given fallback', async (t) => {
  t.equal(safeRedirectTarget('//evil', '/home'), '/home');
  t.equal(safeRedirectTarget(undefined, '/home'), '/home');
  t.equal(safeRedirectTarget('/ok', '/home'), '/ok');
});

t.test('safeRedirectTarget output is always a same-origin path', async (t) => {
  for (const [rd] of redirects) {
    const target = safeRedirectTarget(rd, '/fallback');
    t.ok(target.startsWith('/') && !target.startsWith('//'), `${JSON.stringify(target.slice(0, 60))} is same-origin`);
    t.notMatch(target, /[\\\s]/, 'no backslash or whitespace');
    t.notMatch(target, /[^!-~]/, 'printable ASCII only (header-safe)');
  }
});

// [normalised path, the path a Servlet container maps it to (parameters removed)]
const withoutParameters: ReadonlyArray<readonly [string, string]> = [
  ['/admin/secret', '/admin/secret'],
  ['/admin;x/secret', '/admin/secret'],
  ['/admin;', '/admin'],
  ['/admin;/', '/admin/'],
  ['/admin;x', '/admin'],
  ['/admin;a=1;b=2/x;y/z', '/admin/x/z'],
  ['/;x/admin', '/admin'],
  ['/;x', '/'],
  ['/;', '/'],
  ['/a;x//b', '/a/b'],
  ['/a/;x/b', '/a/b'],
  ['/internal;a/b', '/internal/b'],
  ['/logout;jsessionid=abc', '/logout'],
  // an encoded `;` counts too: a framework decoding before stripping must not see more than the rules did
  ['/admin%3Bx/secret', '/admin/secret'],
  ['/admin%3B', '/admin'],
  ['/a%3Bx;y/b', '/a/b'],
  // dot segments that appear once parameters are gone are resolved (Tomcat: `..;` is `..`)
  ['/public/..;/admin', '/admin'],
  ['/public/.;x/admin', '/public/admin'],
  ['/public/x/..%3B/admin', '/public/admin'],
  ['/..;/admin', '/admin'],
  ['/a/b/..;', '/a/'],
  // no parameter: unchanged
  ['/', '/'],
  ['/a/b/', '/a/b/'],
  ['/a%3Cb', '/a%3Cb'],
  ['/a=b,c', '/a=b,c'],
];

t.test('withoutPathParameters: the Servlet reading of a path', async (t) => {
  for (const [path, expected] of withoutParameters) t.equal(withoutPathParameters(path), expected, path);
});

t.test('withoutPathParameters of a normalised path is normalised, and has no parameter', async (t) => {
  for (const raw of ['/admin;x/secret', '/;x/admin', '/a;x//b', '/a/;x/b/', '/x;y/z%3Bw/', '/a;.;/b']) {
    const normalised = normaliseRequestUrl(raw);
    if (!normalised.ok) {
      t.fail(`${raw}: ${normalised.reason}`);
      continue;
    }
    const reading = withoutPathParameters(normalised.path);
    t.notMatch(reading, /;|%3B/, raw);
    const again = normaliseRequestUrl(reading);
    t.ok(again.ok && again.path === reading, `${raw} -> ${reading} is normalised`);
  }
});

t.test('withoutPathParameters returns the same string when there is nothing to remove', async (t) => {
  const path = '/a/b/c';
  t.equal(withoutPathParameters(path), path);
});

t.test('withoutScriptName: the path a PHP front controller routes', async (t) => {
  const cases: Array<[string, string]> = [
    ['/index.php/admin', '/admin'],
    ['/index.php/admin/users', '/admin/users'],
    ['/app/index.php/admin/x', '/app/admin/x'],
    ['/INDEX.PHP/admin', '/admin'],
    ['/index.php/', '/'],
    ['/a.php/b.php/c', '/b.php/c'],
    ['/index.php', '/index.php'],
    ['/admin', '/admin'],
    ['/files/report.php.txt/x', '/files/report.php.txt/x'],
    ['/v1.2/php/x', '/v1.2/php/x'],
  ];
  for (const [path, reading] of cases) t.equal(withoutScriptName(path), reading, path);
  const plain = '/static/app.js';
  t.equal(withoutScriptName(plain), plain, 'unchanged: the same string');
});

t.test('withoutFormatSuffix: the path a format-suffix router (Rails, older Spring MVC) routes', async (t) => {
  const cases: Array<[string, string]> = [
    ['/admin.json', '/admin'],
    ['/admin.json/', '/admin'],
    ['/users/1.xml', '/users/1'],
    ['/admin.tar.gz', '/admin'],
    ['/v1.2/admin', '/v1.2/admin'],
    ['/.well-known', '/.well-known'],
    ['/a/.hidden', '/a/.hidden'],
    ['/a/b.', '/a/b'],
    ['/', '/'],
    ['/admin', '/admin'],
  ];
  for (const [path, reading] of cases) t.equal(withoutFormatSuffix(path), reading, path);
  const plain = '/admin/users';
  t.equal(withoutFormatSuffix(plain), plain, 'unchanged: the same string');
});

t.test('otherReadings: every other path an app may route a request as', async (t) => {
  t.equal(otherReadings('/admin/users'), otherReadings('/reports/x'), 'none: one shared empty list, nothing allocated');
  t.same(otherReadings('/admin/users'), []);
  t.same(otherReadings('/admin;x/users'), [{ path: '/admin/users', explicitOnly: false }]);
  t.same(otherReadings('/index.php/admin'), [{ path: '/admin', explicitOnly: true }]);
  t.same(otherReadings('/index.php'), [{ path: '/index', explicitOnly: true }]);
  t.same(otherReadings('/admin.json;x'), [{ path: '/admin.json', explicitOnly: false }, { path: '/admin', explicitOnly: true }]);
  t.same(otherReadings('/static/app.js'), [{ path: '/static/app', explicitOnly: true }]);
  t.same(otherReadings('/admin./x'), [{ path: '/admin/x', explicitOnly: true }]);
  t.same(otherReadings('/admin%20/x'), [{ path: '/admin/x', explicitOnly: true }]);
  t.same(otherReadings('/admin.;x/y'), [{ path: '/admin./y', explicitOnly: false }, { path: '/admin/y', explicitOnly: true }]);
});

t.test('withoutFacesPrefix: the view a JSF FacesServlet mapped to /faces/* renders', async (t) => {
  const cases: Array<[string, string]> = [
    ['/faces/admin/users.xhtml', '/admin/users.xhtml'],
    ['/faces/admin/', '/admin/'],
    ['/app/faces/admin', '/app/admin'],
    ['/faces/', '/'],
    ['/faces', '/faces'],
    ['/Faces/admin', '/Faces/admin'],
    ['/surfaces/admin', '/surfaces/admin'],
  ];
  for (const [path, reading] of cases) t.equal(withoutFacesPrefix(path), reading, path);
  t.same(otherReadings('/faces/admin/users'), [{ path: '/admin/users', explicitOnly: true }]);
  t.same(otherReadings('/faces/admin;jsessionid=1/users'), [{ path: '/faces/admin/users', explicitOnly: false }, { path: '/admin/users', explicitOnly: true }]);
});

t.test('withoutWindowsNameTails: the path as Windows (IIS) opens it', async (t) => {
  const cases: Array<[string, string]> = [
    ['/admin./x', '/admin/x'],
    ['/admin.../x', '/admin/x'],
    ['/admin%20/x', '/admin/x'],
    ['/admin.%20.%20/x', '/admin/x'],
    ['/admin::$INDEX_ALLOCATION/x', '/admin/x'],
    ['/admin:$I30:$INDEX_ALLOCATION/x', '/admin/x'],
    ['/web.config::$DATA', '/web.config'],
    ['/admin/x.', '/admin/x'],
    ['/admin/...', '/admin'],
    ['/...', '/'],
    ['/admin/', '/admin/'],
    ['/a.b/c%20d/e', '/a.b/c%20d/e'],
    ['/%20admin/x', '/%20admin/x'],
  ];
  for (const [path, reading] of cases) t.equal(withoutWindowsNameTails(path), reading, path);
  const plain = '/static/app.js';
  t.equal(withoutWindowsNameTails(plain), plain, 'unchanged: the same string');
});

t.test('queryRoutedPath: the path a query-string router reads', async (t) => {
  const cases: Array<[string, string | null]> = [
    ['/?/admin/x', '/admin/x'],
    ['/ci/?/admin', '/ci/admin'],
    ['/ci/index.php?/admin?x=1', '/ci/admin'],
    ['/ci?/admin/../internal', '/ci/internal'],
    ['/?/%61dmin', '/admin'],
    ['/page?x=/admin', null],
    ['/page', null],
    ['/page?', null],
  ];
  for (const [url, path] of cases) {
    const routed = queryRoutedPath(url);
    t.equal(routed === null ? null : routed.ok ? routed.path : 'failed', path, url);
  }
  t.equal(queryRoutedPath('/?/a%2fb')?.ok, false, 'an encoded slash: cannot be read one way');
});
