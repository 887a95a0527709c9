// Attack: behind the gateway runs a JSF application in a Servlet container (here Debian's Jetty 9.4,
// for real, with a servlet mapped to `/faces/*` as JSF applications map their FacesServlet beside
// `*.xhtml`). The FacesServlet renders the view its path info names, so `/faces/admin/users.xhtml`
// is the page `/admin/users.xhtml`. A rule on `/admin` matched against the path as sent let a user
// outside `admins` open every admin page under `/faces`, and walked into a `deny`-ed area.
// Defence (SPEC 4): src/access/paths.ts withoutFacesPrefix is one more reading (otherReadings); the
// rules written for it must allow too (rules.ts); the app still receives the path as sent.
import t from 'tap';
import { withSession } from '../helpers/gateway.js';
import { startServletContainer, type ServletEcho } from '../helpers/servlet-container.js';
import { checkRefusedThroughProxy, rawRequest, readingsBed } from './setup.js';

const jetty = await startServletContainer(t);
const { gw, carol, alice } = await readingsBed(t, jetty.url, '/help');
const json = { accept: 'application/json' };

const INTO_ADMIN = ['/faces/admin/users.xhtml', '/faces/admin/', '/faces/admin;jsessionid=1/users.xhtml'];
const INTO_INTERNAL = ['/faces/internal/status.xhtml'];

t.test('the container itself hands these to the faces servlet, whose view is the protected page', async (t) => {
  for (const [target, view] of [['/faces/admin/users.xhtml', '/admin/users.xhtml'], ['/faces/internal/status.xhtml', '/internal/status.xhtml']] as const) {
    const res = await rawRequest({ url: jetty.url } as Parameters<typeof rawRequest>[0], target, { headers: json });
    const echo = JSON.parse(res.body) as ServletEcho;
    t.same({ servlet: echo.servlet, pathInfo: echo.pathInfo }, { servlet: 'faces', pathInfo: view }, target);
  }
});

t.test('through the proxy: 403 for a user outside the group, 401 (deny: 403) without a session, nothing reaches the app', async (t) => {
  // The servlet answers JSON naming a "servlet", not a "route": look for that.
  for (const target of [...INTO_ADMIN, ...INTO_INTERNAL]) {
    const res = await rawRequest(gw, target, { headers: withSession(gw, carol, json) });
    t.equal(res.status, 403, `${target}: 403`);
    t.notMatch(res.body, /"servlet"/, `${target}: the app did not answer`);
  }
  await checkRefusedThroughProxy(t, gw, carol, INTO_ADMIN, INTO_INTERNAL);
});

t.test('an admin opens the view through /faces, the path as sent; other views pass', async (t) => {
  const res = await rawRequest(gw, '/faces/admin/users.xhtml', { headers: withSession(gw, alice, json) });
  t.equal(res.status, 200);
  const echo = JSON.parse(res.body) as ServletEcho;
  t.same({ servlet: echo.servlet, pathInfo: echo.pathInfo, user: echo.user, requestURI: echo.requestURI }, { servlet: 'faces', pathInfo: '/admin/users.xhtml', user: 'alice', requestURI: '/faces/admin/users.xhtml' });
  const other = await rawRequest(gw, '/faces/reports/q3.xhtml', { headers: withSession(gw, carol, json) });
  t.equal(other.status, 200, 'control: a view no rule names passes');
  t.equal((JSON.parse(other.body) as ServletEcho).pathInfo, '/reports/q3.xhtml');
});
