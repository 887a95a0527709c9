// The `session-gateway` CLI (SPEC section 1) run as operators run it: `node dist/cli.js …` with
// the environment and passwords on standard input, against real PostgreSQL and Redis, and its
// effects checked on a running gateway sharing the same stores and Redis prefix.
import t from 'tap';
import { verifyPassword } from '../../src/users/passwords.js';
import { hashSessionId } from '../../src/session/id.js';
import { ensureBuilt, runCli, type CliResult } from '../helpers/cli.js';
import { login, startTestGateway, TEST_SECRET, uniquePrefix, withSession } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import { services } from '../helpers/services.js';
import { startEchoUpstream } from '../helpers/upstream.js';

await ensureBuilt();
const { redis, pg } = await services(t);
const prefix = uniquePrefix();
const env = { DATABASE_URL: pg.url, REDIS_URL: redis.url, GATEWAY_SESSION_SECRET: TEST_SECRET, GATEWAY_REDIS_PREFIX: prefix };

const cli = (args: string[], stdin?: string, extraEnv: Record<string, string> = {}) =>
  runCli(args, { env: { ...env, ...extraEnv }, ...(stdin !== undefined ? { stdin } : {}) });

/** A readable assertion message for a CLI run. */
const describe = (r: CliResult) => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

async function listedUsers(t: Tap): Promise<Array<Record<string, unknown>>> {
  const r = await cli(['users', 'list']);
  t.equal(r.code, 0, `users list: ${describe(r)}`);
  return r.out.map((line) => JSON.parse(line) as Record<string, unknown>);
}
type Tap = Pick<typeof t, 'equal'>;

t.test('migrate is idempotent', async (t) => {
  for (const run of [1, 2]) {
    const r = await cli(['migrate']);
    t.equal(r.code, 0, `migrate #${run}: ${describe(r)}`);
    t.same(r.out, ['migrated']);
  }
  t.same(await listedUsers(t), [], 'the users table exists and is empty');
});

t.test('users add, then users list shows the user as JSON', async (t) => {
  const r = await cli(['users', 'add', 'alice', '--email', 'a@x', '--groups', 'a,b', '--password-stdin'], 'first password\n');
  t.equal(r.code, 0, describe(r));
  t.same(r.out, ['added alice']);
  t.notMatch(r.stdout + r.stderr, /first password/, 'the password is never echoed');

  const users = await listedUsers(t);
  t.equal(users.length, 1);
  t.match(users[0], { username: 'alice', email: 'a@x', groups: ['a', 'b'], disabled: false });
  t.ok(!Number.isNaN(Date.parse(String(users[0]?.createdAt))), 'createdAt is a date');
  t.notOk(JSON.stringify(users).includes('argon2'), 'no password hash is listed');
});

t.test('adding an existing user fails with one clear line', async (t) => {
  const r = await cli(['users', 'add', 'alice', '--password-stdin'], 'another password\n');
  t.equal(r.code, 1, describe(r));
  t.equal(r.err.length, 1, 'one line on stderr');
  t.match(r.err[0], /alice.*already exists/);
  t.same(r.out, []);
});

t.test('usage errors exit 2 and change nothing', async (t) => {
  const noStdin = await cli(['users', 'add', 'bob'], 'would-be password\n');
  t.equal(noStdin.code, 2, describe(noStdin));
  t.match(noStdin.stderr, /--password-stdin/);
  t.match(noStdin.stderr, /usage: session-gateway/);

  const positional = await cli(['users', 'add', 'bob', 'hunter2']);
  t.equal(positional.code, 2, `a password as an argument is refused: ${describe(positional)}`);

  const unknown = await cli(['frobnicate']);
  t.equal(unknown.code, 2, describe(unknown));
  t.match(unknown.stderr, /unknown command "frobnicate"/);

  const unknownOption = await cli(['users', 'list', '--bogus']);
  t.equal(unknownOption.code, 2, describe(unknownOption));
  t.match(unknownOption.stderr, /--bogus/);

  const badAction = await cli(['sessions', 'purge', 'alice']);
  t.equal(badAction.code, 2, describe(badAction));

  const empty = await cli(['users', 'add', 'bob', '--password-stdin'], '\n');
  t.equal(empty.code, 2, `an empty password is a usage error: ${describe(empty)}`);

  t.same(
    (await listedUsers(t)).map((u) => u.username),
    ['alice'],
    'bob was never created',
  );
});

