import t from 'tap';
import { createLimiter } from '../../src/auth/concurrency.js';

t.test('the limiter never runs more than its maximum at once, and runs everything', async (t) => {
  const limiter = createLimiter(2);
  let running = 0;
  let peak = 0;
  const results = await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      limiter.run(async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 5));
        running--;
        return i;
      }),
    ),
  );
  t.equal(peak, 2);
  t.same(results, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

t.test('a failing task releases its slot', async (t) => {
  const limiter = createLimiter(1);
  await t.rejects(limiter.run(async () => { throw new Error('boom'); }));
  t.equal(await limiter.run(async () => 'next'), 'next');
});
