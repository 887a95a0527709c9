// Brute-force throttling (SPEC GATEWAY_LOGIN_MAX_ATTEMPTS / _WINDOW / _PER_IP): attempts counted
// per username and per client IP in a fixed window. Counters live in Redis so every replica sees
// the same count; the embedded mode keeps them in memory.
//
// An attempt is counted BEFORE its password is checked, so a burst of parallel guesses cannot
// slip past the limit while the first ones are still being verified. A refused attempt is handed
// back (it checked no password), and a successful login clears the user's count and hands the
// IP its attempt back, so only failures accumulate.
import type { RedisClient } from '../session/redis-client.js';

export type ThrottleVerdict = { allowed: true } | { allowed: false; retryAfterSeconds: number; by: 'user' | 'ip' };

export interface LoginThrottle {
  /** Counts one attempt for the user and the IP; refused once either is over its limit. */
  begin(username: string, ip: string): Promise<ThrottleVerdict>;
  /** The attempt succeeded: the user starts afresh, and the IP's attempt is not held against it. */
  succeeded(username: string, ip: string): Promise<void>;
}

export interface ThrottleLimits {
  maxPerUser: number;
  maxPerIp: number;
  windowMs: number;
}

/** Usernames are compared case-insensitively here so `Alice` and `alice` share one budget. */
const userKey = (username: string) => `u:${username.toLowerCase()}`;
const ipKey = (ip: string) => `ip:${ip}`;

function verdict(user: { count: number; ttlMs: number }, ip: { count: number; ttlMs: number }, limits: ThrottleLimits): ThrottleVerdict {
  const seconds = (ttlMs: number) => Math.max(1, Math.ceil(ttlMs / 1_000));
  if (user.count > limits.maxPerUser) return { allowed: false, retryAfterSeconds: seconds(user.ttlMs), by: 'user' };
  if (ip.count > limits.maxPerIp) return { allowed: false, retryAfterSeconds: seconds(ip.ttlMs), by: 'ip' };
  return { allowed: true };
}

export function createRedisThrottle(redis: RedisClient, prefix: string, limits: ThrottleLimits): LoginThrottle {
  const key = (suffix: string) => `${prefix}t:${suffix}`;
  const count = async (suffix: string) => {
    const k = key(suffix);
    // The window starts with the first attempt: SET … NX gives the key its TTL before the INCR,
    // so a counter can never be left without an expiry (INCR keeps an existing TTL).
    await redis.set(k, '0', 'PX', limits.windowMs, 'NX');
    const [countNow, ttlMs] = await Promise.all([redis.incr(k), redis.pttl(k)]);
    return { count: countNow, ttlMs };
  };
  return {
    async begin(username, ip) {
      const [user, address] = await Promise.all([count(userKey(username)), count(ipKey(ip))]);
      const result = verdict(user, address, limits);
      if (!result.allowed) await Promise.all([redis.decr(key(userKey(username))), redis.decr(key(ipKey(ip)))]);
      return result;
    },
    async succeeded(username, ip) {
      await Promise.all([redis.del(key(userKey(username))), redis.decr(key(ipKey(ip)))]);
    },
  };
}

export function createMemoryThrottle(limits: ThrottleLimits, now: () => number = Date.now): LoginThrottle {
  const windows = new Map<string, { count: number; endsAt: number }>();
  const count = (k: string) => {
    let w = windows.get(k);
    if (!w || w.endsAt <= now()) windows.set(k, (w = { count: 0, endsAt: now() + limits.windowMs }));
    w.count++;
    return { count: w.count, ttlMs: w.endsAt - now() };
  };
  const giveBack = (k: string) => {
    const w = windows.get(k);
    if (w) w.count = Math.max(0, w.count - 1);
  };
  return {
    async begin(username, ip) {
      const result = verdict(count(userKey(username)), count(ipKey(ip)), limits);
      if (!result.allowed) [userKey(username), ipKey(ip)].forEach(giveBack);
      return result;
    },
    async succeeded(username, ip) {
      windows.delete(userKey(username));
      giveBack(ipKey(ip));
    },
  };
}
