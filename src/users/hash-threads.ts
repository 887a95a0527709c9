// Password hashes (@node-rs/argon2 and bcrypt, node:crypto scrypt) run as N-API async work, i.e.
// on libuv's thread pool. On a small box those threads compete for the cores with the event-loop
// thread that proxies every request, so a burst of sign-ins raises the proxied tail latency. On
// Linux a thread has its own nice value and scheduling policy (setpriority(PRIO_PROCESS, tid) and
// sched_setscheduler(tid) apply to that thread only), so the pool threads can be made to yield to
// the event loop: hashing then takes the CPU the proxy leaves, and sign-ins, not proxied requests,
// absorb the wait.
//
// A nice value alone lowers the threads' share of a busy core, but not how soon a waking event
// loop gets a core a hash is running on: the scheduler lets the hash finish its slice first, and
// with 20 sign-ins/s on 2 cores that wait showed in the proxied p99 (×1.45). A thread under
// SCHED_IDLE is preempted as soon as any other thread wakes (×1.03 in the same run; bench/RESULTS.md).
// Node has no call for the policy; util-linux's `chrt` (in every Debian-based image) makes the
// syscall, once per thread at start-up. Lowering a thread's own policy needs no privilege.
//
// The pool is process-wide and also serves fs calls, dns.lookup (a new upstream connection to a
// host name) and zlib: those run at the same lower priority (docs/operations.md says what that
// costs). libuv starts every pool thread on the first job and names them `libuv-worker` (libuv
// 1.50+, Node 24); threads live as long as the process, so doing this once at start-up is enough.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { setPriority } from 'node:os';

/** The name libuv gives its pool threads (/proc/self/task/<tid>/comm). */
export const POOL_THREAD_NAME = 'libuv-worker';

/** Linux's SCHED_IDLE (sched.h), as /proc/<pid>/task/<tid>/stat reports a thread's policy. */
export const SCHED_IDLE = 5;

export interface PoolPriority {
  /** Nice value 1–19; 0 leaves the nice value alone. */
  nice: number;
  /** Also run the threads under SCHED_IDLE. */
  idle: boolean;
}

export type PoolPriorityOutcome =
  | {
      applied: true;
      nice: number;
      /** Whether every pool thread now runs under SCHED_IDLE. */
      idle: boolean;
      threads: number;
      /** Why SCHED_IDLE was asked for and not set (chrt missing, refused): the nice value still applies. */
      idleFailure?: string;
    }
  | { applied: false; reason: 'off' | 'not-linux' | 'no-named-threads' };

export interface PoolPriorityOptions {
  platform?: NodeJS.Platform;
  /** The chrt to run (tests name one that does not exist). */
  chrt?: string;
}

/**
 * Gives every libuv pool thread the nice value and, if asked, the SCHED_IDLE policy. The event-loop
 * thread and V8's own threads keep theirs. Linux only; elsewhere nothing happens.
 */
export async function lowerPoolThreadPriority(priority: PoolPriority, options: PoolPriorityOptions = {}): Promise<PoolPriorityOutcome> {
  const { nice, idle } = priority;
  if (nice <= 0 && !idle) return { applied: false, reason: 'off' };
  if ((options.platform ?? process.platform) !== 'linux') return { applied: false, reason: 'not-linux' };
  // Any pool job starts the pool; libuv waits until every thread runs (and has named itself)
  // before the job is queued, so they all exist once this resolves.
  await stat('/');
  // Raising a nice value needs no privilege; a thread that ended in between is simply skipped.
  const tids = poolThreadIds().filter((tid) => nice <= 0 || trySetPriority(tid, nice));
  if (tids.length === 0) return { applied: false, reason: 'no-named-threads' };
  if (!idle) return { applied: true, nice, idle: false, threads: tids.length };
  const failures = await Promise.all(tids.map((tid) => makeIdle(tid, options.chrt ?? 'chrt')));
  const idleFailure = failures.find((failure) => failure !== null);
  return idleFailure === undefined ? { applied: true, nice, idle: true, threads: tids.length } : { applied: true, nice, idle: false, threads: tids.length, idleFailure };
}

function trySetPriority(tid: number, nice: number): boolean {
  try {
    setPriority(tid, nice);
    return true;
  } catch {
    return false; // gone
  }
}

/** Puts one thread under SCHED_IDLE with `chrt --idle --pid 0 <tid>`; null once /proc confirms it, else why not. */
function makeIdle(tid: number, chrt: string): Promise<string | null> {
  return new Promise((resolve) => {
    execFile(chrt, ['--idle', '--pid', '0', String(tid)], { timeout: 5_000 }, (error, _stdout, stderr) => {
      if (error) return resolve((error as NodeJS.ErrnoException).code === 'ENOENT' ? `${chrt} not found (util-linux)` : `${chrt}: ${stderr.trim() || error.message}`);
      resolve(schedulingPolicy(tid) === SCHED_IDLE ? null : `${chrt} left thread ${tid} under another policy`);
    });
  });
}

/** A thread's scheduling policy, from /proc (field 41 of its stat line); undefined once it is gone. */
export function schedulingPolicy(tid: number, pid: number | 'self' = 'self'): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    // Fields after "(comm) ": state is field 3, policy 41.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[38]);
  } catch {
    return undefined;
  }
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
