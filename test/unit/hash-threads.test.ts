// The pool threads (where password hashes run) get the lower priority, and SCHED_IDLE when asked;
// the event-loop thread keeps its own. Read back from /proc, the way an operator would check it
// (`ps -L -o tid,comm,nice,policy`). SCHED_IDLE cannot be undone without privilege: its test is last.
import { readdirSync, readFileSync } from 'node:fs';
import * as argon2 from '@node-rs/argon2';
import t, { type Test } from 'tap';
import { lowerPoolThreadPriority, POOL_THREAD_NAME, SCHED_IDLE, schedulingPolicy } from '../../src/users/hash-threads.js';

interface Thread {
  tid: number;
  name: string;
  nice: number;
  policy: number;
  cpuTicks: number;
}

function threads(): Thread[] {
  return readdirSync('/proc/self/task').map((tid) => {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    // Fields after "(comm)": state is field 3, utime 14, stime 15, nice 19.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return {
      tid: Number(tid),
      name: readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim(),
      nice: Number(rest[16]),
      policy: schedulingPolicy(Number(tid)) ?? -1,
      cpuTicks: Number(rest[11]) + Number(rest[12]),
    };
  });
}
const pool = () => threads().filter((th) => th.name === POOL_THREAD_NAME);
const others = () => threads().filter((th) => th.name !== POOL_THREAD_NAME);

/** Asserts that every thread of `list` reads `value` for `field`. */
function allRead(t: Test, list: Thread[], field: 'nice' | 'policy', value: number, message = `every thread's ${field} is ${value}`): void {
  t.same(
    list.map((th) => th[field]),
    list.map(() => value),
    message,
  );
}

/** Whether `count` argon2id hashes show up as CPU time on the pool threads. */
async function hashesRunOnPool(count: number): Promise<boolean> {
  const ticks = () => pool().reduce((sum, th) => sum + th.cpuTicks, 0);
  const before = ticks();
  for (let i = 0; i < count; i++) await argon2.hash(`password ${i}`, { memoryCost: 19456, timeCost: 2, parallelism: 1 });
  return ticks() > before;
}
const poolSize = Number(process.env.UV_THREADPOOL_SIZE ?? 4);

// Whatever nice the test runner itself was started with: every thread inherits it.
const inherited = threads().find((th) => th.tid === process.pid)?.nice ?? 0;

t.test('0 and other platforms change nothing', async (t) => {
  t.same(await lowerPoolThreadPriority({ nice: 0, idle: false }), { applied: false, reason: 'off' });
  t.same(await lowerPoolThreadPriority({ nice: 19, idle: true }, { platform: 'darwin' }), { applied: false, reason: 'not-linux' });
  allRead(t, threads(), 'nice', inherited, 'every thread keeps its nice value');
  allRead(t, threads(), 'policy', 0, 'and the normal scheduling policy (SCHED_OTHER)');
});

t.test('every pool thread gets the nice value, the event loop keeps its own', async (t) => {
  const outcome = await lowerPoolThreadPriority({ nice: 19, idle: false });
  t.same(outcome, { applied: true, nice: 19, idle: false, threads: poolSize });
  t.equal(pool().length, poolSize, 'the whole pool exists once it returns');
  allRead(t, pool(), 'nice', 19);
  t.equal(threads().find((th) => th.tid === process.pid)?.nice, inherited, 'the event-loop thread is untouched');
  allRead(t, others(), 'nice', inherited, 'V8 and inspector threads are untouched');
  // And the hashes do run there: the CPU an argon2id hash takes shows up on the pool threads.
  t.ok(await hashesRunOnPool(10), 'argon2id hashed on the lowered threads');
});

t.test('without chrt: SCHED_IDLE is reported as not set, and the nice value still applies', async (t) => {
  const outcome = await lowerPoolThreadPriority({ nice: 19, idle: true }, { chrt: '/nonexistent/chrt' });
  t.match(outcome, { applied: true, nice: 19, idle: false, threads: poolSize, idleFailure: /\/nonexistent\/chrt not found/ });
  t.same(
    pool().map((th) => [th.nice, th.policy]),
    pool().map(() => [19, 0]),
  );
});

t.test('SCHED_IDLE: every pool thread, and nothing else; hashes still run there', async (t) => {
  const outcome = await lowerPoolThreadPriority({ nice: 19, idle: true });
  t.same(outcome, { applied: true, nice: 19, idle: true, threads: poolSize });
  allRead(t, pool(), 'policy', SCHED_IDLE, 'the pool threads run under SCHED_IDLE');
  allRead(t, others(), 'policy', 0, 'the event loop, V8 and inspector threads keep SCHED_OTHER');
  t.ok(await hashesRunOnPool(5), 'argon2id hashed on the SCHED_IDLE threads');
});
