// Attack: fill the Redis that holds every session through the login throttle. Once one address
// has used its per-IP budget it gets 429, but each further attempt with a fresh username still
// created a per-username counter (up to ~940 bytes with a long name) for the whole window: one
// address wrote ~500 keys/s into the sessions' Redis, so the store's memory grew with the
// attacker's request rate, not with the number of users.
// Defence: src/login/throttle.ts asks the IP first and never increments a counter already at its
// limit: an attempt the IP limit refuses writes nothing, one the user limit refuses writes nothing
// per username; names are hashed into fixed-size keys. What one address can leave in Redis per
// window is one IP counter plus GATEWAY_LOGIN_MAX_ATTEMPTS_PER_IP small username counters.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import t from 'tap';
import { jsonLogin, testBed } from './setup.js';

const PER_IP = 5;
const REFUSED = 300;
const bed = await testBed(t, [{ username: 'ann', password: 'ann-Pw-Right-0017' }]);
const gw = await bed.gateway({ GATEWAY_LOGIN_MAX_ATTEMPTS: '3', GATEWAY_LOGIN_MAX_ATTEMPTS_PER_IP: String(PER_IP), GATEWAY_LOGIN_WINDOW: '15m' });
const redis = new Redis(bed.redis.url, { lazyConnect: true });
await redis.connect();
t.teardown(() => redis.quit());

/** Every throttle key of this gateway, and what Redis says they take (MEMORY USAGE). */
async function throttleFootprint(): Promise<{ keys: number; bytes: number }> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${bed.prefix}t:*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  let bytes = 0;
  for (const key of keys) bytes += Number(await redis.memory('USAGE', key)) || 0;
  return { keys: keys.length, bytes };
}
/** INFO memory's used_memory: only meaningful on a Redis of this test's own (no TEST_REDIS_URL). */
const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1]);
const longName = () => `${randomBytes(8).toString('hex')}-${'ü'.repeat(230)}`;

t.test('attempts refused by the per-IP limit write nothing to Redis', async (t) => {
  for (let i = 0; i < PER_IP; i++) t.equal((await jsonLogin(gw, { username: longName(), password: 'wrong' })).status, 401, `guess ${i + 1} is checked`);
  const before = await throttleFootprint();
  const usedBefore = await usedMemory();
  t.ok(before.keys <= PER_IP + 1, `one IP counter and at most ${PER_IP} username counters (${before.keys} keys, ${before.bytes} bytes)`);
  for (let i = 0; i < REFUSED; i++) {
    const res = await jsonLogin(gw, { username: longName(), password: 'wrong' });
    if (res.status !== 429) t.fail(`refused attempt ${i}: ${res.status}`);
  }
  const after = await throttleFootprint();
  const usedAfter = await usedMemory();
  t.comment(`throttle keys before/after ${REFUSED} refused attempts: ${before.keys}/${after.keys} keys, ${before.bytes}/${after.bytes} bytes (MEMORY USAGE); INFO used_memory ${usedBefore}/${usedAfter}`);
  t.same(after, before, `${REFUSED} refused attempts with fresh long names added no key and no byte`);
});

t.test('attempts refused by the per-user limit write no username counter', async (t) => {
  const other = await bed.gateway({ GATEWAY_LOGIN_MAX_ATTEMPTS: '2', GATEWAY_LOGIN_MAX_ATTEMPTS_PER_IP: '1000', GATEWAY_REDIS_PREFIX: `${bed.prefix}u:` });
  const footprint = async () => {
    const keys = await redis.keys(`${bed.prefix}u:t:*`);
    return { keys: keys.length, values: (await Promise.all(keys.map((k) => redis.get(k)))).sort() };
  };
  for (let i = 0; i < 2; i++) t.equal((await jsonLogin(other, { username: 'ann', password: `wrong-${i}` })).status, 401);
  const before = await footprint();
  for (let i = 0; i < 20; i++) t.equal((await jsonLogin(other, { username: 'ann', password: `wrong-${i}` })).status, 429);
  t.same(await footprint(), before, 'the same two counters with the same counts: the IP got its refused attempts back');
});

t.test('control: the per-IP refusal still holds for the right password, and ends with the window', async (t) => {
  const res = await jsonLogin(gw, { username: 'ann', password: 'ann-Pw-Right-0017' });
  t.equal(res.status, 429);
  t.match(res.headers['retry-after'], /^[1-9]\d*$/);
});
