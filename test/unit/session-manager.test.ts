// Session policy with an injected clock: outcomes, idle vs max deadlines, touch interval.
import t from 'tap';
import { createCookieSigner } from '../../src/session/id.js';
import { createLocalSessionCache } from '../../src/session/local-cache.js';
import { createSessionManager } from '../../src/session/manager.js';
import { createMemorySessionStore } from '../../src/session/memory-store.js';
import type { SessionRecord, SessionStore } from '../../src/session/types.js';

const SECRET = 'unit-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
const identity = { user: 'ivy', email: null, groups: [] };

function setup(options: { touchIntervalMs?: number } = {}) {
  let clock = 1_000_000;
  const now = () => clock;
  const store = createMemorySessionStore({ now });
  const calls = { get: 0, touch: 0 };
  const counted: SessionStore = {
    ...store,
    get: (h) => (calls.get++, store.get(h)),
    touch: (h, r: SessionRecord, ttl) => (calls.touch++, store.touch(h, r, ttl)),
  };
  const outcomes: string[] = [];
  const manager = createSessionManager({
    store: counted,
    signer: createCookieSigner([SECRET]),
    cache: createLocalSessionCache({ maxEntries: 100, ttlMs: 60_000 }),
    idleTimeoutMs: 10_000,
    maxLifetimeMs: 30_000,
    touchIntervalMs: options.touchIntervalMs ?? 1_000,
    now,
    events: { validated: (o) => outcomes.push(o) },
  });
  return { manager, calls, outcomes, advance: (ms: number) => (clock += ms), t0: clock };
}

t.test('outcomes: missing, invalid, valid, revoked, expired', async (t) => {
  const { manager, advance } = setup();
  t.equal((await manager.validate(undefined)).outcome, 'missing');
  t.equal((await manager.validate('not-a-cookie')).outcome, 'invalid');
  const forged = createCookieSigner(['another-secret-0123456789-abcdefghijklmnop']).sign('A'.repeat(43));
  t.equal((await manager.validate(forged)).outcome, 'invalid', 'a cookie signed with an unknown secret');
  const { cookieValue } = await manager.create(identity);
  t.equal((await manager.validate(cookieValue)).outcome, 'valid');
  await manager.destroy(cookieValue);
  t.equal((await manager.validate(cookieValue)).outcome, 'revoked');
  const second = await manager.create(identity);
  advance(10_001);
  t.equal((await manager.validate(second.cookieValue)).outcome, 'expired', 'idle timeout');
});

t.test('idle timeout rolls with activity, max lifetime does not', async (t) => {
  const { manager, advance } = setup();
  const { cookieValue } = await manager.create(identity);
  for (let elapsed = 0; elapsed + 4_000 < 30_000; elapsed += 4_000) {
    advance(4_000);
    t.equal((await manager.validate(cookieValue)).outcome, 'valid', `valid at +${elapsed + 4_000} ms`);
    await new Promise((r) => setImmediate(r)); // let the background touch land
  }
  advance(2_001); // 30.001 s after login, 2 s after the last request
  t.equal((await manager.validate(cookieValue)).outcome, 'expired', 'past the 30 s max lifetime');
});

t.test('the store is touched at most once per interval, and a hot session is not read again', async (t) => {
  const { manager, calls, advance } = setup({ touchIntervalMs: 5_000 });
  const { cookieValue } = await manager.create(identity);
  for (let i = 0; i < 10; i++) {
    advance(100);
    await manager.validate(cookieValue);
  }
  t.equal(calls.touch, 0, 'no write within the interval');
  t.equal(calls.get, 0, 'no read for a cached session');
  advance(5_000);
  await manager.validate(cookieValue);
  await manager.validate(cookieValue);
  t.equal(calls.touch, 1, 'one write once the interval has passed');
});

t.test('concurrent cold lookups of one session share one store read', async (t) => {
  const { calls } = setup();
  // A second manager on the same store has a cold cache.
  const store = createMemorySessionStore();
  let reads = 0;
  const slow: SessionStore = { ...store, get: async (h) => (reads++, await new Promise((r) => setTimeout(r, 20)), store.get(h)) };
  const make = () =>
    createSessionManager({ store: slow, signer: createCookieSigner([SECRET]), cache: createLocalSessionCache({ maxEntries: 10, ttlMs: 60_000 }), idleTimeoutMs: 10_000, maxLifetimeMs: 30_000, touchIntervalMs: 1_000 });
  const { cookieValue } = await make().create(identity);
  const cold = make();
  const results = await Promise.all(Array.from({ length: 50 }, () => cold.validate(cookieValue)));
  t.ok(results.every((r) => r.outcome === 'valid'));
  t.equal(reads, 1);
  t.equal(calls.get, 0);
});

t.test('validate with touch: false never rolls the idle deadline (a WebSocket re-check is not activity)', async (t) => {
  const { manager, calls, advance } = setup({ touchIntervalMs: 1_000 });
  const { cookieValue } = await manager.create(identity);
  for (let i = 0; i < 4; i++) {
    advance(2_000);
    t.equal((await manager.validate(cookieValue, { touch: false })).outcome, 'valid');
  }
  t.equal(calls.touch, 0, 'nothing written');
  advance(2_001);
  t.equal((await manager.validate(cookieValue, { touch: false })).outcome, 'expired', 'idle since login, however often it was checked');
});

t.test('onInvalidation: told after the cache has dropped the session, so a re-check sees it ended', async (t) => {
  const { manager } = setup();
  const { cookieValue } = await manager.create(identity);
  const seen: string[] = [];
  manager.onInvalidation((event) => {
    seen.push(event.kind);
    void manager.validate(cookieValue).then((v) => seen.push(v.outcome));
  });
  await manager.destroy(cookieValue);
  await new Promise((r) => setImmediate(r));
  t.same(seen, ['session', 'revoked']);
});

t.test('endSessionsBeyondCap: nothing without a cap; with one, this replica refuses the ended at once', async (t) => {
  let clock = 1_000_000;
  const now = () => clock;
  const store = createMemorySessionStore({ now });
  let endOldestCalls = 0;
  // Invalidations never arrive here (pub/sub still in flight): the manager must not wait for them.
  const quiet: SessionStore = { ...store, onInvalidation: () => undefined, endOldest: (u, keep) => (endOldestCalls++, store.endOldest(u, keep)) };
  const make = (maxSessionsPerUser?: number) =>
    createSessionManager({ store: quiet, signer: createCookieSigner([SECRET]), cache: createLocalSessionCache({ maxEntries: 10, ttlMs: 60_000 }), idleTimeoutMs: 10_000, maxLifetimeMs: 30_000, touchIntervalMs: 1_000, now, ...(maxSessionsPerUser === undefined ? {} : { maxSessionsPerUser }) });

  const uncapped = make();
  await uncapped.create(identity);
  await uncapped.create(identity);
  t.equal(await uncapped.endSessionsBeyondCap('ivy'), 0);
  t.equal(endOldestCalls, 0, 'no store call without a cap');
  await uncapped.revokeUser('ivy');

  const capped = make(1);
  const older = await capped.create(identity);
  t.equal((await capped.validate(older.cookieValue)).outcome, 'valid', 'cached');
  clock += 1_000;
  const newer = await capped.create(identity);
  t.equal(await capped.endSessionsBeyondCap('ivy'), 1);
  t.equal((await capped.validate(older.cookieValue)).outcome, 'revoked', 'dropped from this replica\'s cache without waiting for pub/sub');
  t.equal((await capped.validate(newer.cookieValue)).outcome, 'valid');
});
