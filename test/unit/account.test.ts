import t from 'tap';
import { newPasswordProblem, MIN_PASSWORD_LENGTH, readCommonPasswords } from '../../src/account/common-passwords.js';
import { renderSessionsPage } from '../../src/account/account-pages.js';
import { describeClient } from '../../src/session/client.js';

t.test('client descriptions come from a fixed vocabulary, never the header text', async (t) => {
  const cases: Array<[string | undefined, string]> = [
    ['Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0', 'Firefox on Linux'],
    ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0', 'Edge on Windows'],
    ['Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15', 'Safari on macOS'],
    ['Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1', 'Safari on iOS'],
    ['Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36', 'Chrome on Android'],
    ['curl/8.11.0', 'curl'],
    ['<script>alert(1)</script>', 'Unknown client'],
    [undefined, 'Unknown client'],
  ];
  for (const [ua, expected] of cases) t.equal(describeClient(ua), expected, String(ua));
  t.equal(describeClient(`${'x'.repeat(10_000)} Firefox/1`), 'Unknown client', 'only the first 512 characters are examined');
});

t.test('new passwords: at least 12 characters and not on the common list (any case)', async (t) => {
  t.equal(MIN_PASSWORD_LENGTH, 12);
  t.equal(newPasswordProblem('elevenchars'), 'too_short');
  t.equal(newPasswordProblem('ünïcødé_pw!'), 'too_short', 'counted in characters');
  t.equal(newPasswordProblem('1qaz2wsx3edc'), 'common');
  t.equal(newPasswordProblem('Qwerty123456'), 'common');
  t.equal(newPasswordProblem('purple tractor mango 42'), null);
});

t.test('the common list read from the package\'s JSON file is the package\'s own dictionary, filtered', async (t) => {
  // The gateway reads the plain file rather than importing the package (memory); the package's
  // entry point is the reference, so a release that changes the file's contents or place fails here.
  const { dictionary } = await import('@zxcvbn-ts/language-common');
  const expected = new Set(dictionary['passwords-common'].filter((p) => [...p].length >= MIN_PASSWORD_LENGTH).map((p) => p.toLowerCase()));
  const read = readCommonPasswords();
  t.ok(read.size > 200, `${read.size} entries of ${MIN_PASSWORD_LENGTH}+ characters`);
  t.same([...read].sort(), [...expected].sort());
  t.equal(readCommonPasswords(1).size, new Set(dictionary['passwords-common'].map((p) => p.toLowerCase())).size, 'every entry is read');
});

t.test('the sessions page escapes what it shows and offers a form per other session', async (t) => {
  const html = renderSessionsPage({
    passwordPath: '/_auth/account/password', sessionsPath: '/_auth/account/sessions', logoutPath: '/_auth/logout', user: '<b>eve</b>', csrfToken: 'tok',
    sessions: [
      { handle: 'AAAAAAAAAAAA', client: 'Firefox on Linux', created: 'c1', lastSeen: 'l1', current: true },
      { handle: 'BBBBBBBBBBBB', client: 'curl', created: 'c2', lastSeen: 'l2', current: false },
    ],
  });
  t.notMatch(html, /<b>eve/);
  t.match(html, /&lt;b&gt;eve/);
  t.match(html, /name="session" value="BBBBBBBBBBBB"/);
  t.notMatch(html, /value="AAAAAAAAAAAA"/, 'no sign-out button for this session');
  t.notMatch(html, /<script/);
});
