// One contract, every store: the in-process store of the embedded mode must behave like the
// Redis store it stands in for (TTLs, the per-user index, invalidations).
import t from 'tap';
import { Redis } from 'ioredis';
import { createMemorySessionStore } from '../../src/session/memory-store.js';
import { connectRedis, createRedisClient } from '../../src/redis-client.js';
import { DEFAULT_REDIS_COMMAND_TIMEOUT_MS, DEFAULT_REDIS_CONNECT_TIMEOUT_MS } from '../../src/config/config.js';
import { hashSessionId, newSessionId } from '../../src/session/id.js';
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
      // A touch time is kept in whole seconds after the sign-in (session/codec.ts).
      t.equal(await store.touch('h1', { ...r, touchedAt: r.touchedAt + 5_000 }, 10_000), true);
      t.equal((await store.get('h1'))?.touchedAt, r.touchedAt + 5_000);
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
  const client = createRedisClient({ mode: 'standalone', url: redisService.url }, { commandTimeoutMs: DEFAULT_REDIS_COMMAND_TIMEOUT_MS, connectTimeoutMs: DEFAULT_REDIS_CONNECT_TIMEOUT_MS });
  await connectRedis(client, 5_000);
  t.teardown(() => client.disconnect());
  return createRedisSessionStore(client, { prefix: uniquePrefix() });
});

