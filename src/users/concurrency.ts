// A small semaphore with a bounded queue. Password hashing runs in libuv's thread pool, off the
// event loop, but it still takes CPU: on a 2-core sidecar, four argon2 hashes at once (the pool's
// default size) would starve the proxy's own thread. Capping concurrent hashes at cores − 1 keeps
// one core for the hot path; a login burst then queues logins rather than slowing every proxied
// request. The queue itself is bounded in length and in waiting time: an unbounded one let a
// flood of 4 addresses × 50 attempts delay a real login from 84 ms to 3.8 s. Beyond the bound the
// work is refused at once (LimiterBusyError → 503 with Retry-After), which costs nothing.
import { availableParallelism } from 'node:os';

export interface Limiter {
  /**
   * Runs `work` when a slot is free; rejects with LimiterBusyError when the queue is full or the
   * wait too long. Waiting jobs are served round-robin by `key` (the client address), so one
   * client's many jobs wait behind each other, not in front of everyone else's.
   */
  run<T>(work: () => Promise<T>, key?: string): Promise<T>;
}

export interface QueueBounds {
  /** Jobs allowed to wait for a slot; one more is refused at once. */
  maxQueued: number;
  /** Longest wait for a slot; a job still waiting then is refused. */
  maxWaitMs: number;
}

export class LimiterBusyError extends Error {
  constructor(readonly reason: 'queue_full' | 'deadline') {
    super(reason === 'queue_full' ? 'too many jobs waiting' : 'waited too long for a slot');
    this.name = 'LimiterBusyError';
  }
}

const UNBOUNDED: QueueBounds = { maxQueued: Number.POSITIVE_INFINITY, maxWaitMs: Number.POSITIVE_INFINITY };

interface Waiter {
  start(): void;
  timer: NodeJS.Timeout | undefined;
}

export function createLimiter(max: number, bounds: QueueBounds = UNBOUNDED): Limiter {
  let active = 0;
  let queued = 0;
  // One FIFO per key; the Map's order is the round-robin order (a served key moves to the back).
  const waiting = new Map<string, Waiter[]>();
  const nextWaiter = (): Waiter | undefined => {
    const first = waiting.entries().next();
    if (first.done) return undefined;
    const [key, list] = first.value;
    const waiter = list.shift() as Waiter;
    waiting.delete(key);
    if (list.length > 0) waiting.set(key, list);
    queued--;
    return waiter;
  };
  // A finished job hands its slot straight to the next waiter, so a newcomer arriving in between
  // can never take it and push the number running above `max`.
  const release = () => {
    const next = nextWaiter();
    if (!next) {
      active--;
      return;
    }
    clearTimeout(next.timer);
    next.start();
  };
  const slot = (key: string): Promise<void> => {
    if (active < max) {
      active++;
      return Promise.resolve();
    }
    if (queued >= bounds.maxQueued) return Promise.reject(new LimiterBusyError('queue_full'));
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { start: resolve, timer: undefined };
      let list = waiting.get(key);
      if (!list) waiting.set(key, (list = []));
      list.push(waiter);
      queued++;
      if (Number.isFinite(bounds.maxWaitMs)) {
        waiter.timer = setTimeout(() => {
          const mine = waiting.get(key) ?? [];
          mine.splice(mine.indexOf(waiter), 1);
          if (mine.length === 0) waiting.delete(key);
          queued--;
          reject(new LimiterBusyError('deadline'));
        }, bounds.maxWaitMs);
      }
    });
  };
  return {
    async run(work, key = '') {
      await slot(key);
      try {
        return await work();
      } finally {
        release();
      }
    },
  };
}

export const HASHING_CONCURRENCY = Math.max(1, availableParallelism() - 1);

/**
 * Bounds of the password-hashing queue. 32 waiting hashes per slot is about 1.5 s of argon2id
 * (19 MiB, t=2) on one core: a real login waits at most that long behind a flood, and the
 * deadline cuts the wait when hashes run slower than that (an overloaded host).
 */
export const HASHING_QUEUE: QueueBounds = { maxQueued: 32 * HASHING_CONCURRENCY, maxWaitMs: 3_000 };

export interface InFlightGate {
  /** Takes one of `key`'s places; false (nothing taken) when it already holds them all. */
  tryEnter(key: string): boolean;
  leave(key: string): void;
}

/** Counts work in flight per key (a client address). Holds an entry only while work runs, so its size is bounded by concurrent requests. */
export function createInFlightGate(maxPerKey: number): InFlightGate {
  const inFlight = new Map<string, number>();
  return {
    tryEnter(key) {
      const count = inFlight.get(key) ?? 0;
      if (count >= maxPerKey) return false;
      inFlight.set(key, count + 1);
      return true;
    },
    leave(key) {
      const count = (inFlight.get(key) ?? 1) - 1;
      if (count <= 0) inFlight.delete(key);
      else inFlight.set(key, count);
    },
  };
}
