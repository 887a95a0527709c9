// The in-process throttle of the embedded mode, with an injected clock.
import t from 'tap';
import { createMemoryThrottle } from '../../src/auth/throttle.js';

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
