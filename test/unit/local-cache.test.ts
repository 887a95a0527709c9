// The in-process session cache: bounded by GATEWAY_SESSION_CACHE_SIZE (least recently used out
// first), a TTL backstop, forgetting by id hash, and no memory taken up front for entries it does
// not hold.
import t from 'tap';
import { createLocalSessionCache, type CachedSession } from '../../src/session/local-cache.js';

const entry = (n: number): CachedSession => ({
  idHash: `hash-${n}`,
  record: { user: `user${n}`, email: null, groups: [], createdAt: 0, expiresAt: 1, touchedAt: 0 },
  id: `id-${n}`,
  signedWithOldSecret: false,
  confirmedAt: 0,
});

t.test('holds at most maxEntries, and drops the least recently used first', async (t) => {
  const cache = createLocalSessionCache({ maxEntries: 3, ttlMs: 60_000 });
  for (const n of [1, 2, 3]) cache.set(`cookie-${n}`, entry(n));
  t.equal(cache.get('cookie-1')?.idHash, 'hash-1', 'read: 1 is now the most recent');
  cache.set('cookie-4', entry(4));
  t.equal(cache.size, 3);
  t.equal(cache.get('cookie-2'), undefined, '2, the least recently used, went');
  t.same(['cookie-1', 'cookie-3', 'cookie-4'].map((c) => cache.get(c)?.idHash), ['hash-1', 'hash-3', 'hash-4']);
  for (let n = 5; n < 1_000; n++) cache.set(`cookie-${n}`, entry(n));
  t.equal(cache.size, 3, 'still three after a thousand more');
});

t.test('forgets a session by its id hash, and a new cookie for the same session replaces the old', async (t) => {
  const cache = createLocalSessionCache({ maxEntries: 10, ttlMs: 60_000 });
  cache.set('cookie-a', entry(1));
  cache.set('cookie-b', entry(1)); // the same session re-signed (secret rotation)
  t.equal(cache.get('cookie-a'), undefined, 'the old cookie value no longer hits');
  t.equal(cache.get('cookie-b')?.idHash, 'hash-1');
  cache.forget('hash-1');
  t.equal(cache.get('cookie-b'), undefined);
  t.equal(cache.size, 0);
});

t.test('an entry older than the TTL is not served', async (t) => {
  const cache = createLocalSessionCache({ maxEntries: 10, ttlMs: 30 });
  cache.set('cookie-1', entry(1));
  t.ok(cache.get('cookie-1'));
  await new Promise((resolve) => setTimeout(resolve, 60));
  t.equal(cache.get('cookie-1'), undefined);
});

t.test('takes no memory up front for entries it does not hold', async (t) => {
  // With lru-cache's `max` its index for a million entries (about 40 MB) was allocated at once.
  const before = process.memoryUsage();
  const cache = createLocalSessionCache({ maxEntries: 1_000_000, ttlMs: 60_000 });
  cache.set('cookie-1', entry(1));
  const after = process.memoryUsage();
  const grown = after.heapUsed - before.heapUsed + (after.arrayBuffers - before.arrayBuffers);
  t.ok(grown < 1024 * 1024, `${(grown / 1024).toFixed(0)} KiB for a cache of one session bounded at a million`);
  t.equal(cache.get('cookie-1')?.idHash, 'hash-1');
});
