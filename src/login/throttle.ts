// Brute-force throttling (SPEC GATEWAY_LOGIN_MAX_ATTEMPTS / _WINDOW / _PER_IP): attempts counted
// per username and per client IP in a fixed window. Counters live in Redis so every replica sees
// the same count; the embedded mode keeps them in memory.
//
// An attempt is counted BEFORE its password is checked, so a burst of parallel guesses cannot
// slip past the limit while the first ones are still being verified. The IP is asked first, and
// a counter already at its limit is not incremented: an attempt the IP limit refuses writes
// nothing at all, one the user limit refuses writes nothing per username (its IP attempt is
// handed back), so a refused client cannot grow the store. What one address can make the store
// hold per window is bounded: one IP counter and at most GATEWAY_LOGIN_MAX_ATTEMPTS_PER_IP
// username counters of fixed size (names are hashed into keys). A successful login clears the
// user's count and hands the IP its attempt back, so only failures accumulate.
import { createHash } from 'node:crypto';
import type { RedisClient } from '../redis-client.js';

export type ThrottleVerdict = { allowed: true } | { allowed: false; retryAfterSeconds: number; by: 'user' | 'ip' };

export interface LoginThrottle {
  /** Counts one attempt for the IP, then the user; refused (and counted nowhere) once either is at its limit. */
  begin(username: string, ip: string): Promise<ThrottleVerdict>;
  /** The attempt succeeded: the user starts afresh, and the IP's attempt is not held against it. */
  succeeded(username: string, ip: string): Promise<void>;
  /** The attempt checked no password (shed under load): both counts are handed back. */
  abandoned(username: string, ip: string): Promise<void>;
}

export interface ThrottleLimits {
  maxPerUser: number;
  maxPerIp: number;
  windowMs: number;
}

/**
 * Usernames are compared case-insensitively and without surrounding whitespace here, so `Alice`
 * and `alice ` share alice's budget (a legacy CHAR(n) column finds `alice` for `alice `). The
 * name is hashed (128 bits of SHA-256), so a counter's size does not depend on what was typed:
 * a 256-character name costs what `alice` costs.
 */
const userKey = (username: string) => `u:${createHash('sha256').update(username.trim().toLowerCase()).digest('base64url').slice(0, 22)}`;
const ipKey = (ip: string) => `ip:${ip}`;

type Count = { allowed: true } | { allowed: false; ttlMs: number };
const refusal = (count: { ttlMs: number }, by: 'user' | 'ip'): ThrottleVerdict => ({ allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(count.ttlMs / 1_000)), by });

/** Shared by both stores: IP first, then the user only if the IP had budget left. */
async function begin(
  username: string,
  ip: string,
  limits: ThrottleLimits,
  countIfUnder: (key: string, max: number) => Promise<Count> | Count,
  giveBack: (key: string) => Promise<unknown> | void,
): Promise<ThrottleVerdict> {
  const address = await countIfUnder(ipKey(ip), limits.maxPerIp);
  if (!address.allowed) return refusal(address, 'ip');
  const user = await countIfUnder(userKey(username), limits.maxPerUser);
  if (!user.allowed) {
    // A refused attempt checked no password: the IP's count is handed back.
    await giveBack(ipKey(ip));
    return refusal(user, 'user');
  }
  return { allowed: true };
}

/**
 * Refuses (writing nothing) when the counter is already at ARGV[2]; otherwise INCR, and start the
 * window (PEXPIRE) whenever the counter has none. Returns [allowed 0|1, ttl ms].
 */
const COUNT_SCRIPT = `local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[2]) then return {0, redis.call('PTTL', KEYS[1])} end
redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then ttl = tonumber(ARGV[1]) redis.call('PEXPIRE', KEYS[1], ttl) end
return {1, ttl}`;
/** DECR only a counter whose window is still running: an ended window has nothing to give back. */
const GIVE_BACK_SCRIPT = `if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECR', KEYS[1]) end
return 0`;