t.test('names with leading/trailing whitespace or control characters are usage errors (SPEC 4)', async (t) => {
  const refused: Array<[string[], RegExp]> = [
    [['users', 'add', 'alice ', '--password-stdin'], /user name "alice " starts or ends with whitespace/],
    [['users', 'add', ' alice', '--password-stdin'], /starts or ends with whitespace/],
    [['users', 'add', 'alice\t', '--password-stdin'], /control characters/],
    [['users', 'add', 'alice\u00a0', '--password-stdin'], /starts or ends with whitespace/],
    [['users', 'add', 'al\u001bice', '--password-stdin'], /control characters/],
    [['users', 'add', 'carol', '--email', ' carol@example.com', '--password-stdin'], /e-mail " carol@example.com" starts or ends with whitespace/],
    [['users', 'add', 'carol', '--groups', 'staff,adm\u0007ins', '--password-stdin'], /group .* contains control characters/],
    [['users', 'passwd', 'alice ', '--password-stdin'], /starts or ends with whitespace/],
    [['users', 'disable', 'alice\u2003'], /starts or ends with whitespace/],
    [['users', 'delete', 'alice\r'], /control characters/],
    [['sessions', 'revoke', ' alice'], /starts or ends with whitespace/],
  ];
  for (const [args, message] of refused) {
    const r = await cli(args, 'a password\n');
    t.equal(r.code, 2, `${JSON.stringify(args)}: ${describe(r)}`);
    t.match(r.stderr, message);
  }
  const spacedList = await cli(['users', 'add', 'carol', '--groups', 'staff, ops', '--password-stdin'], 'carol password\n');
  t.equal(spacedList.code, 0, `spaces around the commas of --groups are list formatting: ${describe(spacedList)}`);
  t.same(
    (await listedUsers(t)).map((u) => [u.username, u.groups]),
    [['alice', ['a', 'b']], ['carol', ['staff', 'ops']]],
    'no spaced or control-character account was created',
  );
  t.equal((await cli(['users', 'delete', 'carol'])).code, 0);
});

t.test('hash-password prints an argon2id hash that verifies', async (t) => {
  const r = await cli(['hash-password', '--password-stdin'], 'pa55 word\n', { DATABASE_URL: '', REDIS_URL: '', GATEWAY_SESSION_SECRET: '' });
  t.equal(r.code, 0, describe(r));
  t.equal(r.out.length, 1);
  const hash = r.out[0] ?? '';
  t.match(hash, /^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$/);
  t.equal((await verifyPassword(hash, 'pa55 word', { allowPlaintext: false })).ok, true, 'the hash verifies (trailing newline dropped)');
  t.equal((await verifyPassword(hash, 'pa55 word\n', { allowPlaintext: false })).ok, false);
  t.equal((await verifyPassword(hash, 'wrong', { allowPlaintext: false })).ok, false);

  const noStdin = await cli(['hash-password']);
  t.equal(noStdin.code, 2, describe(noStdin));
});

t.test('a configuration error exits 1 with one line per problem naming each variable', async (t) => {
  const r = await cli(['migrate'], undefined, { GATEWAY_PORT: 'abc', GATEWAY_SESSION_IDLE_TIMEOUT: 'soon' });
  t.equal(r.code, 1, describe(r));
  t.equal(r.err.length, 2, `two lines: ${r.stderr}`);
  t.ok(r.err.some((l) => /GATEWAY_PORT/.test(l) && /"abc"/.test(l)), 'GATEWAY_PORT named');
  t.ok(r.err.some((l) => /GATEWAY_SESSION_IDLE_TIMEOUT/.test(l) && /"soon"/.test(l)), 'GATEWAY_SESSION_IDLE_TIMEOUT named');
  t.same(r.out, [], 'nothing done');

  const noDb = await cli(['users', 'list'], undefined, { DATABASE_URL: '' });
  t.not(noDb.code, 0, `users list without DATABASE_URL fails: ${describe(noDb)}`);
  t.match(noDb.stderr, /DATABASE_URL/);
});

