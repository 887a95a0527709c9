// Password hashes (@node-rs/argon2 and bcrypt, node:crypto scrypt) run as N-API async work, i.e.
// on libuv's thread pool. On a small box those threads compete for the cores with the event-loop
// thread that proxies every request, so a burst of sign-ins raises the proxied tail latency. On
// Linux a thread has its own nice value (setpriority(PRIO_PROCESS, tid) applies to that thread
// only), so the pool threads can be made to yield to the event loop: hashing then takes the CPU
// the proxy leaves, and sign-ins, not proxied requests, absorb the wait.
//
// The pool is process-wide and also serves fs calls, dns.lookup (a new upstream connection to a
// host name) and zlib: those run at the same lower priority (docs/operations.md says what that
// costs). libuv starts every pool thread on the first job and names them `libuv-worker` (libuv
// 1.50+, Node 24); threads live as long as the process, so doing this once at start-up is enough.
import { readdirSync, readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { setPriority } from 'node:os';

/** The name libuv gives its pool threads (/proc/self/task/<tid>/comm). */
export const POOL_THREAD_NAME = 'libuv-worker';

export type PoolNiceOutcome =
  | { applied: true; nice: number; threads: number }
  | { applied: false; reason: 'off' | 'not-linux' | 'no-named-threads' };

/**
 * Gives every libuv pool thread the nice value `nice` (1–19; 0 leaves them alone). The event-loop
 * thread and V8's own threads keep theirs. Linux only; elsewhere nothing happens.
 */
export async function lowerPoolThreadPriority(nice: number, platform: NodeJS.Platform = process.platform): Promise<PoolNiceOutcome> {
  if (nice <= 0) return { applied: false, reason: 'off' };
  if (platform !== 'linux') return { applied: false, reason: 'not-linux' };
  // Any pool job starts the pool; libuv waits until every thread runs (and has named itself)
  // before the job is queued, so they all exist once this resolves.
  await stat('/');
  const tids = poolThreadIds();
  // Raising a nice value needs no privilege; a thread that ended in between is simply skipped.
  let threads = 0;
  for (const tid of tids) {
    try {
      setPriority(tid, nice);
      threads++;
    } catch {
      // gone
    }
  }
  return threads > 0 ? { applied: true, nice, threads } : { applied: false, reason: 'no-named-threads' };
}

/** Thread ids of this process's libuv pool threads (empty where /proc has no names for them). */
export function poolThreadIds(): number[] {
  return readdirSync('/proc/self/task')
    .filter((tid) => threadName(tid) === POOL_THREAD_NAME)
    .map(Number);
}

function threadName(tid: string): string | undefined {
  try {
    return readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}
