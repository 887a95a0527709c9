// A small semaphore. Password hashing runs in libuv's thread pool, off the event loop, but it
// still takes CPU: on a 2-core sidecar, four argon2 hashes at once (the pool's default size)
// would starve the proxy's own thread. Capping concurrent hashes at cores − 1 keeps one core for
// the hot path; a login burst then queues logins rather than slowing every proxied request.
import { availableParallelism } from 'node:os';

export interface Limiter {
  run<T>(work: () => Promise<T>): Promise<T>;
}

export function createLimiter(max: number): Limiter {
  let active = 0;
  const waiting: Array<() => void> = [];
  const release = () => {
    active--;
    waiting.shift()?.();
  };
  return {
    async run(work) {
      if (active >= max) await new Promise<void>((resolve) => waiting.push(resolve));
      active++;
      try {
        return await work();
      } finally {
        release();
      }
    },
  };
}

export const HASHING_CONCURRENCY = Math.max(1, availableParallelism() - 1);