t.test('operator commands act on a running gateway', async (t) => {
  const upstream = await startEchoUpstream();
  t.teardown(() => upstream.close());
  const gw = await startTestGateway(t, { REDIS_URL: redis.url, DATABASE_URL: pg.url, GATEWAY_UPSTREAM: upstream.url, GATEWAY_REDIS_PREFIX: prefix });
  const protectedStatus = async (cookie: string) => (await send(`${gw.url}/app`, { headers: withSession(gw, cookie) })).status;
  const loginStatus = async (password: string) =>
    (
      await send(`${gw.url}/_auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'alice', password }),
      })
    ).status;

  // Two logins, two sessions.
  const first = await login(gw, 'alice', 'first password');
  const second = await login(gw, 'alice', 'first password');
  t.equal(await protectedStatus(first), 200);
  t.equal(await protectedStatus(second), 200);

  const listed = await cli(['sessions', 'list', 'alice']);
  t.equal(listed.code, 0, describe(listed));
  t.equal(listed.out.length, 2, 'one JSON line per session');
  const hashes = [first, second].map((cookie) => hashSessionId(cookie.slice(0, cookie.lastIndexOf('.'))));
  for (const line of listed.out) {
    const session = JSON.parse(line) as Record<string, string>;
    t.match(session, { id: String, created: String, lastSeen: String, expires: String });
    t.ok(session.id && session.id.length >= 8 && session.id.length < 43, `id is a short prefix (${session.id})`);
    t.ok(hashes.some((h) => session.id && h.startsWith(session.id)), 'id is a prefix of the session id hash');
    for (const field of ['created', 'lastSeen', 'expires'] as const) t.ok(!Number.isNaN(Date.parse(session[field] ?? '')), `${field} is a date`);
    t.ok(Date.parse(session.expires ?? '') > Date.parse(session.created ?? ''), 'expires after created');
  }
  for (const cookie of [first, second]) {
    const id = cookie.slice(0, cookie.lastIndexOf('.'));
    t.notOk(listed.stdout.includes(id), 'no full session id is printed');
    t.notOk(listed.stdout.includes(cookie), 'no cookie value is printed');
  }
  t.not(JSON.parse(listed.out[0] ?? '{}').id, JSON.parse(listed.out[1] ?? '{}').id, 'two distinct sessions');

  // A password change revokes every session of the user.
  const passwd = await cli(['users', 'passwd', 'alice', '--password-stdin'], 'second password\n');
  t.equal(passwd.code, 0, describe(passwd));
  t.match(passwd.stdout, /2 session\(s\) revoked/);
  t.equal(await protectedStatus(first), 401, 'first cookie refused after passwd');
  t.equal(await protectedStatus(second), 401, 'second cookie refused after passwd');
  t.equal(await loginStatus('first password'), 401, 'the old password no longer works');
  const third = await login(gw, 'alice', 'second password');
  t.equal(await protectedStatus(third), 200, 'the new password works');
  t.equal(await protectedStatus(third), 200, 'and the session is now served from the local cache');

  const invalidations = async () => {
    const text = (await send(`${gw.adminUrl}/metrics`)).body;
    return Number(/^gateway_session_cache_invalidations_total\{kind="session"\} (\d+)/m.exec(text)?.[1] ?? 0);
  };
  const invalidationsBefore = await invalidations();
  const revoke = await cli(['sessions', 'revoke', 'alice']);
  t.equal(revoke.code, 0, describe(revoke));
  t.same(revoke.out, ['1'], 'prints how many sessions were revoked');
  const auditLine = revoke.err.map((line) => JSON.parse(line) as Record<string, unknown>).find((entry) => entry.audit === 'revocation');
  t.match(auditLine, { audit: 'revocation', user: 'alice', sessions: 1, by: 'cli', command: 'sessions revoke', outcome: 'success' }, 'an audit line on standard error (SPEC 7)');
  t.equal(await protectedStatus(third), 401, 'the cached session stops working at once on the running gateway');
  t.equal(await invalidations(), invalidationsBefore + 1, "the gateway's local cache received the invalidation");
  const none = await cli(['sessions', 'list', 'alice']);
  t.same([none.code, none.out], [0, []], 'no sessions left');
  const again = await cli(['sessions', 'revoke', 'alice']);
  t.same(again.out, ['0'], 'revoking nothing prints 0');

  // Disable refuses logins and ends sessions; enable restores logins.
  const fourth = await login(gw, 'alice', 'second password');
  const disable = await cli(['users', 'disable', 'alice']);
  t.equal(disable.code, 0, describe(disable));
  t.equal(await protectedStatus(fourth), 401, 'disabling ends her session');
  t.equal(await loginStatus('second password'), 401, 'a disabled user cannot log in');
  t.match((await listedUsers(t)).find((u) => u.username === 'alice'), { disabled: true });

  const enable = await cli(['users', 'enable', 'alice']);
  t.equal(enable.code, 0, describe(enable));
  t.equal(await loginStatus('second password'), 200, 'enabled again: login works');
  const fifth = await login(gw, 'alice', 'second password');
  t.equal(await protectedStatus(fifth), 200);

  // Delete removes the user and her sessions.
  const del = await cli(['users', 'delete', 'alice']);
  t.equal(del.code, 0, describe(del));
  t.equal(await protectedStatus(fifth), 401, 'deleting ends her session');
  t.equal(await loginStatus('second password'), 401, 'a deleted user cannot log in');
  t.same(await listedUsers(t), [], 'gone from users list');
  const delAgain = await cli(['users', 'delete', 'alice']);
  t.equal(delAgain.code, 1, describe(delAgain));
  t.match(delAgain.stderr, /no such user "alice"/);
  const passwdGone = await cli(['users', 'passwd', 'alice', '--password-stdin'], 'x\n');
  t.equal(passwdGone.code, 1, describe(passwdGone));

  const audit = gw.logs.join('');
  t.notOk(audit.includes('second password') || audit.includes('first password'), 'no password in the gateway log');
});
