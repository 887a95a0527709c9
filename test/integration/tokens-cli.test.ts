// `session-gateway tokens create|list|revoke` (SPEC 1 and 9) run as operators run it, against real
// PostgreSQL and Redis: the token is printed once and stored only as a hash, listing never shows
// it, revocation is audited and published to every replica, and a legacy users table works
// through GATEWAY_USER_QUERY.
import t from 'tap';
import { Redis } from 'ioredis';
import { hashToken, isWellFormedToken } from '../../src/tokens/token.js';
import { ensureBuilt, runCli, type CliResult } from '../helpers/cli.js';
import { seedUsers, TEST_SECRET, uniquePrefix } from '../helpers/gateway.js';
import { services } from '../helpers/services.js';

// Every step is a real `node dist/cli.js` start (seconds each on a busy machine): more room than the default.
t.setTimeout(600_000);
await ensureBuilt();
const { redis, pg } = await services(t);
const pool = await seedUsers(t, pg.url, [{ username: 'alice', password: 'correct horse battery' }, { username: 'dora', password: 'correct horse battery' }]);
const prefix = uniquePrefix();
const env = { DATABASE_URL: pg.url, REDIS_URL: redis.url, GATEWAY_SESSION_SECRET: TEST_SECRET, GATEWAY_REDIS_PREFIX: prefix };
const cli = (args: string[], extraEnv: Record<string, string> = {}) => runCli(args, { env: { ...env, ...extraEnv } });
const describe = (r: CliResult) => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

t.test('migrate creates gateway_tokens (idempotent)', async (t) => {
  for (const run of [1, 2]) {
    const r = await cli(['migrate']);
    t.equal(r.code, 0, `migrate #${run}: ${describe(r)}`);
  }
  const { rows } = await pool.query("SELECT to_regclass('gateway_tokens') AS t");
  t.equal((rows[0] as { t: string | null }).t, 'gateway_tokens');
});

t.test('create prints the token once; list shows name and times, never the token', async (t) => {
  const r = await cli(['tokens', 'create', 'alice', '--name', 'ci', '--expires', '90d']);
  t.equal(r.code, 0, describe(r));
  t.equal(r.out.length, 1, 'standard output is the token alone');
  const token = r.out[0] as string;
  t.ok(isWellFormedToken(token), 'sgw_pat_ and 43 base64url characters');
  t.notOk(r.stderr.includes(token), 'the audit line does not carry the token');
  const audit = JSON.parse(r.err.find((l) => l.includes('token_created')) as string) as Record<string, unknown>;
  t.match(audit, { audit: 'token_created', user: 'alice', token: 'ci' });
  const stored = await pool.query('SELECT username, name FROM gateway_tokens WHERE token_hash = $1', [hashToken(token)]);
  t.same(stored.rows, [{ username: 'alice', name: 'ci' }], 'stored by its hash');

  const list = await cli(['tokens', 'list', 'alice']);
  t.equal(list.code, 0, describe(list));
  t.equal(list.out.length, 1);
  const listed = JSON.parse(list.out[0] as string) as Record<string, unknown>;
  t.same(Object.keys(listed), ['name', 'created', 'expires', 'lastUsed']);
  t.equal(listed.name, 'ci');
  t.equal(listed.lastUsed, null);
  const days = (Date.parse(listed.expires as string) - Date.parse(listed.created as string)) / 86_400_000;
  t.ok(Math.abs(days - 90) < 0.01, `expires in 90 days (${days})`);
  t.notOk(list.stdout.includes(token.slice(8)));

  const again = await cli(['tokens', 'create', 'alice', '--name', 'ci']);
  t.equal(again.code, 1, 'a second token of the same name');
  t.match(again.stderr, /already has a token named "ci"/);
});

t.test('revoke deletes, audits and tells every replica', async (t) => {
  const created = await cli(['tokens', 'create', 'alice', '--name', 'laptop']);
  const token = created.out[0] as string;
  const subscriber = new Redis(redis.url);
  t.teardown(() => subscriber.disconnect());
  const heard: string[] = [];
  await subscriber.subscribe(`${prefix}invalidate`);
  subscriber.on('message', (_channel: string, message: string) => heard.push(message));
  const r = await cli(['tokens', 'revoke', 'alice', 'laptop']);
  t.equal(r.code, 0, describe(r));
  t.match(JSON.parse(r.err.find((l) => l.includes('"revocation"')) as string), { audit: 'revocation', user: 'alice', token: 'laptop', by: 'cli' });
  for (let i = 0; i < 50 && heard.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  t.same(heard, [`t:${hashToken(token)}`], 'the hash went out on the invalidation channel');
  const left = await pool.query("SELECT name FROM gateway_tokens WHERE username = 'alice' ORDER BY name");
  t.same(left.rows, [{ name: 'ci' }]);
  const missing = await cli(['tokens', 'revoke', 'alice', 'laptop']);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /has no token named "laptop"/);
});

t.test('refusals: unknown or disabled user, bad names and durations, usage', async (t) => {
  const unknown = await cli(['tokens', 'create', 'nobody', '--name', 'x']);
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, /no such user "nobody"/);
  await pool.query("UPDATE gateway_users SET disabled = true WHERE username = 'dora'");
  const disabled = await cli(['tokens', 'create', 'dora', '--name', 'x']);
  t.equal(disabled.code, 1);
  t.match(disabled.stderr, /is disabled/);
  for (const args of [
    ['tokens', 'create', 'alice', '--name', 'has space'],
    ['tokens', 'create', 'alice', '--name', 'x', '--expires', 'soon'],
    ['tokens', 'revoke', 'alice'],
  ]) {
    const r = await cli(args);
    t.equal(r.code, 2, `${args.join(' ')}: ${describe(r)}`);
  }
});

t.test('a legacy users table through GATEWAY_USER_QUERY', async (t) => {
  await pool.query('CREATE TABLE legacy_people (login text PRIMARY KEY, pass text, active boolean)');
  await pool.query("INSERT INTO legacy_people VALUES ('erin', 'x', true), ('frank', 'x', false)");
  const legacy = { GATEWAY_USER_QUERY: 'SELECT login AS username, pass AS password_hash, NOT active AS disabled FROM legacy_people WHERE login = $1' };
  const ok = await cli(['tokens', 'create', 'erin', '--name', 'dav'], legacy);
  t.equal(ok.code, 0, describe(ok));
  t.ok(isWellFormedToken(ok.out[0] as string));
  const off = await cli(['tokens', 'create', 'frank', '--name', 'dav'], legacy);
  t.equal(off.code, 1);
  t.match(off.stderr, /is disabled/);
  const list = await cli(['tokens', 'list', 'erin'], legacy);
  t.equal(JSON.parse(list.out[0] as string).name, 'dav');
});
