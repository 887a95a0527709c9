// Attack: a curious or compromised app behind the gateway (or anything that logs its requests)
// harvests the gateway's session cookie from the Cookie header and replays it to act as the user.
// Defence: src/identity/headers.ts removes the gateway's cookies (session and pre-login CSRF)
// from the forwarded Cookie header in every arrangement, leaving the app's own cookies untouched.
import t from 'tap';
import { login } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import type { Echo } from '../helpers/upstream.js';
import { exactHeaders, loginForm, testBed } from './setup.js';

const bed = await testBed(t, [{ username: 'alice', password: 'alice-Pw-0009' }]);
const gw = await bed.gateway({ GATEWAY_PUBLIC_PATHS: '/public' });
const cookie = await login(gw, 'alice', 'alice-Pw-0009');
const encoded = encodeURIComponent(cookie);
const id = cookie.slice(0, cookie.lastIndexOf('.'));
const signature = cookie.slice(cookie.lastIndexOf('.') + 1);
const csrf = (await loginForm(gw)).csrfCookie;

/** Nothing the app received — any header, any spelling — carries the session or its parts. */
function leaks(echo: Echo): string[] {
  const found: string[] = [];
  for (const value of echo.rawHeaders) {
    for (const secret of [cookie, encoded, id, signature, csrf]) if (value.includes(secret)) found.push(value.slice(0, 80));
  }
  return found;
}

const ARRANGEMENTS: Array<[string, Array<[string, string]>, string | undefined]> = [
  ['only the gateway cookie', [['Cookie', `sgw_session=${encoded}`]], undefined],
  ['between app cookies', [['Cookie', `JSESSIONID=abc123; sgw_session=${encoded}; theme="dark blue"`]], 'JSESSIONID=abc123; theme="dark blue"'],
  ['with the pre-login CSRF cookie too', [['Cookie', `sgw_csrf=${csrf}; app=1; sgw_session=${encoded}`]], 'app=1'],
  ['twice in one header', [['Cookie', `sgw_session=${encoded}; app=1; sgw_session=${encoded}`]], 'app=1'],
  ['in two Cookie header lines', [['Cookie', 'app=1'], ['Cookie', `sgw_session=${encoded}`]], 'app=1'],
  ['with odd spacing', [['Cookie', `app=1;sgw_session=${encoded} ;  other=2`]], 'app=1; other=2'],
];

t.test('signed in: the app never sees the gateway cookie, and its own cookies are kept', async (t) => {
  for (const [label, headers, expected] of ARRANGEMENTS) {
    const res = await send(`${gw.url}/page`, { headers: exactHeaders(gw, [['Accept', 'application/json'], ...headers]) });
    t.equal(res.status, 200, `${label}: the session is accepted`);
    const echo = res.json<Echo>();
    t.equal(echo.headers['x-forwarded-user'], 'alice', `${label}: as alice`);
    t.equal(echo.headers.cookie, expected, `${label}: Cookie the app receives`);
    t.same(leaks(echo), [], `${label}: no trace of the session anywhere in the forwarded headers`);
  }
});

t.test('on a public path too', async (t) => {
  const res = await send(`${gw.url}/public/x`, { headers: exactHeaders(gw, [['Cookie', `a=1; sgw_session=${encoded}; sgw_csrf=${csrf}`]]) });
  t.equal(res.status, 200);
  const echo = res.json<Echo>();
  t.equal(echo.headers.cookie, 'a=1');
  t.same(leaks(echo), []);
});
