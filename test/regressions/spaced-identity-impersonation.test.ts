// Attack: a legacy users table holds `alice ` (trailing space) beside `alice` — self-service
// sign-up, an old import, a CHAR(n) column, or an earlier `users add 'alice '`. Mallory owns
// `alice ` and signs in with her own password. Leading and trailing spaces are optional
// whitespace that every HTTP parser strips (RFC 9110 5.5), so a raw header value `alice ` reaches
// the app as `alice`: Mallory is Alice. The same for a group ` admins` and an e-mail.
// Defence: src/identity/headers.ts encodeHeaderValue — a value starting or ending with a
// space is percent-encoded in full (SPEC section 4), on the proxy and on /_auth/verify; the CLI
// refuses such names (test/integration/cli.test.ts).
import t from 'tap';
import { hashPassword } from '../../src/users/passwords.js';
import { login, withSession } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import type { Echo } from '../helpers/upstream.js';
import { rawPairs, testBed } from './setup.js';

const bed = await testBed(t, []);
await bed.pool.query('CREATE TABLE legacy_accounts (login text PRIMARY KEY, pw text NOT NULL, mail text, roles text[])');
const accounts = [
  { login: 'alice', pw: 'alice-Pw-0011', mail: 'alice@example.com', roles: ['admins'] },
  { login: 'alice ', pw: 'mallory-Pw-0011', mail: ' alice@example.com', roles: [' admins', 'staff ', 'Domain Users'] },
  { login: ' alice', pw: 'mallory-Pw-0012', mail: 'alice@example.com ', roles: ['\tadmins'] },
];
for (const a of accounts) {
  await bed.pool.query('INSERT INTO legacy_accounts VALUES ($1, $2, $3, $4)', [a.login, await hashPassword(a.pw), a.mail, a.roles]);
}
const gw = await bed.gateway({
  GATEWAY_USER_QUERY: 'SELECT login AS username, pw AS password_hash, mail AS email, roles AS groups FROM legacy_accounts WHERE login = $1',
});

const percentEncodeAll = (value: string) => [...Buffer.from(value, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');

t.test('a spaced account reaches the app as itself, never as alice', async (t) => {
  for (const account of accounts.slice(1)) {
    const label = JSON.stringify(account.login);
    const cookie = await login(gw, account.login, account.pw);
    const res = await send(`${gw.url}/whoami`, { headers: withSession(gw, cookie, { accept: 'application/json' }) });
    t.equal(res.status, 200, `${label}: forwarded`);
    const echo = res.json<Echo>();
    // What the app's own HTTP parser made of it: this is what it authorises with.
    t.not(echo.headers['x-forwarded-user'], 'alice', `${label}: the app does not see alice`);
    t.equal(echo.headers['x-forwarded-user'], percentEncodeAll(account.login), `${label}: the user header is encoded in full`);
    t.equal(decodeURIComponent(String(echo.headers['x-forwarded-user'])), account.login, `${label}: and decodes to exactly the account that signed in`);
    t.not(echo.headers['x-forwarded-email'], 'alice@example.com', `${label}: not alice's e-mail either`);
    t.equal(decodeURIComponent(String(echo.headers['x-forwarded-email'])), account.mail, `${label}: the e-mail decodes to its own value`);
    const groups = String(echo.headers['x-forwarded-groups']).split(',');
    t.notOk(groups.includes('admins'), `${label}: no plain admins group`);
    t.same(groups.map(decodeURIComponent), account.roles, `${label}: the groups decode to their own values`);
    const spaced = rawPairs(echo).filter(([name, value]) => name.toLowerCase().startsWith('x-forwarded-') && value !== value.trim());
    t.same(spaced, [], `${label}: no identity value on the wire starts or ends with whitespace`);
  }
});

t.test('forward-auth (/_auth/verify) encodes the same way', async (t) => {
  const cookie = await login(gw, 'alice ', 'mallory-Pw-0011');
  const res = await send(`${gw.url}/_auth/verify`, { headers: withSession(gw, cookie) });
  t.equal(res.status, 204);
  t.equal(res.headers['x-forwarded-user'], percentEncodeAll('alice '), 'the proxy in front passes on an encoded value, not `alice `');
  t.equal(res.headers['x-forwarded-groups'], `${percentEncodeAll(' admins')},${percentEncodeAll('staff ')},Domain Users`);
});

t.test('control: the real alice still travels as plain `alice`', async (t) => {
  const res = await send(`${gw.url}/whoami`, { headers: withSession(gw, await login(gw, 'alice', 'alice-Pw-0011'), { accept: 'application/json' }) });
  const echo = res.json<Echo>();
  t.equal(echo.headers['x-forwarded-user'], 'alice');
  t.equal(echo.headers['x-forwarded-groups'], 'admins');
});
