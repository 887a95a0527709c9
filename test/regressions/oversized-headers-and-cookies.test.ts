// Attack: crash or wedge the gateway — or slip something past it — with huge request headers,
// cookies, URLs or login bodies (a 64 KB header, a 64 KB session cookie, thousands of cookies).
// Defence: Node's header limit (16 KB, answered 431 before any handler runs, never raised by the
// gateway), src/access/paths.ts MAX_URL_LENGTH, src/session/id.ts (a cookie over 200 characters is
// refused before any HMAC work), src/login/routes.ts login body and field limits.
import t from 'tap';
import { login, withSession } from '../helpers/gateway.js';
import { cookieHeader, send } from '../helpers/http.js';
import { apiGet, testBed } from './setup.js';

const bed = await testBed(t, [{ username: 'alice', password: 'alice-Pw-0011' }]);
const gw = await bed.gateway({ GATEWAY_PUBLIC_PATHS: '/public' });
const cookie = await login(gw, 'alice', 'alice-Pw-0011');
const KB = 1024;

/** The status, or 'closed' if the connection was dropped instead of answered (not a clean refusal). */
async function attempt(url: string, options: Parameters<typeof send>[1]): Promise<number | 'closed'> {
  try {
    return (await send(url, options)).status;
  } catch {
    return 'closed';
  }
}

const clean = (status: number | 'closed') => status === 431 || status === 400 || status === 413;

t.test('64 KB headers and cookies: a clean 431/400, nothing reaches the app', async (t) => {
  const before = bed.upstream.received.length;
  const cases: Array<[string, Record<string, string>]> = [
    ['one 64 KB header', { 'x-filler': 'a'.repeat(64 * KB) }],
    ['a 64 KB session cookie', { cookie: `sgw_session=${'a'.repeat(64 * KB)}` }],
    ['a 64 KB app cookie next to a valid session', { cookie: `${cookieHeader({ sgw_session: cookie })}; big=${'b'.repeat(64 * KB)}` }],
    ['4000 small cookies', { cookie: Array.from({ length: 4_000 }, (_, i) => `c${i}=${i}`).join('; ') }],
    ['a 64 KB spoofed identity header', { 'x-forwarded-user': 'admin'.repeat(13 * KB) }],
  ];
  for (const [label, headers] of cases) {
    for (const path of ['/app', '/public/x', '/_auth/login']) {
      const status = await attempt(`${gw.url}${path}`, { headers: { accept: 'application/json', ...headers } });
      t.ok(clean(status), `${label} on ${path}: ${status}`);
    }
  }
  t.equal(bed.upstream.received.length, before, 'the app received none of them');
});

t.test('a long but admissible session cookie is simply not a session', async (t) => {
  for (const size of [201, 4 * KB, 12 * KB]) {
    const res = await apiGet(gw, '/app', 'x'.repeat(size));
    t.equal(res.status, 401, `${size} characters: 401`);
  }
});

t.test('a 64 KB URL or rd, a huge login body or field: 4xx, never 5xx', async (t) => {
  t.ok(clean(await attempt(`${gw.url}/app?q=${'q'.repeat(64 * KB)}`, { headers: { accept: 'application/json' } })), '64 KB URL');
  const longUrl = await send(`${gw.url}/public/${'p'.repeat(9 * KB)}`, { headers: { accept: 'application/json' } });
  t.equal(longUrl.status, 400, 'a 9 KB path (under the header limit, over the URL limit): 400');
  const page = await send(`${gw.url}/_auth/login?rd=/${'r'.repeat(12 * KB)}`, { headers: { accept: 'text/html' } });
  t.equal(page.status, 400, 'a 12 KB rd on the login page: 400');
  const json = (body: string) => send(`${gw.url}/_auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  t.equal((await json(JSON.stringify({ username: 'alice', password: 'p'.repeat(64 * KB) }))).status, 413, '64 KB JSON login body: 413');
  t.equal((await json(JSON.stringify({ username: 'u'.repeat(10 * KB), password: 'x' }))).status, 400, '10 KB username: 400');
  t.equal((await json(JSON.stringify({ username: 'alice', password: 'p'.repeat(5 * KB) }))).status, 400, '5 KB password: 400');
});

t.test('the gateway keeps serving afterwards', async (t) => {
  t.equal((await send(`${gw.url}/app`, { headers: withSession(gw, cookie, { accept: 'application/json' }) })).status, 200, 'the session still works');
  t.equal((await send(`${gw.url}/public/x`)).status, 200, 'public paths still work');
  t.equal((await send(`${gw.adminUrl}/healthz`)).status, 200, 'healthy');
  t.ok(await login(gw, 'alice', 'alice-Pw-0011'), 'logins still work');
});
