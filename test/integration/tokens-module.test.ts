// API tokens and the Basic verifier below the doors, against real PostgreSQL and Redis: two
// "replicas" (each its own Redis connections, session store, caches) share the stores, so what one
// revokes the other must refuse at once, and a hot token or Basic credential must cost no store
// call and no hash.
import t from 'tap';
import pg from 'pg';
import { createRedisClient, connectRedis } from '../../src/redis-client.js';
import { createRedisSessionStore } from '../../src/session/redis-store.js';
import { createRedisThrottle } from '../../src/login/throttle.js';
import { setDisabled } from '../../src/users/user-admin.js';
import { verifyPassword } from '../../src/users/passwords.js';
import { createPostgresUserStore } from '../../src/users/user-store.js';
import { migrateTokens } from '../../src/tokens/migrations.js';
import { createToken } from '../../src/tokens/token-admin.js';
import { createPostgresTokenStore, type TokenStore } from '../../src/tokens/token-store.js';
import { createTokenServices, type TokenServices } from '../../src/tokens/services.js';
import { hashToken, isWellFormedToken } from '../../src/tokens/token.js';
import type { TokenOutcome } from '../../src/tokens/verifier.js';
import { seedUsers, uniquePrefix } from '../helpers/gateway.js';
import { services } from '../helpers/services.js';

const PASSWORD = 'correct horse battery';
const { redis, pg: postgres } = await services(t);
const pool = await seedUsers(t, postgres.url, [
  { username: 'alice', password: PASSWORD, email: 'alice@example.com', groups: ['staff'] },
  { username: 'bob', password: PASSWORD },
  { username: 'carol', password: PASSWORD },
]);
await migrateTokens(pool);
await migrateTokens(pool); // idempotent
const prefix = uniquePrefix();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Replica {
  services: TokenServices;
  /** Calls that reached PostgreSQL for a token, and password hashes run. */
  counts: { find: number; markUsed: number; hashes: number };
  outcomes: TokenOutcome[];
  clock: { offset: number };
}

async function replica(options: { maxPerUser?: number } = {}): Promise<Replica> {
  const client = createRedisClient({ mode: 'standalone', url: redis.url }, { tlsCa: null, commandTimeoutMs: 2_000, connectTimeoutMs: 2_000 });
  await connectRedis(client, 5_000);
  const store = createRedisSessionStore(client, { prefix });
  t.teardown(async () => {
    await store.close();
    client.disconnect();
  });
  const ownPool = new pg.Pool({ connectionString: postgres.url, max: 2 });
  t.teardown(() => ownPool.end());
  const users = createPostgresUserStore(ownPool);
  const counts = { find: 0, markUsed: 0, hashes: 0 };
  const real = createPostgresTokenStore(ownPool);
  const counted: TokenStore = {
    ...real,
    find: (h) => ((counts.find += 1), real.find(h)),
    markUsed: (h, at) => ((counts.markUsed += 1), real.markUsed(h, at)),
  };
  const outcomes: TokenOutcome[] = [];
  const clock = { offset: 0 };
  const rebuilt = createTokenServices({
    pool: ownPool,
    tokenStore: counted,
    sessionStore: store,
    redis: client,
    redisPrefix: prefix,
    findUser: (n) => users.find(n),
    verifyPassword: (stored, password, opts) => ((counts.hashes += 1), verifyPassword(stored, password, opts)),
    allowPlaintext: false,
    throttle: createRedisThrottle(client, prefix, { maxPerUser: options.maxPerUser ?? 5, maxPerIp: 50, windowMs: 60_000 }),
    cacheMaxEntries: 1000,
    cacheTtlMs: 60_000,
    lastUsedIntervalMs: 60_000,
    basicAuth: true,
    basicAuthCacheMs: 5 * 60_000,
    now: () => Date.now() + clock.offset,
    events: { validated: (o) => void outcomes.push(o) },
  });
  // Wait until the invalidation channel is live (the subscriber connects on its own).
  for (let i = 0; i < 100 && !rebuilt.invalidation.live(); i++) await sleep(20);
  return { services: rebuilt, counts, outcomes, clock };
}

const users = createPostgresUserStore(pool);
const tokenStore = createPostgresTokenStore(pool);
const issue = (user: string, name: string, expiresInMs: number | null = null) => createToken(tokenStore, (n) => users.find(n), { user, name, expiresInMs });
const basic = (user: string, password: string) => Buffer.from(`${user}:${password}`).toString('base64');

const one = await replica();
const two = await replica();

