// One contract, every store: the in-process store of the embedded mode must behave like the
// Redis store it stands in for (TTLs, the per-user index, invalidations).
import t from 'tap';
import { Redis } from 'ioredis';
import { createMemorySessionStore } from '../../src/session/memory-store.js';
import { connectRedis, createRedisClient } from '../../src/redis-client.js';
import { createRedisSessionStore } from '../../src/session/redis-store.js';
import type { SessionRecord, SessionStore } from '../../src/session/types.js';
import { uniquePrefix } from '../helpers/gateway.js';
import { startRedis } from '../helpers/services.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const record = (user: string, overrides: Partial<SessionRecord> = {}): SessionRecord => {
  const now = Date.now();
  return { user, email: `${user}@example.com`, groups: ['a', 'b'], createdAt: now, expiresAt: now + 60_000, touchedAt: now, ...overrides };
};

async function waitFor(check: () => boolean, ms = 2_000): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (check()) return true;
    await sleep(20);
  }
  return check();
}

function contract(name: string, makeStore: () => Promise<SessionStore>) {
  t.test(`${name}: session store contract`, async (t) => {
    const store = await makeStore();
    t.teardown(() => store.close());
    await waitFor(() => store.invalidationsLive());

    t.test('create, get, touch, delete', async (t) => {
      const r = record('carol');
      await store.create('h1', r, 10_000);
      t.same(await store.get('h1'), r);
      t.equal(await store.touch('h1', { ...r, touchedAt: r.touchedAt + 5 }, 10_000), true);
      t.equal((await store.get('h1'))?.touchedAt, r.touchedAt + 5);
      t.equal(await store.delete('h1', 'carol'), true);
      t.equal(await store.get('h1'), null);
      t.equal(await store.touch('h1', r, 10_000), false, 'touch never resurrects a deleted session');
      t.equal(await store.delete('h1', 'carol'), false);
    });

    t.test('entries expire with their TTL', async (t) => {
      await store.create('h2', record('dave'), 150);
      t.ok(await store.get('h2'));
      await sleep(300);
      t.equal(await store.get('h2'), null);
      t.same(await store.listByUser('dave'), [], 'an expired session is not listed');
    });

    t.test('per-user index: list and delete all', async (t) => {
      await store.create('e1', record('erin'), 10_000);
      await store.create('e2', record('erin'), 10_000);
      await store.create('f1', record('frank'), 10_000);
      t.same((await store.listByUser('erin')).map((s) => s.idHash).sort(), ['e1', 'e2']);
      t.equal(await store.deleteByUser('erin'), 2);
      t.same(await store.listByUser('erin'), []);
      t.equal(await store.get('e1'), null);
      t.ok(await store.get('f1'), 'other users are untouched');
      t.equal(await store.deleteByUser('nobody'), 0);
    });

    t.test('endOldest keeps the newest sessions, ends the oldest and announces them', async (t) => {
      const seen: string[] = [];
      store.onInvalidation((e) => {
        if (e.kind === 'session') seen.push(e.idHash);
      });
      const at = Date.now();
      for (const [i, idHash] of ['k3', 'k1', 'k4', 'k2'].entries()) {
        // Created out of order: the oldest is the earliest sign-in (earliest max-lifetime end), not the first written.
        const createdAt = at + Number(idHash.slice(1)) * 10;
        await store.create(idHash, record('kate', { createdAt, touchedAt: createdAt, expiresAt: createdAt + 60_000 }), 10_000 + i);
      }
      await store.create('l1', record('liam'), 10_000);
      t.same((await store.endOldest('kate', 2)).sort(), ['k1', 'k2']);
      t.same((await store.listByUser('kate')).map((s) => s.idHash).sort(), ['k3', 'k4'], 'the two newest remain');
      t.equal(await store.get('k1'), null);
      t.equal(await store.get('k2'), null);
      t.same(await store.endOldest('kate', 2), [], 'at the cap: nothing more ends');
      t.ok(await store.get('l1'), 'other users are untouched');
      t.ok(await waitFor(() => seen.includes('k1') && seen.includes('k2')), `announced: ${seen.join(',')}`);
      t.same(await store.endOldest('nobody', 1), []);
    });

    t.test('endOldest counts only live sessions: one ended on its idle timeout leaves room', async (t) => {
      const at = Date.now();
      await store.create('m1', record('mia', { createdAt: at, expiresAt: at + 60_000 }), 10_000);
      await store.create('m2', record('mia', { createdAt: at + 10, expiresAt: at + 60_010 }), 100);
      await store.create('m3', record('mia', { createdAt: at + 20, expiresAt: at + 60_020 }), 10_000);
      await sleep(250);
      t.same(await store.endOldest('mia', 2), [], 'm2 is gone, so m1 and m3 are within the cap');
      t.same((await store.listByUser('mia')).map((s) => s.idHash).sort(), ['m1', 'm3']);
      t.same(await store.endOldest('mia', 1), ['m1']);
    });

    t.test('endOldest under concurrent calls ends each session once and leaves exactly the cap', async (t) => {
      const at = Date.now();
      const ids = Array.from({ length: 12 }, (_, i) => `n${String(i).padStart(2, '0')}`);
      await Promise.all(ids.map((idHash, i) => store.create(idHash, record('nina', { createdAt: at + i, expiresAt: at + 60_000 + i }), 10_000)));
      const results = await Promise.all(Array.from({ length: 6 }, () => store.endOldest('nina', 3)));
      const ended = results.flat().sort();
      t.same(ended, ids.slice(0, 9), 'the nine oldest, each ended by exactly one call');
      t.same((await store.listByUser('nina')).map((s) => s.idHash).sort(), ids.slice(9));
    });

    t.test('deletions are announced to invalidation listeners', async (t) => {
      const seen: string[] = [];
      store.onInvalidation((e) => {
        if (e.kind === 'session') seen.push(e.idHash);
      });
      await store.create('g1', record('gina'), 10_000);
      await store.create('g2', record('gina'), 10_000);
      await store.delete('g1', 'gina');
      await store.deleteByUser('gina');
      t.ok(await waitFor(() => seen.includes('g1') && seen.includes('g2')), `announced: ${seen.join(',')}`);
    });
  });
}

