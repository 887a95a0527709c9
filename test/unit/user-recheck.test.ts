// The session manager's user recheck with an injected clock and user store: when it reads, how
// reads are shared per user, what ends a session and what is adopted, and a store that fails.
import t from 'tap';
import { createCookieSigner } from '../../src/session/id.js';
import { createLocalSessionCache } from '../../src/session/local-cache.js';
import { createSessionManager, type FreshUser, type UserEndReason } from '../../src/session/manager.js';
import { createMemorySessionStore } from '../../src/session/memory-store.js';
import { createPasswordFingerprints } from '../../src/users/fingerprint.js';

const SECRET = 'unit-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
const INTERVAL = 5_000;

function setup() {
  let clock = 1_000_000;
  const now = () => clock;
  const users = new Map<string, FreshUser>([['ivy', { email: 'ivy@example.com', groups: ['staff'], disabled: false, passwordHash: '$argon2id$old' }]]);
  let storeDown = false;
  const reads: string[] = [];
  const ended: Array<{ user: string; reason: UserEndReason; sessions: number }> = [];
  const manager = createSessionManager({
    store: createMemorySessionStore({ now }),
    signer: createCookieSigner([SECRET]),
    cache: createLocalSessionCache({ maxEntries: 100, ttlMs: 600_000 }),
    idleTimeoutMs: 600_000,
    maxLifetimeMs: 3_600_000,
    touchIntervalMs: 1_000,
    now,
    events: { userSessionsEnded: (user, reason, sessions) => void ended.push({ user, reason, sessions }) },
    userCheck: {
      intervalMs: INTERVAL,
      ...createPasswordFingerprints([SECRET]),
      async read(user) {
        reads.push(user);
        await new Promise((resolve) => setImmediate(resolve));
        if (storeDown) return 'error';
        const found = users.get(user);
        return found ? { ...found } : 'gone';
      },
    },
  });
  const signIn = () => manager.create({ user: 'ivy', email: 'ivy@example.com', groups: ['staff'] }, { passwordHash: users.get('ivy')?.passwordHash ?? null });
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  return { manager, users, reads, ended, signIn, settle, advance: (ms: number) => (clock += ms), setStoreDown: (down: boolean) => (storeDown = down) };
}

t.test('no read within the interval; then one read for all sessions of a user, however many requests', async (t) => {
  const { manager, reads, signIn, advance, settle } = setup();
  const sessions = await Promise.all([signIn(), signIn(), signIn(), signIn(), signIn()]);
  for (let i = 0; i < 20; i++) for (const s of sessions) t.equal((await manager.validate(s.cookieValue)).outcome, 'valid');
  t.equal(reads.length, 0, 'the sign-in counts as a read');
  advance(INTERVAL);
  const burst = await Promise.all(sessions.flatMap((s) => [1, 2, 3].map(() => manager.validate(s.cookieValue))));
  t.ok(burst.every((v) => v.outcome === 'valid'));
  t.same(reads, ['ivy'], 'five sessions, fifteen requests: one read');
  await settle();
  advance(INTERVAL - 1);
  for (const s of sessions) await manager.validate(s.cookieValue);
  t.equal(reads.length, 1, 'not again within the interval');
  advance(1);
  for (const s of sessions) await manager.validate(s.cookieValue);
  t.equal(reads.length, 2, 'once more after it');
});

t.test('disabled or deleted: every session of the user ends, with one audit event', async (t) => {
  for (const change of ['disabled', 'deleted'] as const) {
    const { manager, users, ended, signIn, advance } = setup();
    const [a, b] = [await signIn(), await signIn()];
    if (change === 'disabled') users.set('ivy', { ...(users.get('ivy') as FreshUser), disabled: true });
    else users.delete('ivy');
    advance(INTERVAL - 1);
    t.equal((await manager.validate(a.cookieValue)).outcome, 'valid', `${change}: still valid within the interval`);
    advance(1);
    t.equal((await manager.validate(a.cookieValue)).outcome, 'revoked', `${change}: refused once due`);
    t.equal((await manager.validate(b.cookieValue)).outcome, 'revoked', `${change}: the other session too`);
    t.same(ended, [{ user: 'ivy', reason: change, sessions: 2 }]);
    t.same(await manager.listByUser('ivy'), [], 'nothing left in the store');
  }
});