t.test('a token is 256 random bits, shown once, stored only as a hash', async (t) => {
  const { token } = await issue('alice', 'laptop');
  t.ok(isWellFormedToken(token), token.slice(0, 8));
  const rows = (await pool.query("SELECT * FROM gateway_tokens WHERE username = 'alice' AND name = 'laptop'")).rows as Array<Record<string, unknown>>;
  t.equal(rows.length, 1);
  t.equal(rows[0]?.token_hash, hashToken(token));
  t.notOk(JSON.stringify(rows).includes(token.slice(8)), 'the token itself is nowhere in the row');
  await t.rejects(issue('alice', 'laptop'), { message: /already has a token named/ }, 'a second token of the same name is refused');
  await t.rejects(issue('nobody', 'x'), { message: /no such user/ });
  await t.rejects(issue('alice', 'bad name'), { message: /token name/ });
});

t.test('valid on both replicas; a hot token costs no store call; revoked on one, refused on the other at once', async (t) => {
  const { token } = await issue('alice', 'ci');
  for (const r of [one, two]) {
    const v = await r.services.tokens?.verify(token);
    t.match(v, { outcome: 'valid', identity: { user: 'alice', email: 'alice@example.com', groups: ['staff'] }, name: 'ci' });
  }
  const before = two.counts.find;
  for (let i = 0; i < 50; i++) t.equal((await two.services.tokens?.verify(token))?.outcome, 'valid');
  t.equal(two.counts.find, before, '50 hot validations, no PostgreSQL lookup');

  const hash = await tokenStore.revoke('alice', 'ci');
  t.ok(hash);
  const revokedAt = Date.now();
  await one.services.invalidation.tokenRevoked(hash as string);
  let outcome: string | undefined;
  while (Date.now() - revokedAt < 1_000) {
    outcome = (await two.services.tokens?.verify(token))?.outcome;
    if (outcome !== 'valid') break;
    await sleep(2);
  }
  t.equal(outcome, 'revoked', `refused on the other replica after ${Date.now() - revokedAt} ms`);
  t.ok(Date.now() - revokedAt < 250, 'within milliseconds, as a revoked session');
  t.equal((await one.services.tokens?.verify(token))?.outcome, 'revoked');
  t.ok(two.outcomes.includes('revoked'), 'counted by outcome');
});

t.test('an expired token is refused, cached or not', async (t) => {
  const { token } = await issue('bob', 'short', 60_000);
  t.equal((await one.services.tokens?.verify(token))?.outcome, 'valid');
  one.clock.offset += 61_000;
  t.equal((await one.services.tokens?.verify(token))?.outcome, 'expired', 'cached entry expires');
  two.clock.offset += 61_000;
  t.equal((await two.services.tokens?.verify(token))?.outcome, 'expired', 'read from the store: expired');
  one.clock.offset -= 61_000;
  two.clock.offset -= 61_000;
});

t.test('unknown, malformed and disabled-user tokens are refused', async (t) => {
  t.equal((await one.services.tokens?.verify('sgw_pat_' + 'A'.repeat(43)))?.outcome, 'invalid');
  t.equal((await one.services.tokens?.verify('sgw_pat_short'))?.outcome, 'invalid');
  const { token } = await issue('carol', 'script');
  await setDisabled(pool, 'carol', true);
  t.equal((await one.services.tokens?.verify(token))?.outcome, 'disabled');
  await setDisabled(pool, 'carol', false);
  t.equal((await one.services.tokens?.verify(token))?.outcome, 'valid');
  // users disable on a cached token: the CLI tells every replica (u:<user>)
  await setDisabled(pool, 'carol', true);
  await one.services.invalidation.userChanged('carol');
  await sleep(50);
  t.equal((await two.services.tokens?.verify(token))?.outcome, 'disabled', 'the other replica reads the user again');
  await setDisabled(pool, 'carol', false);
});

t.test('last-used time is written at most once per interval', async (t) => {
  const { token } = await issue('bob', 'lastused');
  const r = await replica();
  const writes = r.counts.markUsed;
  for (let i = 0; i < 20; i++) await r.services.tokens?.verify(token);
  await sleep(50);
  t.equal(r.counts.markUsed - writes, 1, 'one write for 20 uses');
  const row = (await pool.query("SELECT last_used_at FROM gateway_tokens WHERE username = 'bob' AND name = 'lastused'")).rows[0] as { last_used_at: Date | null };
  t.ok(row.last_used_at instanceof Date, 'written');
  r.clock.offset += 61_000;
  await r.services.tokens?.verify(token);
  await sleep(50);
  t.equal(r.counts.markUsed - writes, 2, 'again once the interval has passed');
});

