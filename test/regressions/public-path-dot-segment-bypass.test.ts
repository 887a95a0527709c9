// Attack: with GATEWAY_PUBLIC_PATHS=/public, reach the protected /admin without a session through a
// path the gateway matches as "/public/…" but the app resolves to "/admin": dot segments, encoded
// dots or slashes, doubled slashes, backslashes, and Tomcat/Jetty path parameters (`..;`).
// Defence: src/access/paths.ts normalises before authorising (and forwards exactly the authorised
// path), and answers 400 to what it cannot normalise unambiguously; src/app.ts rewriteUrl.
import t from 'tap';
import { login, withSession } from '../helpers/gateway.js';
import type { Echo } from '../helpers/upstream.js';
import { rawRequest, testBed } from './setup.js';

const bed = await testBed(t, [{ username: 'alice', password: 'alice-Pw-0003' }]);
const gw = await bed.gateway({ GATEWAY_PUBLIC_PATHS: '/public' });
const json = { accept: 'application/json' };

// Each resolves to /admin in at least one common upstream (RFC 3986, a decoding router, IIS, Tomcat).
const ATTACKS = [
  '/public/../admin',
  '/public/%2e%2e/admin',
  '/public/%2E%2E/admin',
  '/public/.%2e/admin',
  '/public/./../admin',
  '/public/x/../../admin',
  '//public/../admin',
  '/public//../admin',
  '/public%2f..%2fadmin',
  '/public%2F..%2Fadmin',
  '/public/..%2fadmin',
  '/public/..%5cadmin',
  '/public/..\\admin',
  '/public\\..\\admin',
  '/public/..;/admin',
  '/public/..;jsessionid=x/admin',
  '/public/%2e%2e;/admin',
  '/public/..%3b/admin',
  '/public/..%00/admin',
  '/public/../../admin',
];

t.test('without a session, no variant reaches the app', async (t) => {
  for (const target of ATTACKS) {
    const before = bed.upstream.received.length;
    const res = await rawRequest(gw, target, { headers: json });
    t.ok(res.status === 400 || res.status === 401, `${target}: ${res.status} (400 or 401)`);
    t.equal(bed.upstream.received.length, before, `${target}: nothing forwarded`);
  }
});

t.test('a browser navigation to one is sent to log in for /admin, not served as public', async (t) => {
  const res = await rawRequest(gw, '/public/%2e%2e/admin', { headers: { accept: 'text/html' } });
  t.equal(res.status, 302);
  t.equal(res.headers.location, '/_auth/login?rd=%2Fadmin');
});

t.test('with a session, the app receives exactly the path that was authorised', async (t) => {
  const cookie = await login(gw, 'alice', 'alice-Pw-0003');
  for (const target of ['/public/../admin', '/public/%2e%2e/admin', '//public/../admin', '/public/./../admin']) {
    const res = await rawRequest(gw, target, { headers: withSession(gw, cookie, json) });
    t.equal(res.status, 200, target);
    t.equal((JSON.parse(res.body) as Echo).url, '/admin', `${target}: forwarded as /admin`);
  }
  for (const target of ['/public%2f..%2fadmin', '/public/..;/admin', '/public/..%5cadmin']) {
    const res = await rawRequest(gw, target, { headers: withSession(gw, cookie, json) });
    t.equal(res.status, 400, `${target}: refused even with a session, never forwarded ambiguous`);
  }
});

t.test('control: the public path itself is served without a session', async (t) => {
  const res = await rawRequest(gw, '/public/page', { headers: json });
  t.equal(res.status, 200);
  t.equal((JSON.parse(res.body) as Echo).url, '/public/page');
});
