import t from 'tap';
import { createInFlightGate, createLimiter, LimiterBusyError } from '../../src/users/concurrency.js';

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

const gate = () => {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
};

t.test('the queue is bounded: one job beyond it is refused at once, the queued ones still run', async (t) => {
  const limiter = createLimiter(1, { maxQueued: 2, maxWaitMs: 60_000 });
  const hold = gate();
  const running = limiter.run(() => hold.opened.then(() => 'first'));
  const queued = [limiter.run(async () => 'second'), limiter.run(async () => 'third')];
  await t.rejects(limiter.run(async () => 'fourth'), new LimiterBusyError('queue_full'));
  hold.open();
  t.same(await Promise.all([running, ...queued]), ['first', 'second', 'third']);
  t.equal(await limiter.run(async () => 'later'), 'later', 'room again once the queue drained');
});

t.test('a job that waits past the deadline is refused and leaves the queue', async (t) => {
  const limiter = createLimiter(1, { maxQueued: 10, maxWaitMs: 20 });
  const hold = gate();
  const running = limiter.run(() => hold.opened);
  await t.rejects(limiter.run(async () => 'late'), new LimiterBusyError('deadline'));
  hold.open();
  await running;
  t.equal(await limiter.run(async () => 'next'), 'next', 'the slot was not lost');
});

t.test('a freed slot goes to the next waiter, never to a newcomer in between', async (t) => {
  const limiter = createLimiter(1, { maxQueued: 10, maxWaitMs: 60_000 });
  let running = 0;
  let peak = 0;
  const job = () => limiter.run(async () => {
    running++;
    peak = Math.max(peak, running);
    await new Promise((r) => setImmediate(r));
    running--;
  });
  const first = job();
  const second = job();
  await first;
  await Promise.all([second, job(), job()]);
  t.equal(peak, 1);
});

t.test('the in-flight gate: a few places per key, freed on leave, nothing kept for idle keys', async (t) => {
  const perAddress = createInFlightGate(2);
  t.ok(perAddress.tryEnter('10.0.0.1'));
  t.ok(perAddress.tryEnter('10.0.0.1'));
  t.notOk(perAddress.tryEnter('10.0.0.1'), 'a third at once is refused');
  t.ok(perAddress.tryEnter('10.0.0.2'), 'another key has its own places');
  perAddress.leave('10.0.0.1');
  t.ok(perAddress.tryEnter('10.0.0.1'), 'a place is free again');
});

t.test('waiting jobs are served round-robin by key: a flooding key waits behind itself', async (t) => {
  const limiter = createLimiter(1, { maxQueued: 100, maxWaitMs: 60_000 });
  const order: string[] = [];
  const hold = gate();
  const first = limiter.run(() => hold.opened, 'attacker');
  const jobs = [
    ...Array.from({ length: 5 }, (_, i) => limiter.run(async () => void order.push(`attacker-${i}`), 'attacker')),
    limiter.run(async () => void order.push('user'), 'user'),
  ];
  hold.open();
  await Promise.all([first, ...jobs]);
  t.equal(order.indexOf('user'), 1, `the user's job ran second, not sixth: ${order.join(' ')}`);
});
