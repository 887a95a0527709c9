// Attack: an account whose name, email or group holds CR/LF, non-ASCII or `%` (self-service
// sign-up in the legacy table, a synced directory, an admin typo) is used to smuggle a second
// header to the app (`eve\r\nX-Forwarded-User: admin`), to break the request, or to make the app
// decode a different name than the one that signed in.
// Defence: src/identity/headers.ts encodeHeaderValue / encodeGroups — any value that is not
// plain printable ASCII without `%` (and `,` in a group) is percent-encoded as UTF-8 in full.
import t from 'tap';
import { hashPassword } from '../../src/users/passwords.js';
import { login, withSession } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import type { Echo } from '../helpers/upstream.js';
import { rawPairs, testBed } from './setup.js';

const percentEncodeAll = (value: string) => [...Buffer.from(value, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

// Such names live in legacy tables (the CLI refuses them, and a name with control characters
// cannot sign in itself): a directory where people sign in with a login id and the app is
// given another column as the name, the common shape of those tables.
const USERS = [
  { login: 'eve', username: 'eve\r\nX-Forwarded-User: admin', password: 'eve-Pw-0010', email: 'eve@example.com\r\nX-Admin: 1', groups: ['staff\r\nX-Forwarded-Groups: admins'] },
  { login: 'zoe', username: 'zoë', password: 'zoe-Pw-0010', email: 'zoë@exämple.com', groups: ['über', 'staff'] },
  { login: 'bob', username: 'bob%0d%0aX-Admin:%201', password: 'bob-Pw-0010', email: 'bob%40example.com', groups: ['100%', 'a,b', 'ops'] },
  { login: 'tab', username: 'tab\there', password: 'tab-Pw-0010', email: null, groups: ['\u2028line', '\u0085next'] },
];
const bed = await testBed(t, []);
await bed.pool.query('CREATE TABLE directory (login text PRIMARY KEY, display_name text NOT NULL, pw text NOT NULL, mail text, roles text[])');
for (const u of USERS) await bed.pool.query('INSERT INTO directory VALUES ($1, $2, $3, $4, $5)', [u.login, u.username, await hashPassword(u.password), u.email, u.groups]);
const gw = await bed.gateway({ GATEWAY_USER_QUERY: 'SELECT display_name AS username, pw AS password_hash, mail AS email, roles AS groups FROM directory WHERE login = $1' });

const expectedGroups = (groups: string[]) => groups.map((g) => (/^[\x20-\x7e]*$/.test(g) && !/[%,]/.test(g) ? g : percentEncodeAll(g))).join(',');

t.test('identity values reach the app percent-encoded, one header each, never raw', async (t) => {
  for (const user of USERS) {
    const label = JSON.stringify(user.username);
    const cookie = await login(gw, user.login, user.password);
    const res = await send(`${gw.url}/whoami`, { headers: withSession(gw, cookie, { accept: 'application/json' }) });
    t.equal(res.status, 200, `${label}: forwarded`);
    const echo = res.json<Echo>();
    const pairs = rawPairs(echo);
    const named = (name: string) => pairs.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);

    t.same(named('x-forwarded-user'), [percentEncodeAll(user.username)], `${label}: one X-Forwarded-User, fully encoded`);
    t.equal(decodeURIComponent(named('x-forwarded-user')[0] ?? ''), user.username, `${label}: decodes to exactly the name that signed in`);
    t.same(named('x-forwarded-email'), user.email ? [percentEncodeAll(user.email)] : [], `${label}: email`);
    t.same(named('x-forwarded-groups'), [expectedGroups(user.groups)], `${label}: groups`);
    t.same((named('x-forwarded-groups')[0] ?? '').split(',').map(decodeURIComponent), user.groups, `${label}: groups decode back to the list`);
    t.same(named('x-admin'), [], `${label}: no smuggled header`);
    t.same(pairs.filter(([, v]) => !PRINTABLE_ASCII.test(v)), [], `${label}: nothing outside printable ASCII on the wire`);
  }
});

t.test('the forward-auth endpoint (/_auth/verify) encodes the same way', async (t) => {
  const user = USERS[0] as (typeof USERS)[number];
  const cookie = await login(gw, user.login, user.password);
  const res = await send(`${gw.url}/_auth/verify`, { headers: withSession(gw, cookie) });
  t.equal(res.status, 204);
  t.equal(res.headers['x-forwarded-user'], percentEncodeAll(user.username));
  t.equal(res.headers['x-forwarded-email'], percentEncodeAll(user.email ?? ''));
  t.notOk(res.headers['x-admin'], 'no smuggled header');
});

t.test('control: a plain name travels as it is', async (t) => {
  const res = await send(`${gw.url}/whoami`, { headers: withSession(gw, await login(gw, 'zoe', 'zoe-Pw-0010'), { accept: 'application/json' }) });
  t.equal(res.json<Echo>().headers['x-forwarded-groups'], `${percentEncodeAll('über')},staff`, 'a plain group next to an encoded one stays plain');
});
