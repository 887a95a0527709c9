// Attack: DNS rebinding against a gateway on an intranet. A page on attacker.example re-points its
// own name at the gateway's address; the victim's browser then talks to the gateway as
// attacker.example (same origin for the attacker's script), so the script can drive the login
// form (guessing passwords from inside the network), read public pages, and make the gateway build
// URLs from the attacker's name, none of which the gateway can tell from a real visit by origin.
// Defence: GATEWAY_ALLOWED_HOSTS (src/http.ts hostRefusal, first on every door): any other Host,
// and any other X-Forwarded-Host from a trusted proxy, gets 400 before a route runs. The host of
// GATEWAY_PUBLIC_URL is always allowed; names match without case, a name without a port on any port.
import t from 'tap';
import { request as httpRequest } from 'node:http';
import { withSession, type TestGateway } from '../helpers/gateway.js';
import { testBed } from './setup.js';

const bed = await testBed(t, [{ username: 'alice', password: 'alice-Pw-0032' }]);
const gw = await bed.gateway({
  GATEWAY_PUBLIC_PATHS: '/public',
  GATEWAY_ALLOWED_HOSTS: 'app.internal, 10.1.2.3:8000',
  GATEWAY_PUBLIC_URL: 'https://portal.example',
  GATEWAY_TRUSTED_PROXIES: '127.0.0.1',
});

function exchange(gateway: TestGateway, method: string, path: string, headers: Array<[string, string]>, body?: string): Promise<{ status: number; setCookie: string[] }> {
  const { hostname, port } = new URL(gateway.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, path, method, agent: false, headers: headers.flat() as unknown as Record<string, string> }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, setCookie: res.headers['set-cookie'] ?? [] }));
    });
    req.on('error', reject).end(body);
  });
}
const status = async (...args: Parameters<typeof exchange>) => (await exchange(...args)).status;

// Signed in on an allowed name, as a real user is.
const signIn = await exchange(gw, 'POST', '/_auth/login', [['Host', 'app.internal'], ['Content-Type', 'application/json']], JSON.stringify({ username: 'alice', password: 'alice-Pw-0032' }));
const cookie = decodeURIComponent(/^sgw_session=([^;]*)/.exec(signIn.setCookie.find((c) => c.startsWith('sgw_session=')) ?? '')?.[1] ?? '');

t.test('a rebound name reaches nothing: public pages, the login form, the app, verify', async (t) => {
  const before = bed.upstream.received.length;
  for (const host of ['attacker.example', 'attacker.example:8000', 'app.internal.attacker.example', '10.1.2.3:9000']) {
    t.equal(await status(gw, 'GET', '/public/page', [['Host', host]]), 400, `${host}: public page`);
    t.equal(await status(gw, 'GET', '/_auth/login', [['Host', host], ['Accept', 'text/html']]), 400, `${host}: login page`);
    const form = 'username=alice&password=guess';
    t.equal(await status(gw, 'POST', '/_auth/login', [['Host', host], ['Content-Type', 'application/x-www-form-urlencoded'], ['Origin', `http://${host}`]], form), 400, `${host}: password guessing`);
    t.equal(await status(gw, 'GET', '/app', [['Host', host], ...(Object.entries(withSession(gw, cookie)) as Array<[string, string]>)]), 400, `${host}: the app`);
    t.equal(await status(gw, 'GET', '/_auth/verify', [['Host', 'app.internal'], ['X-Forwarded-Host', host], ['X-Forwarded-Uri', '/public/page']]), 400, `${host} named by a trusted proxy`);
  }
  t.equal(bed.upstream.received.length, before, 'the app received nothing');
});

t.test('the allowed names work, in any case; a bare name on any port; the public URL’s host too', async (t) => {
  for (const host of ['app.internal', 'APP.Internal', 'app.internal:8443', '10.1.2.3:8000', 'portal.example', 'portal.example:443']) {
    t.equal(await status(gw, 'GET', '/public/page', [['Host', host]]), 200, host);
  }
  t.equal(await status(gw, 'GET', '/_auth/verify', [['Host', 'anything'], ['X-Forwarded-Host', 'app.internal'], ['X-Forwarded-Uri', '/public/page']]), 204, 'behind a proxy the forwarded host is the one that counts');
  t.equal(signIn.status, 200, 'sign-in works on an allowed host');
  t.equal(await status(gw, 'GET', '/app', [['Host', 'app.internal'], ...(Object.entries(withSession(gw, cookie)) as Array<[string, string]>)]), 200, 'and the app is reached');
});

t.test("a trusted proxy's X-Forwarded-Host list: the app receives only the entry that was checked", async (t) => {
  t.equal(await status(gw, 'GET', '/public/page', [['Host', 'app.internal'], ['X-Forwarded-Host', 'attacker.example, app.internal']]), 200, 'the last entry (the proxy in front) is allowed');
  const echo = bed.upstream.received[bed.upstream.received.length - 1];
  t.equal(echo?.headers['x-forwarded-host'], 'app.internal', 'an app reading the first entry cannot get the unchecked one');
});
