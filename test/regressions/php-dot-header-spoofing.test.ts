// Attack: PHP turns `.` in a header name into `_` when it fills `$_SERVER`, as it turns `-` into
// `_`: `X-Forwarded.User: admin` is HTTP_X_FORWARDED_USER to a PHP app, the very variable the
// gateway's X-Forwarded-User lands in. The gateway removed every case and underscore spelling of
// its identity and re-routing headers, but not this one: an anonymous request to a public path
// reached the app as `admin` of `admins`; a signed-in user without an e-mail could add one of
// someone else's; where the server passes both (Caddy with php-cgi, in either order), a signed-in
// user could even take over another account. Same for X-HTTP-Method.Override, X-Original.URL.
// Defence (SPEC 4): src/identity/headers.ts normaliseHeaderName reads every character but a letter
// or digit as `-`, so these spellings are removed like the underscore ones. Tested against PHP's
// own server (the php CLI), which names the variables exactly as PHP apps read them.
import t from 'tap';
import { login, withSession } from '../helpers/gateway.js';
import { startPhpServer, type PhpServerView } from '../helpers/php-app.js';
import { rawRequest, testBed } from './setup.js';

const php = await startPhpServer(t);
const bed = await testBed(t, [{ username: 'carol', password: 'carol-Pw-0011', groups: ['staff'] }]);
const gw = await bed.gateway({ GATEWAY_UPSTREAM: php.url, GATEWAY_PUBLIC_PATHS: '/public' });
const carol = await login(gw, 'carol', 'carol-Pw-0011');

const SPOOFED: Array<[string, string]> = [
  ['X-Forwarded.User', 'admin'],
  ['X.Forwarded.Email', 'admin@corp.example'],
  ['x-forwarded.groups', 'admins'],
  ['X-Gateway.Identity', 'forged.token.sig'],
  ['X-HTTP-Method.Override', 'DELETE'],
  ['X-Original.URL', '/admin'],
  ['X-Forwarded.Host', 'evil.example'],
];

const view = async (path: string, headers: Array<[string, string]>) => {
  // A list of pairs is sent as it is: Node adds no Host then.
  const res = await rawRequest(gw, path, { headers: [['host', new URL(gw.url).host], ...headers] });
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${res.body.slice(0, 200)}`);
  return JSON.parse(res.body) as PhpServerView;
};

t.test('the app itself reads a dotted name as the real one (what makes it an attack)', async (t) => {
  const res = await fetch(`${php.url}/x`, { headers: { 'X-Forwarded.User': 'admin' } });
  t.equal(((await res.json()) as PhpServerView).HTTP_X_FORWARDED_USER, 'admin');
});

t.test('anonymous, on a public path: none of the dotted spellings reaches the app', async (t) => {
  const seen = await view('/public/page', SPOOFED);
  t.equal(seen.HTTP_X_FORWARDED_USER, null);
  t.equal(seen.HTTP_X_FORWARDED_EMAIL, null);
  t.equal(seen.HTTP_X_FORWARDED_GROUPS, null);
  t.equal(seen.HTTP_X_GATEWAY_IDENTITY, null);
  t.equal(seen.HTTP_X_HTTP_METHOD_OVERRIDE, null);
  t.equal(seen.HTTP_X_ORIGINAL_URL, null);
  t.equal(seen.HTTP_X_FORWARDED_HOST, '127.0.0.1:' + new URL(gw.url).port, 'the forwarded host is the gateway\'s own');
});

t.test('signed in: the app sees the session\'s identity only, nothing added to it', async (t) => {
  const seen = await view('/app', [...Object.entries(withSession(gw, carol)), ...SPOOFED]);
  t.equal(seen.HTTP_X_FORWARDED_USER, 'carol');
  t.equal(seen.HTTP_X_FORWARDED_GROUPS, 'staff');
  t.equal(seen.HTTP_X_FORWARDED_EMAIL, null, 'carol has no e-mail, and gets none of the client\'s');
  t.equal(seen.HTTP_X_HTTP_METHOD_OVERRIDE, null);
  t.equal(seen.HTTP_X_ORIGINAL_URL, null);
});
