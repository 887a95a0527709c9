// Attack: a rule keeps one event of a team calendar (`/team/cal/salaries.ics`) to `hr`. The app
// honours method-override headers (Rails, Express, Spring, Laravel do; so does any app behind a
// balancer that passes them on, which is why a trusted proxy's copies reach it). A signed-in user
// sends `POST /carol/cal/dentist.ics` (their own calendar) with `X-HTTP-Method-Override: REPORT` and
// a `calendar-multiget` body naming the salaries event: the app runs a REPORT and answers with every
// event the body names (SabreDAV serves an href anywhere under its base). The method the header
// names was judged (a REPORT in carol's calendar, allowed), but a POST's body was only read for
// `_method`, never for the hrefs a REPORT names; nor was a REPORT named so read as running on the
// calendar of its path.
// Defence: src/proxy/routes.ts reads a body for the paths it names when the request, or a method
// it names, is one whose body may name paths (src/access/body-paths.ts): the rules of each must
// allow it too, as for a plain REPORT (test/regressions/caldav-report-bypass.test.ts).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { login, withSession } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import type { Echo } from '../helpers/upstream.js';
import { testBed } from './setup.js';

const dir = mkdtempSync(join(tmpdir(), 'sgw-override-report-'));
const rulesFile = join(dir, 'rules.yaml');
writeFileSync(rulesFile, 'rules:\n  - { path: /team/cal/salaries.ics, policy: { groups: [hr] } }\n');

/** What an app that honours the override header runs: the method it names, on the body as sent. */
const effectiveMethod = (echo: Echo) => String(echo.headers['x-http-method-override'] ?? echo.method).toUpperCase();
const ran: Array<{ method: string; url: string; body: string }> = [];
const bed = await testBed(t, [
  { username: 'carol', password: 'carol-Pw-0031', groups: ['staff'] },
  { username: 'hazel', password: 'hazel-Pw-0031', groups: ['hr'] },
], (echo, res) => {
  ran.push({ method: effectiveMethod(echo), url: echo.url, body: echo.body });
  res.writeHead(207, { 'content-type': 'application/xml' });
  res.end('<multistatus xmlns="DAV:"/>');
  return true;
});
// The test's own connections come from 127.0.0.1: a trusted balancer, whose override headers reach the app.
const gw = await bed.gateway({ GATEWAY_ACCESS_RULES: rulesFile, GATEWAY_TRUSTED_PROXIES: '127.0.0.1' });
const carol = await login(gw, 'carol', 'carol-Pw-0031');
const hazel = await login(gw, 'hazel', 'hazel-Pw-0031');

const NS = 'xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"';
const multiget = (...hrefs: string[]) => `<?xml version="1.0" encoding="utf-8"?><C:calendar-multiget ${NS}><D:prop><C:calendar-data/></D:prop>${hrefs.map((href) => `<D:href>${href}</D:href>`).join('')}</C:calendar-multiget>`;

const overridden = (cookie: string, path: string, body: string, method = 'REPORT') =>
  send(`${gw.url}${path}`, { method: 'POST', headers: withSession(gw, cookie, { accept: 'application/json', 'content-type': 'application/xml; charset=utf-8', 'x-http-method-override': method }), body });

t.test('control: the same multiget as a REPORT is refused to carol', async (t) => {
  const res = await send(`${gw.url}/carol/cal/dentist.ics`, { method: 'REPORT', headers: withSession(gw, carol, { accept: 'application/json', 'content-type': 'application/xml' }), body: multiget('/team/cal/salaries.ics') });
  t.equal(res.status, 403);
});

t.test('a POST that a trusted override header makes a REPORT: the hrefs its body names are judged', async (t) => {
  ran.length = 0;
  const res = await overridden(carol, '/carol/cal/dentist.ics', multiget('/carol/cal/dentist.ics', '/team/cal/salaries.ics'));
  t.equal(res.status, 403, 'a multiget naming the event kept to hr: refused');
  t.notOk(ran.some((r) => r.method === 'REPORT' && r.body.includes('salaries.ics')), 'the app never ran it whole');
  const lower = await overridden(carol, '/carol/cal/dentist.ics', multiget('/team/cal/salaries.ics'), 'report');
  t.equal(lower.status, 403, 'the method in lower case, as apps read it');
  // Typed as a form (or not typed, which Rack reads as a form), the body is also read for `_method`: both readings apply.
  for (const contentType of ['application/x-www-form-urlencoded', undefined]) {
    ran.length = 0;
    const headers = withSession(gw, carol, { accept: 'application/json', 'x-http-method-override': 'REPORT', ...(contentType ? { 'content-type': contentType } : {}) });
    const res = await send(`${gw.url}/carol/cal/dentist.ics`, { method: 'POST', headers, body: multiget('/team/cal/salaries.ics') });
    t.ok(res.status >= 400 && res.status < 500, `typed ${contentType ?? 'not at all'}: refused (${res.status})`);
    t.notOk(ran.some((r) => r.body.includes('salaries.ics')), 'the app never ran it whole');
  }
});

t.test('what carol may read still passes, and hazel may read the event', async (t) => {
  ran.length = 0;
  const own = await overridden(carol, '/carol/cal/dentist.ics', multiget('/carol/cal/dentist.ics'));
  t.equal(own.status, 207, 'a multiget of the events carol may read');
  t.same(ran.map((r) => r.method), ['REPORT'], 'reached the app, which ran it');
  const hr = await overridden(hazel, '/team/cal/lunch.ics', multiget('/team/cal/salaries.ics'));
  t.equal(hr.status, 207, 'hazel is in hr');
});

t.test('a REPORT named by override runs on the calendar of its path, as a REPORT does: refused to carol in the team calendar', async (t) => {
  const query = `<?xml version="1.0"?><C:calendar-query ${NS}><D:prop><C:calendar-data/></D:prop></C:calendar-query>`;
  for (const path of ['/team/cal/', '/team/cal/lunch.ics', '/team/cal/lunch.ics/']) t.equal((await overridden(carol, path, query)).status, 403, path);
  t.equal((await overridden(hazel, '/team/cal/lunch.ics', query)).status, 207, 'hazel may');
});
