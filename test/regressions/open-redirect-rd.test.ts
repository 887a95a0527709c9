// Attack: a link to the real login page with `rd` pointing elsewhere
// (/_auth/login?rd=//evil.example), so that after a genuine sign-in the victim lands on the
// attacker's look-alike page ("session expired, enter your password again").
// Defence: src/access/paths.ts safeRedirectTarget — only same-origin absolute paths survive;
// anything else, including what a browser would turn into another host, becomes `/`.
import t from 'tap';
import { send } from '../helpers/http.js';
import { browserLogin, hiddenField, testBed } from './setup.js';

const bed = await testBed(t, [{ username: 'alice', password: 'alice-Pw-0004' }]);
const gw = await bed.gateway();
const ORIGIN = 'https://app.example';

const EVIL = [
  '//evil.example',
  '//evil.example/path',
  '///evil.example',
  '/\\evil.example',
  '\\\\evil.example',
  '/\\/evil.example',
  'https://evil.example',
  'HTTPS://evil.example',
  'http:evil.example',
  'https:/evil.example',
  '%2F%2Fevil.example',
  '%2f%2fevil.example',
  '/%2F/evil.example',
  '/%5Cevil.example',
  '/\t/evil.example',
  '/\n/evil.example',
  '/\r\n/evil.example',
  '\t//evil.example',
  '//\tevil.example',
  '/ /evil.example',
  '/\u200b/evil.example',
  'javascript:alert(document.cookie)',
  'JaVaScRiPt:alert(1)',
  'data:text/html,<script>alert(1)</script>',
  'evil.example',
  `/${'a'.repeat(5_000)}`,
  `/ok?next=${'b'.repeat(3_000)}`,
];

/** Where a browser goes with this Location, resolved against the gateway's origin (WHATWG URL). */
const browserTarget = (location: string) => new URL(location, ORIGIN);

t.test('after a real sign-in, an off-site or unsafe rd always lands on /', async (t) => {
  for (const rd of EVIL) {
    const res = await browserLogin(gw, { username: 'alice', password: 'alice-Pw-0004', rd });
    const label = JSON.stringify(rd.length > 60 ? `${rd.slice(0, 20)}…(${rd.length})` : rd);
    t.equal(res.status, 303, `${label}: signed in`);
    t.equal(res.headers.location, '/', `${label}: Location is /`);
  }
});

t.test('the login page never carries an unsafe rd into its form', async (t) => {
  for (const rd of EVIL) {
    const res = await send(`${gw.url}/_auth/login?rd=${encodeURIComponent(rd)}`, { headers: { accept: 'text/html' } });
    t.equal(res.status, 200);
    t.equal(hiddenField(res.body, 'rd'), '/', `${JSON.stringify(rd.slice(0, 40))}: hidden rd is /`);
  }
});

t.test('same-origin paths are kept, and whatever is kept resolves to this origin', async (t) => {
  const cases: Array<[string, string]> = [
    ['/reports?year=2026', '/reports?year=2026'],
    ['/a/./b/../c', '/a/c'],
    ['/.//evil.example', '/evil.example'],
    ['/%09/evil.example', '/%09/evil.example'],
  ];
  for (const [rd, expected] of cases) {
    const res = await browserLogin(gw, { username: 'alice', password: 'alice-Pw-0004', rd });
    const location = res.headers.location ?? '';
    t.equal(location, expected, `${JSON.stringify(rd)} → ${expected}`);
    t.equal(browserTarget(location).origin, ORIGIN, `${JSON.stringify(rd)}: a browser stays on this origin`);
  }
});