contract('memory', async () => createMemorySessionStore());

const redisService = await startRedis();
t.teardown(() => redisService.stop());
contract('redis', async () => {
  const client = createRedisClient({ mode: 'standalone', url: redisService.url });
  await connectRedis(client, 5_000);
  t.teardown(() => client.disconnect());
  return createRedisSessionStore(client, { prefix: uniquePrefix() });
});

t.test('redis: the per-user index never outlives its sessions', async (t) => {
  const client = createRedisClient({ mode: 'standalone', url: redisService.url });
  await connectRedis(client, 5_000);
  t.teardown(() => client.disconnect());
  const prefix = uniquePrefix();
  const store = createRedisSessionStore(client, { prefix });
  t.teardown(() => store.close());
  const r = record('henry', { expiresAt: Date.now() + 5_000 });
  await store.create('i1', r, 5_000);
  const raw = new Redis(redisService.url);
  t.teardown(() => raw.quit());
  const ttl = await raw.pttl(`${prefix}u:henry`);
  t.ok(ttl > 0 && ttl <= 5_000, `index TTL ${ttl} ms ends with the session's max lifetime`);
});

// A rolling upgrade: records the previous version wrote (JSON arrays) are read and touched by this
// one; with GATEWAY_SESSION_COMPACT_RECORDS=false it writes only that form, which old replicas read.
t.test('redis: records of the previous version are read; the old form is written when asked', async (t) => {
  const client = createRedisClient({ mode: 'standalone', url: redisService.url });
  await connectRedis(client, 5_000);
  t.teardown(() => client.disconnect());
  const prefix = uniquePrefix();
  const compact = createRedisSessionStore(client, { prefix });
  const legacy = createRedisSessionStore(client, { prefix, compactRecords: false });
  t.teardown(() => Promise.all([compact.close(), legacy.close()]));
  const raw = new Redis(redisService.url);
  t.teardown(() => raw.quit());
  const now = Date.now();
  // Verbatim what the previous version stores for a session with the user recheck's fields.
  await raw.set(`${prefix}s:old1`, JSON.stringify(['ivy', 'ivy@example.com', ['a'], now, 60_000, 0, 0, 'AbCdEfGhIjKlMnOpQrStUv']), 'PX', 60_000);
  const read = await compact.get('old1');
  t.same(read, { user: 'ivy', email: 'ivy@example.com', groups: ['a'], createdAt: now, expiresAt: now + 60_000, touchedAt: now, checkedAt: now, passwordFingerprint: 'AbCdEfGhIjKlMnOpQrStUv' });
  t.ok(await compact.touch('old1', { ...(read as SessionRecord), touchedAt: now + 1_000 }, 60_000));
  t.ok((await raw.get(`${prefix}s:old1`))?.startsWith('2\x1fivy\x1f'), 'rewritten in the compact form');
  t.equal((await legacy.get('old1'))?.touchedAt, now + 1_000);
  await legacy.create('old2', record('jo'), 60_000);
  const stored = (await raw.get(`${prefix}s:old2`)) as string;
  t.equal((JSON.parse(stored) as unknown[])[0], 'jo', 'the old form: a JSON array');
  t.equal((await compact.get('old2'))?.user, 'jo');
});
