// Attack: read a Servlet app's session ids out of the gateway's logs. Servlet containers put the
// session id in a path parameter (`/cart;jsessionid=…`) when cookies are off; the gateway forwards
// path parameters as they are (SPEC 4), so its access log and audit lines used to record them, a
// credential in a log shipped to places the app's sessions are not.
// Defence: src/access/paths.ts pathForLog: every log line shows path parameters as `;[Redacted]`,
// like the query string, which is never logged; the app still receives the raw path.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { login } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import type { Echo } from '../helpers/upstream.js';
import { testBed } from './setup.js';

const SERVLET_SESSION = 'A1B2C3D4E5F6SERVLETSESSIONID';
const dir = mkdtempSync(join(tmpdir(), 'sgw-pathlog-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const rulesFile = join(dir, 'rules.json');
writeFileSync(rulesFile, JSON.stringify([{ path: '/admin', policy: 'deny' }]));
const bed = await testBed(t, [{ username: 'alice', password: 'alice-Pw-0031' }]);
const gw = await bed.gateway({ GATEWAY_PUBLIC_PATHS: '/public', GATEWAY_ACCESS_RULES: rulesFile });
const cookie = await login(gw, 'alice', 'alice-Pw-0031');

t.test('signed in, anonymous and refused: no log line carries the path parameter', async (t) => {
  const signedIn = await send(`${gw.url}/cart;jsessionid=${SERVLET_SESSION}/items`, { headers: { cookie: `sgw_session=${encodeURIComponent(cookie)}`, accept: 'application/json' } });
  t.equal(signedIn.status, 200, 'forwarded');
  t.equal(signedIn.json<Echo>().url, `/cart;jsessionid=${SERVLET_SESSION}/items`, 'the app receives the raw path');
  const anonymous = await send(`${gw.url}/public/a;jsessionid=${SERVLET_SESSION}`, { headers: { accept: 'application/json' } });
  t.equal(anonymous.status, 200, 'a public path is forwarded too');
  const refused = await send(`${gw.url}/admin;jsessionid=${SERVLET_SESSION}`, { headers: { cookie: `sgw_session=${encodeURIComponent(cookie)}`, accept: 'application/json' } });
  t.equal(refused.status, 403, 'a deny rule refuses, and writes an audit line');

  const lines = gw.logs.filter((line) => line.includes('"path"'));
  t.ok(lines.some((line) => line.includes('"/cart;[Redacted]/items"')), 'the access line shows where the parameter was');
  t.ok(lines.some((line) => line.includes('access_denied') && line.includes('"/admin;[Redacted]"')), 'the audit line too');
  t.same(gw.logs.filter((line) => line.includes(SERVLET_SESSION)), [], 'the session id is in no log line');
});
