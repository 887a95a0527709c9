// Brute-force throttling: failed logins counted per username and per client IP in a fixed
// window (SPEC GATEWAY_LOGIN_MAX_ATTEMPTS / _WINDOW / _PER_IP). Counters live in Redis so every
// replica sees the same count; the embedded mode keeps them in memory.
import type { RedisClient } from '../session/redis-client.js';

export type ThrottleVerdict = { allowed: true } | { allowed: false; retryAfterSeconds: number; by: 'user' | 'ip' };

export interface LoginThrottle {
  check(username: string, ip: string): Promise<ThrottleVerdict>;
  recordFailure(username: string, ip: string): Promise<void>;
  /** A successful login clears the user's counter (the IP's stays: it may be guessing many users). */
  reset(username: string): Promise<void>;
}

export interface ThrottleLimits {
  maxPerUser: number;
  maxPerIp: number;
  windowMs: number;
}

/** Usernames are compared case-insensitively here so `Alice` and `alice` share one budget. */
const userKey = (username: string) => `u:${username.toLowerCase()}`;
const ipKey = (ip: string) => `ip:${ip}`;

export function createRedisThrottle(redis: RedisClient, prefix: string, limits: ThrottleLimits): LoginThrottle {
  const key = (suffix: string) => `${prefix}t:${suffix}`;
  const count = async (suffix: string, max: number): Promise<number | null> => {
    const [hits, ttl] = await Promise.all([redis.get(key(suffix)), redis.pttl(key(suffix))]);
    return Number(hits ?? 0) >= max ? Math.max(1, Math.ceil(ttl / 1_000)) : null;
  };
  const bump = async (suffix: string) => {
    const hits = await redis.incr(key(suffix));
    // The window starts at the first failure; NX keeps later failures from extending it.
    if (hits === 1) await redis.pexpire(key(suffix), limits.windowMs);
  };
  return {
    async check(username, ip) {
      const [byUser, byIp] = await Promise.all([count(userKey(username), limits.maxPerUser), count(ipKey(ip), limits.maxPerIp)]);
      if (byUser !== null) return { allowed: false, retryAfterSeconds: byUser, by: 'user' };
      if (byIp !== null) return { allowed: false, retryAfterSeconds: byIp, by: 'ip' };
      return { allowed: true };
    },
    async recordFailure(username, ip) {
      await Promise.all([bump(userKey(username)), bump(ipKey(ip))]);
    },
    async reset(username) {
      await redis.del(key(userKey(username)));
    },
  };
}

export function createMemoryThrottle(limits: ThrottleLimits, now: () => number = Date.now): LoginThrottle {
  const windows = new Map<string, { hits: number; endsAt: number }>();
  const current = (k: string) => {
    const w = windows.get(k);
    if (w && w.endsAt > now()) return w;
    windows.delete(k);
    return null;
  };
  const blocked = (k: string, max: number): number | null => {
    const w = current(k);
    return w && w.hits >= max ? Math.max(1, Math.ceil((w.endsAt - now()) / 1_000)) : null;
  };
  const bump = (k: string) => {
    const w = current(k);
    if (w) w.hits++;
    else windows.set(k, { hits: 1, endsAt: now() + limits.windowMs });
  };
  return {
    async check(username, ip) {
      const byUser = blocked(userKey(username), limits.maxPerUser);
      if (byUser !== null) return { allowed: false, retryAfterSeconds: byUser, by: 'user' };
      const byIp = blocked(ipKey(ip), limits.maxPerIp);
      if (byIp !== null) return { allowed: false, retryAfterSeconds: byIp, by: 'ip' };
      return { allowed: true };
    },
    async recordFailure(username, ip) {
      bump(userKey(username));
      bump(ipKey(ip));
    },
    async reset(username) {
      windows.delete(userKey(username));
    },
  };
}