t.test('redis: the per-user index never outlives its sessions', async (t) => {
  const client = createRedisClient({ mode: 'standalone', url: redisService.url }, { commandTimeoutMs: DEFAULT_REDIS_COMMAND_TIMEOUT_MS, connectTimeoutMs: DEFAULT_REDIS_CONNECT_TIMEOUT_MS });
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

// A rolling upgrade: records earlier versions wrote (JSON arrays, and the previous compact form with
// its times in ms) are read and touched by this one; with GATEWAY_SESSION_COMPACT_RECORDS=false it
// writes only the JSON form, which every earlier version reads.
t.test('redis: records of the previous version are read; the old form is written when asked', async (t) => {
  const client = createRedisClient({ mode: 'standalone', url: redisService.url }, { commandTimeoutMs: DEFAULT_REDIS_COMMAND_TIMEOUT_MS, connectTimeoutMs: DEFAULT_REDIS_CONNECT_TIMEOUT_MS });
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
  t.ok((await raw.get(`${prefix}s:old1`))?.startsWith('4ivy\x1f'), 'rewritten in the compact form');
  t.equal((await legacy.get('old1'))?.touchedAt, now + 1_000);
  await legacy.create('old2', record('jo'), 60_000);
  const stored = (await raw.get(`${prefix}s:old2`)) as string;
  t.equal((JSON.parse(stored) as unknown[])[0], 'jo', 'the old form: a JSON array');
  t.equal((await compact.get('old2'))?.user, 'jo');
  // Verbatim what the previous release stores in its compact form: read to the millisecond.
  const c = now.toString(36);
  await raw.set(`${prefix}s:old3`, `2\x1fkim\x1f\x1fa\x1f${c}\x1f${(60_000).toString(36)}\x1f${(1_234).toString(36)}\x1f${(1_234).toString(36)}\x1fAbCdEfGhIjKlMnOpQrStUv`, 'PX', 60_000);
  t.same(await compact.get('old3'), { user: 'kim', email: null, groups: ['a'], createdAt: now, expiresAt: now + 60_000, touchedAt: now + 1_234, checkedAt: now + 1_234, passwordFingerprint: 'AbCdEfGhIjKlMnOpQrStUv' });
});

// The index's compact entries (16 raw bytes of the id hash, scored in whole seconds) beside the
// previous form's (the 22-character hash, scored in ms): both read, listed, capped and deleted, so an
// upgrade loses no entry; GATEWAY_SESSION_COMPACT_RECORDS=false writes the previous form.
t.test('redis: index entries of both forms; the compact one is smaller; sign-ins within one second stay ordered', async (t) => {
  const client = createRedisClient({ mode: 'standalone', url: redisService.url }, { commandTimeoutMs: DEFAULT_REDIS_COMMAND_TIMEOUT_MS, connectTimeoutMs: DEFAULT_REDIS_CONNECT_TIMEOUT_MS });
  await connectRedis(client, 5_000);
  t.teardown(() => client.disconnect());
  const prefix = uniquePrefix();
  const compact = createRedisSessionStore(client, { prefix });
  const legacy = createRedisSessionStore(client, { prefix, compactRecords: false });
  t.teardown(() => Promise.all([compact.close(), legacy.close()]));
  const raw = new Redis(redisService.url);
  t.teardown(() => raw.quit());
  const newHash = () => hashSessionId(newSessionId());
  const now = Date.now();

  const fresh = newHash();
  const r = record('olga', { createdAt: now, touchedAt: now, expiresAt: now + 60_000 });
  await compact.create(fresh, r, 60_000);
  const [member, score] = await raw.zrangeBuffer(`${prefix}u:olga`, 0, -1, 'WITHSCORES');
  t.same(member, Buffer.from(fresh, 'base64url'), 'the entry is the id hash as 16 raw bytes');
  t.equal(Number(score?.toString()), Math.ceil(r.expiresAt / 1_000), 'scored by the end of the max lifetime, in whole seconds (never before it)');

  // What the previous release writes: the text hash scored in ms, beside a JSON record.
  const old = newHash();
  await raw.set(`${prefix}s:${old}`, JSON.stringify(['olga', null, [], now - 5_000, 60_000, 0]), 'PX', 60_000);
  await raw.zadd(`${prefix}u:olga`, now + 55_000, old);
  t.same((await compact.listByUser('olga')).map((s) => s.idHash).sort(), [fresh, old].sort(), 'both forms listed');
  t.same(await compact.endOldest('olga', 1), [old], 'the older sign-in ends, whatever form its entry has');
  t.equal(await raw.exists(`${prefix}s:${old}`), 0);
  t.equal(await raw.zcard(`${prefix}u:olga`), 1);

  // Expired entries of both forms leave the index when a session is created.
  const gone = newHash();
  await raw.zadd(`${prefix}u:olga`, now - 1_000, gone, Math.floor(now / 1_000) - 1, Buffer.from(newHash(), 'base64url'));
  await compact.create(newHash(), record('olga'), 60_000);
  t.equal(await raw.zcard(`${prefix}u:olga`), 2, 'the two expired entries were pruned');
  t.equal(await compact.deleteByUser('olga'), 2);
  t.equal(await raw.exists(`${prefix}s:${fresh}`), 0);

  // One session each, one index each: the compact entry takes a smaller allocation.
  const viaCompact = newHash();
  const viaLegacy = newHash();
  await compact.create(viaCompact, record('pia'), 60_000);
  await legacy.create(viaLegacy, record('quinn'), 60_000);
  const [legacyMember, legacyScore] = await raw.zrange(`${prefix}u:quinn`, 0, -1, 'WITHSCORES');
  t.equal(legacyMember, viaLegacy, 'compactRecords: false writes the previous form: the text hash');
  t.ok(Number(legacyScore) > 1e12, 'scored in ms');
  t.same((await legacy.listByUser('pia')).map((s) => s.idHash), [viaCompact], 'and reads the compact one');
  const compactBytes = (await raw.memory('USAGE', `${prefix}u:pia`)) as number;
  const legacyBytes = (await raw.memory('USAGE', `${prefix}u:quinn`)) as number;
  t.ok(compactBytes < legacyBytes, `index of one session: ${compactBytes} bytes, ${legacyBytes} in the previous form`);
  t.ok(await legacy.delete(viaCompact, 'pia'));
  t.equal(await raw.exists(`${prefix}u:pia`), 0, 'deleting the only session leaves no entry in either form');

  // Two sign-ins within one second share a score: their sign-in times order them, even when the
  // earlier one's bytes sort after the later one's.
  let [early, late] = [newHash(), newHash()];
  while (Buffer.compare(Buffer.from(early, 'base64url'), Buffer.from(late, 'base64url')) < 0) [early, late] = [newHash(), newHash()];
  const second = Math.floor(now / 1_000) * 1_000 + 100;
  await compact.create(late, record('rita', { createdAt: second + 5, touchedAt: second + 5, expiresAt: second + 5 + 60_000 }), 60_000);
  await compact.create(early, record('rita', { createdAt: second, touchedAt: second, expiresAt: second + 60_000 }), 60_000);
  t.same(await compact.endOldest('rita', 1), [early], 'the earlier sign-in of the same second ends');
});