export function createRedisThrottle(redis: RedisClient, prefix: string, limits: ThrottleLimits): LoginThrottle {
  const key = (suffix: string) => `${prefix}t:${suffix}`;
  // One atomic script per counter (one key each, so it suits Cluster). Separate commands let a
  // counter lose its expiry — a key that expires between SET NX and INCR, or before the DECR that
  // hands an attempt back, is recreated without a TTL — and a window that never ends is a
  // permanent lockout (test/regressions/permanent-lockout.test.ts).
  const countIfUnder = async (suffix: string, max: number): Promise<Count> => {
    const [allowed, ttlMs] = (await redis.eval(COUNT_SCRIPT, 1, key(suffix), limits.windowMs, max)) as [number, number];
    return allowed === 1 ? { allowed: true } : { allowed: false, ttlMs };
  };
  const giveBack = (suffix: string) => redis.eval(GIVE_BACK_SCRIPT, 1, key(suffix));
  return {
    begin: (username, ip) => begin(username, ip, limits, countIfUnder, giveBack),
    async succeeded(username, ip) {
      await Promise.all([redis.del(key(userKey(username))), giveBack(ipKey(ip))]);
    },
    async abandoned(username, ip) {
      await Promise.all([giveBack(userKey(username)), giveBack(ipKey(ip))]);
    },
  };
}

/** ~150 bytes each: at most ~15 MiB, however many names and addresses are tried. */
export const MEMORY_THROTTLE_MAX_ENTRIES = 100_000;

export interface MemoryLoginThrottle extends LoginThrottle {
  /** Live counters (users and addresses), an upper bound. */
  size(): number;
}

type Window = { count: number; endsAt: number };

/**
 * The embedded mode's throttle, bounded in memory. Counters live in two generations of at most
 * `maxEntries / 2` each: new counters go into the current one; it becomes the previous one when
 * a window length has passed or it is full, and the previous one is then dropped whole. A
 * counter therefore lives at least one window unless `maxEntries` fresh ones pushed it out (an
 * attacker needs maxEntries / GATEWAY_LOGIN_MAX_ATTEMPTS_PER_IP addresses for that), and once
 * every window has ended nothing is left. O(1) per attempt, no walk over the counters.
 */
export function createMemoryThrottle(limits: ThrottleLimits, now: () => number = Date.now, maxEntries = MEMORY_THROTTLE_MAX_ENTRIES): MemoryLoginThrottle {
  const generationSize = Math.max(1, Math.floor(maxEntries / 2));
  let current = new Map<string, Window>();
  let previous = new Map<string, Window>();
  let rotatedAt = now();
  /** When the last counter created in `current` ends: after that, both generations are dead. */
  let currentEndsAt = 0;

  const maintain = (time: number) => {
    if (time >= currentEndsAt) {
      if (current.size > 0 || previous.size > 0) [current, previous] = [new Map(), new Map()];
      rotatedAt = time;
    } else if (time - rotatedAt >= limits.windowMs || current.size >= generationSize) {
      [previous, current] = [current, new Map()];
      rotatedAt = time;
    }
  };
  const live = (k: string, time: number): Window | undefined => {
    const w = current.get(k) ?? previous.get(k);
    return w && w.endsAt > time ? w : undefined;
  };
  const countIfUnder = (k: string, max: number): Count => {
    const time = now();
    maintain(time);
    let w = live(k, time);
    if (w && w.count >= max) return { allowed: false, ttlMs: w.endsAt - time };
    if (!w) {
      w = { count: 0, endsAt: time + limits.windowMs };
      current.set(k, w);
      currentEndsAt = w.endsAt;
    }
    w.count++;
    return { allowed: true };
  };
  const giveBack = (k: string) => {
    const w = live(k, now());
    if (w) w.count = Math.max(0, w.count - 1);
  };
  // Frees ended windows even when no attempt comes to do it; unref'd, never keeps the process up.
  setInterval(() => maintain(now()), Math.max(1_000, limits.windowMs)).unref();
  return {
    begin: (username, ip) => begin(username, ip, limits, countIfUnder, giveBack),
    async succeeded(username, ip) {
      current.delete(userKey(username));
      previous.delete(userKey(username));
      giveBack(ipKey(ip));
    },
    async abandoned(username, ip) {
      giveBack(userKey(username));
      giveBack(ipKey(ip));
    },
    size: () => current.size + previous.size,
  };
}