t.test('a new password hash ends the sessions signed in with the old one, not those with the new one', async (t) => {
  const { manager, users, ended, signIn, advance } = setup();
  const old = await signIn();
  users.set('ivy', { ...(users.get('ivy') as FreshUser), passwordHash: '$argon2id$new' });
  const fresh = await signIn();
  advance(INTERVAL);
  t.equal((await manager.validate(old.cookieValue)).outcome, 'revoked');
  t.equal((await manager.validate(fresh.cookieValue)).outcome, 'valid');
  t.same(ended, [{ user: 'ivy', reason: 'password_changed', sessions: 1 }]);
});

t.test('a changed e-mail and groups are adopted, and kept in the store', async (t) => {
  const { manager, users, signIn, advance, settle } = setup();
  const s = await signIn();
  users.set('ivy', { ...(users.get('ivy') as FreshUser), email: 'ivy@new.example', groups: ['ops'] });
  advance(INTERVAL);
  const v = await manager.validate(s.cookieValue);
  t.equal(v.outcome, 'valid');
  if (v.outcome === 'valid') t.match(v.session.record, { email: 'ivy@new.example', groups: ['ops'] });
  await settle();
  const [stored] = await manager.listByUser('ivy');
  t.match(stored?.record, { email: 'ivy@new.example', groups: ['ops'] });
  t.notOk(JSON.stringify(stored).includes('argon2'), 'the store holds a fingerprint, never the hash');
});

t.test('the user store down: sessions go on, and the read is tried again after the interval', async (t) => {
  const { manager, users, reads, signIn, advance, setStoreDown } = setup();
  const s = await signIn();
  setStoreDown(true);
  advance(INTERVAL);
  t.equal((await manager.validate(s.cookieValue)).outcome, 'valid');
  t.equal((await manager.validate(s.cookieValue)).outcome, 'valid');
  t.equal(reads.length, 1, 'a failed read is not repeated by every request');
  setStoreDown(false);
  users.set('ivy', { ...(users.get('ivy') as FreshUser), disabled: true });
  advance(INTERVAL);
  t.equal((await manager.validate(s.cookieValue)).outcome, 'revoked', 'retried once the interval passed');
});

t.test('fingerprints: keyed, truncated, stable across a secret rotation', async (t) => {
  const before = createPasswordFingerprints([SECRET]);
  const after = createPasswordFingerprints(['rotated-secret-0123456789-abcdefghijklmnop', SECRET]);
  const kept = before.fingerprint('$argon2id$x');
  t.match(kept, /^[A-Za-z0-9_-]{11}$/, '64 bits');
  t.notOk(kept.includes('argon2'));
  t.ok(after.samePassword('$argon2id$x', kept), 'a fingerprint under a retired secret still matches');
  t.notOk(after.samePassword('$argon2id$y', kept));
  t.notOk(after.samePassword(null, kept));
  t.not(createPasswordFingerprints(['other-secret-0123456789-abcdefghijklmnopq']).fingerprint('$argon2id$x'), kept, 'keyed');
  t.notOk(before.samePassword('$argon2id$x', 'short'));
  // What the previous version kept for '$argon2id$x' under SECRET: 128 bits of the same HMAC.
  const earlier = 'nM9jQYThTFv4dSDMSPkx8w';
  t.ok(before.samePassword('$argon2id$x', earlier), 'a 128-bit fingerprint of an earlier version still matches');
  t.ok(after.samePassword('$argon2id$x', earlier), 'also under a rotated secret');
  t.notOk(before.samePassword('$argon2id$y', earlier), 'and still tells a new password');
  t.notOk(before.samePassword('$argon2id$x', earlier.slice(0, 16)), 'a length neither version writes');
});
