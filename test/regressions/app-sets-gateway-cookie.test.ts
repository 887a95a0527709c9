// Attack: a compromised or careless app behind the gateway answers `Set-Cookie: sgw_session =evil`
// (space or tab before `=`, or leading whitespace). The old filter compared the raw line's prefix,
// so it passed; browsers trim the name and store it as the gateway's session cookie: the user is
// logged out, or fixed to a session the app chose. A nameless cookie (`=sgw_session=evil`) is sent
// back bare (`Cookie: sgw_session=evil`) and reads the same on the server.
// Defence: src/proxy/gateway-cookies.ts parses each Set-Cookie as browsers do (RFC 6265bis §5.7)
// and plugin.ts drops any that would set one of the gateway's cookies (session and pre-login CSRF).
import t from 'tap';
import { login } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import { testBed } from './setup.js';

const HOSTILE: string[] = [
  'sgw_session =evil; Path=/',
  'sgw_session\t=evil; Path=/',
  ' sgw_session=evil; Path=/',
  '\tsgw_session=evil',
  'sgw_session= evil; Max-Age=0',
  '  sgw_session  \t=  ; Expires=Thu, 01 Jan 1970 00:00:00 GMT',
  '=sgw_session=evil; Path=/',
  ' = sgw_session=evil',
  'sgw_session; Path=/',
  'sgw_csrf =forged; Path=/',
  '__Host-gw =evil; Path=/; Secure',
];
/** Cookies that only look alike: a browser stores them under other names, which the gateway never reads. */
const HARMLESS: string[] = ['SGW_SESSION=app-own', 'sgw_session_app=1', 'app=sgw_session=x', 'x_sgw_session=1'];

const bed = await testBed(t, [{ username: 'carol', password: 'carol-Pw-00001' }], (echo, res) => {
  if (!echo.url.includes('/set-cookies')) return false;
  res.writeHead(200, [['Content-Type', 'text/plain'], ...[...HOSTILE, ...HARMLESS].map((line) => ['Set-Cookie', line])].flat());
  res.end('ok');
  return true;
});

for (const cookieName of ['sgw_session', '__Host-gw']) {
  t.test(`cookie name ${cookieName}: the app cannot set or clear the gateway's cookies, however it spaces them`, async (t) => {
    const gw = await bed.gateway({ GATEWAY_PUBLIC_PATHS: '/public', GATEWAY_COOKIE_NAME: cookieName });
    const cookie = await login(gw, 'carol', 'carol-Pw-00001');
    for (const path of ['/set-cookies', '/public/set-cookies']) {
      const headers = path.startsWith('/public') ? { accept: 'application/json' } : { accept: 'application/json', cookie: `${cookieName}=${encodeURIComponent(cookie)}` };
      const res = await send(`${gw.url}${path}`, { headers });
      t.equal(res.status, 200, path);
      const lines = res.headers['set-cookie'] ?? [];
      const own = cookieName === 'sgw_session' ? HOSTILE.filter((l) => !l.includes('__Host-gw')) : HOSTILE.filter((l) => l.includes('__Host-gw') || l.includes('sgw_csrf'));
      for (const line of own) t.notOk(lines.includes(line), `${path}: dropped ${JSON.stringify(line)}`);
      for (const line of HARMLESS) t.ok(lines.includes(line), `${path}: the app's own ${JSON.stringify(line)} passes`);
    }
    // The session is still the one the gateway issued.
    const after = await send(`${gw.url}/anything`, { headers: { accept: 'application/json', cookie: `${cookieName}=${encodeURIComponent(cookie)}` } });
    t.equal(after.status, 200, 'still signed in');
  });
}
