// Attack: a client sends identity headers spelled with underscores (X_Forwarded_User). Node keeps
// them as distinct headers, but PHP, CGI, WSGI and many Rack/Java setups map `-` and `_` to the
// same HTTP_X_FORWARDED_USER variable, so a forwarded underscore spelling impersonates anyone.
// Defence: src/identity/headers.ts strips every identity name compared with `_` ≡ `-`.
import t from 'tap';
import { login, withSession } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import type { Echo } from '../helpers/upstream.js';
import { cgiName, exactHeaders, rawPairs, testBed } from './setup.js';

const bed = await testBed(t, [{ username: 'alice', password: 'alice-Pw-0001', email: 'alice@example.com', groups: ['staff'] }]);
const gw = await bed.gateway({ GATEWAY_PUBLIC_PATHS: '/public' });
const custom = await bed.gateway({ GATEWAY_HEADER_USER: 'Remote-User', GATEWAY_HEADER_EMAIL: 'Remote-Email', GATEWAY_HEADER_GROUPS: 'Remote-Groups' });
const cookie = await login(gw, 'alice', 'alice-Pw-0001');

const DEFAULT_SPOOFS: Array<[string, string]> = [
  ['X_Forwarded_User', 'admin'],
  ['x_forwarded_user', 'admin'],
  ['X-Forwarded_User', 'admin'],
  ['X_FORWARDED_EMAIL', 'admin@example.com'],
  ['X_Forwarded_Groups', 'admins'],
  ['X_Gateway_Identity', 'admin'],
];
const CUSTOM_SPOOFS: Array<[string, string]> = [
  ['Remote_User', 'admin'],
  ['REMOTE_EMAIL', 'admin@example.com'],
  ['remote_groups', 'admins'],
];
const DEFAULT_NAMES = ['x-forwarded-user', 'x-forwarded-email', 'x-forwarded-groups', 'x-gateway-identity'];
const ALL_NAMES = new Set([...DEFAULT_NAMES, 'remote-user', 'remote-email', 'remote-groups']);

/** Every identity-like header the app received, named as a CGI app would see it. */
const identitySeen = (echo: Echo, names: ReadonlySet<string>) =>
  rawPairs(echo)
    .filter(([name]) => names.has(cgiName(name)))
    .map(([name, value]) => [cgiName(name), value])
    .sort();

t.test('signed in as alice, underscore spellings of identity headers never reach the app', async (t) => {
  const res = await send(`${gw.url}/whoami`, { headers: exactHeaders(gw, [...Object.entries(withSession(gw, cookie)), ...DEFAULT_SPOOFS]) });
  t.equal(res.status, 200);
  t.same(identitySeen(res.json<Echo>(), new Set(DEFAULT_NAMES)), [
    ['x-forwarded-email', 'alice@example.com'],
    ['x-forwarded-groups', 'staff'],
    ['x-forwarded-user', 'alice'],
  ]);
});

t.test('with custom header names (Remote-User), every underscore spelling of custom and default names is removed', async (t) => {
  const res = await send(`${custom.url}/whoami`, { headers: exactHeaders(custom, [...Object.entries(withSession(custom, cookie)), ...DEFAULT_SPOOFS, ...CUSTOM_SPOOFS]) });
  t.equal(res.status, 200);
  t.same(identitySeen(res.json<Echo>(), ALL_NAMES), [
    ['remote-email', 'alice@example.com'],
    ['remote-groups', 'staff'],
    ['remote-user', 'alice'],
  ]);
});

t.test('anonymous on a public path, underscore spellings are removed as well', async (t) => {
  const res = await send(`${gw.url}/public/page`, { headers: exactHeaders(gw, DEFAULT_SPOOFS) });
  t.equal(res.status, 200);
  t.same(identitySeen(res.json<Echo>(), new Set(DEFAULT_NAMES)), [], 'the app sees no identity at all');
});
