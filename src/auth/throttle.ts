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

/**
 * Usernames are compared case-insensitively and without surrounding whitespace here, so `Alice`
 * and `alice ` share alice's budget (a legacy CHAR(n) column finds `alice` for `alice `).
 */
const userKey = (username: string) => `u:${username.trim().toLowerCase()}`;
const ipKey = (ip: string) => `ip:${ip}`;

function verdict(user: { count: number; ttlMs: number }, ip: { count: number; ttlMs: number }, limits: ThrottleLimits): ThrottleVerdict {
  const seconds = (ttlMs: number) => Math.max(1, Math.ceil(ttlMs / 1_000));
  if (user.count > limits.maxPerUser) return { allowed: false, retryAfterSeconds: seconds(user.ttlMs), by: 'user' };
  if (ip.count > limits.maxPerIp) return { allowed: false, retryAfterSeconds: seconds(ip.ttlMs), by: 'ip' };
  return { allowed: true };
}

/** INCR, and start the window (PEXPIRE) whenever the counter has none. Returns [count, ttl ms]. */
const COUNT_SCRIPT = `local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then ttl = tonumber(ARGV[1]) redis.call('PEXPIRE', KEYS[1], ttl) end
return {n, ttl}`;
/** DECR only a counter whose window is still running: an ended window has nothing to give back. */
const GIVE_BACK_SCRIPT = `if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECR', KEYS[1]) end
return 0`;

export function createRedisThrottle(redis: RedisClient, prefix: string, limits: ThrottleLimits): LoginThrottle {
  const key = (suffix: string) => `${prefix}t:${suffix}`;
  // One atomic script per counter (one key each, so it suits Cluster). Separate commands let a
  // counter lose its expiry — a key that expires between SET NX and INCR, or before the DECR that
  // hands an attempt back, is recreated without a TTL — and a window that never ends is a
  // permanent lockout (test/regressions/permanent-lockout.test.ts).
  const count = async (suffix: string) => {
    const [countNow, ttlMs] = (await redis.eval(COUNT_SCRIPT, 1, key(suffix), limits.windowMs)) as [number, number];
    return { count: countNow, ttlMs };
  };
  const giveBack = (suffix: string) => redis.eval(GIVE_BACK_SCRIPT, 1, key(suffix));
  return {
    async begin(username, ip) {
      const [user, address] = await Promise.all([count(userKey(username)), count(ipKey(ip))]);
      const result = verdict(user, address, limits);
      if (!result.allowed) await Promise.all([giveBack(userKey(username)), giveBack(ipKey(ip))]);
      return result;
    },
    async succeeded(username, ip) {
      await Promise.all([redis.del(key(userKey(username))), giveBack(ipKey(ip))]);
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
