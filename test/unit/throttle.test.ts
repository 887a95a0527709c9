// The in-process throttle of the embedded mode, with an injected clock.
import t from 'tap';
import { createMemoryThrottle } from '../../src/login/throttle.js';

t.test('memory throttle: failures accumulate per user and per IP within a fixed window', async (t) => {
  let clock = 0;
  const throttle = createMemoryThrottle({ maxPerUser: 2, maxPerIp: 3, windowMs: 60_000 }, () => clock);
  t.same(await throttle.begin('Ann', '10.0.0.1'), { allowed: true });
  t.same(await throttle.begin('ann', '10.0.0.1'), { allowed: true }, 'usernames share one budget whatever their case');
  t.same(await throttle.begin('ann', '10.0.0.1'), { allowed: false, retryAfterSeconds: 60, by: 'user' });
  clock += 30_000;
  t.same(await throttle.begin('ann', '10.0.0.1'), { allowed: false, retryAfterSeconds: 30, by: 'user' }, 'Retry-After counts down');
  t.same(await throttle.begin('ben', '10.0.0.1'), { allowed: true }, 'refused attempts were not counted against the IP');
  t.same(await throttle.begin('cat', '10.0.0.1'), { allowed: false, retryAfterSeconds: 30, by: 'ip' });
  clock += 30_000;
  t.same(await throttle.begin('ann', '10.0.0.1'), { allowed: true }, 'a new window starts');
});

t.test('memory throttle: a success clears the user and hands the IP its attempt back', async (t) => {
  const throttle = createMemoryThrottle({ maxPerUser: 2, maxPerIp: 2, windowMs: 60_000 }, () => 0);
  await throttle.begin('dee', '10.0.0.2');
  await throttle.begin('dee', '10.0.0.2');
  await throttle.succeeded('dee', '10.0.0.2');
  t.same(await throttle.begin('dee', '10.0.0.2'), { allowed: true });
  t.same(await throttle.begin('eve', '10.0.0.2'), { allowed: false, retryAfterSeconds: 60, by: 'ip' }, 'the failure still counts for the IP');
});

t.test('memory throttle: ended windows are forgotten, so a flood of names leaves nothing behind', async (t) => {
  let clock = 0;
  const throttle = createMemoryThrottle({ maxPerUser: 5, maxPerIp: 1_000_000, windowMs: 60_000 }, () => clock, 10_000);
  for (let i = 0; i < 30_000; i++) {
    clock += 1;
    await throttle.begin(`user-${i}`, `10.0.${(i >> 8) & 255}.${i & 255}`);
  }
  t.ok(throttle.size() <= 10_000, `never more than the cap while the windows run (${throttle.size()})`);
  clock += 60_000;
  await throttle.begin('late', '10.9.9.9');
  t.equal(throttle.size(), 2, 'once every window has ended only the new attempt\'s two counters remain');
});

t.test('memory throttle: the number of counters is capped', async (t) => {
  let clock = 0;
  const throttle = createMemoryThrottle({ maxPerUser: 2, maxPerIp: 1000, windowMs: 60_000 }, () => clock, 10);
  await throttle.begin('victim', '10.0.0.1');
  await throttle.begin('victim', '10.0.0.1');
  t.same(await throttle.begin('victim', '10.0.0.1'), { allowed: false, retryAfterSeconds: 60, by: 'user' });
  for (let i = 0; i < 50; i++) {
    clock += 1;
    await throttle.begin(`spray-${i}`, '10.0.0.2');
    t.ok(throttle.size() <= 10, `at most 10 counters (attempt ${i})`);
  }
});

t.test('memory throttle: an attempt the IP limit refuses creates no per-username counter', async (t) => {
  const throttle = createMemoryThrottle({ maxPerUser: 5, maxPerIp: 3, windowMs: 60_000 }, () => 0);
  for (let i = 0; i < 3; i++) t.same(await throttle.begin(`name-${i}`, '10.0.0.3'), { allowed: true });
  t.equal(throttle.size(), 4, 'one IP counter and three names');
  for (let i = 3; i < 1000; i++) t.equal((await throttle.begin(`name-${i}`, '10.0.0.3')).allowed, false);
  t.equal(throttle.size(), 4, 'a thousand refused names added nothing');
});

t.test('memory throttle: an attempt shed under load (no password checked) is handed back to user and IP', async (t) => {
  const throttle = createMemoryThrottle({ maxPerUser: 1, maxPerIp: 1, windowMs: 60_000 }, () => 0);
  t.same(await throttle.begin('fay', '10.0.0.3'), { allowed: true });
  await throttle.abandoned('fay', '10.0.0.3');
  t.same(await throttle.begin('fay', '10.0.0.3'), { allowed: true }, 'the shed attempt did not use up either budget');
  t.same(await throttle.begin('fay', '10.0.0.3'), { allowed: false, retryAfterSeconds: 60, by: 'ip' }, 'a checked attempt still counts');
});