t.test('Basic: one hash per interval for a client that sends it on every request', async (t) => {
  const r = await replica();
  const hashes = r.counts.hashes;
  const results = await Promise.all(Array.from({ length: 10 }, () => r.services.basic?.verify(basic('alice', PASSWORD), '10.0.0.1')));
  for (const res of results) t.equal(res?.outcome, 'valid');
  for (let i = 0; i < 20; i++) t.equal((await r.services.basic?.verify(basic('alice', PASSWORD), '10.0.0.1'))?.outcome, 'valid');
  t.equal(r.counts.hashes - hashes, 1, '30 requests (10 of them at once), one password hash');
  t.equal((await r.services.basic?.verify(basic('alice', 'wrong password'), '10.0.0.1'))?.outcome, 'invalid', 'another password is not the cached one');
  t.equal(r.counts.hashes - hashes, 2);
});

t.test('Basic: a wrong password and an unknown user take the same path and give the same answer', async (t) => {
  const r = await replica();
  const a = r.counts.hashes;
  const wrong = await r.services.basic?.verify(basic('bob', 'not the password'), '10.0.0.2');
  t.equal(r.counts.hashes - a, 1, 'wrong password: one hash');
  const unknown = await r.services.basic?.verify(basic('nobody-here', 'not the password'), '10.0.0.2');
  t.equal(r.counts.hashes - a, 2, 'unknown user: one (dummy) hash too');
  t.equal(wrong?.outcome, 'invalid');
  t.equal(unknown?.outcome, 'invalid');
  t.same(await r.services.authenticator.authenticate(`Basic ${basic('bob', 'x')}`, '10.0.0.2').then((v) => v.kind), 'invalid');
});

t.test('Basic: throttled like the form, then even the right password is refused', async (t) => {
  const r = await replica({ maxPerUser: 3 });
  for (let i = 0; i < 3; i++) t.equal((await r.services.basic?.verify(basic('carol', `guess ${i}`), '10.0.0.3'))?.outcome, 'invalid');
  const refused = await r.services.basic?.verify(basic('carol', PASSWORD), '10.0.0.3');
  t.equal(refused?.outcome, 'throttled');
  t.ok(refused?.outcome === 'throttled' && refused.retryAfterSeconds > 0);
});

t.test('Basic with a token as the password; the name must be the token\'s user', async (t) => {
  const { token } = await issue('bob', 'git');
  const h = one.counts.hashes;
  t.equal((await one.services.basic?.verify(basic('bob', token), '10.0.0.4'))?.outcome, 'valid');
  t.equal(one.counts.hashes, h, 'no password hash for a token');
  t.equal((await one.services.basic?.verify(basic('alice', token), '10.0.0.4'))?.outcome, 'invalid', 'another user name');
});

t.test('Basic: a password change (u:<user>) drops the cached credential on every replica', async (t) => {
  t.equal((await two.services.basic?.verify(basic('bob', PASSWORD), '10.0.0.5'))?.outcome, 'valid');
  const h = two.counts.hashes;
  t.equal((await two.services.basic?.verify(basic('bob', PASSWORD), '10.0.0.5'))?.outcome, 'valid');
  t.equal(two.counts.hashes, h, 'cached');
  await one.services.invalidation.userChanged('bob');
  await sleep(50);
  t.equal((await two.services.basic?.verify(basic('bob', PASSWORD), '10.0.0.5'))?.outcome, 'valid');
  t.equal(two.counts.hashes, h + 1, 'checked again after the invalidation');
});

t.test('the header authenticator: what it owns and what it leaves to the app', async (t) => {
  const a = one.services.authenticator;
  t.ok(a.owns('Bearer sgw_pat_x'), 'a gateway token, even a bad one');
  t.ok(a.owns('bearer   sgw_pat_x'));
  t.notOk(a.owns('Bearer eyJhbGciOi.app.token'), "the app's own bearer token");
  t.ok(a.owns('Basic YTpi'), 'Basic, when GATEWAY_BASIC_AUTH is on');
  t.notOk(a.owns(undefined));
  t.same(await a.authenticate('Bearer eyJhbGciOi.app.token', '10.0.0.6'), { kind: 'none' });
  t.same((await a.authenticate('Bearer sgw_pat_nope', '10.0.0.6')).kind, 'invalid');
});
