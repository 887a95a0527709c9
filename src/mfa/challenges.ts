// WebAuthn challenges, kept server-side: the random value the authenticator signs is chosen here,
// stored under a key bound to who asked (the pending sign-in or the session, by a hash of its
// cookie) and to the ceremony, for a short while, and taken (read and deleted at once) when the
// answer comes. A challenge is therefore used at most once, on whichever replica the answer reaches,
// and nothing the client sends back is trusted as the challenge.
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { RedisClient } from '../redis-client.js';

/** Time to touch a security key or unlock a phone; the browser's own timeout is shorter. */
export const CHALLENGE_TTL_MS = 5 * 60_000;

export type Ceremony = 'register' | 'authenticate';

export interface ChallengeStore {
  /** Saves the challenge of `ceremony` for `holder` (a cookie value), replacing an earlier one. */
  put(ceremony: Ceremony, holder: string, challenge: string): Promise<void>;
  /** The challenge saved for them, removed in the same step; null when none (used, expired, never asked). */
  take(ceremony: Ceremony, holder: string): Promise<string | null>;
}

const slot = (ceremony: Ceremony, holder: string) => `${ceremony}:${createHash('sha256').update(holder).digest('base64url')}`;

export function createRedisChallengeStore(redis: RedisClient, prefix: string, ttlMs = CHALLENGE_TTL_MS): ChallengeStore {
  const key = (ceremony: Ceremony, holder: string) => `${prefix}mfa:wa:${slot(ceremony, holder)}`;
  return {
    async put(ceremony, holder, challenge) {
      await redis.set(key(ceremony, holder), challenge, 'PX', ttlMs);
    },
    async take(ceremony, holder) {
      // GET and DEL in one transaction (one key, so one slot in a cluster): of two answers racing
      // with the same challenge, one gets it.
      const k = key(ceremony, holder);
      const results = await redis.multi().get(k).del(k).exec();
      const [getResult] = results ?? [];
      if (!getResult || getResult[0]) throw getResult?.[0] ?? new Error('challenge lookup failed');
      return (getResult[1] as string | null) ?? null;
    },
  };
}

export function createMemoryChallengeStore(ttlMs = CHALLENGE_TTL_MS): ChallengeStore {
  const entries = new LRUCache<string, string>({ max: 10_000, ttl: ttlMs });
  return {
    async put(ceremony, holder, challenge) {
      entries.set(slot(ceremony, holder), challenge);
    },
    async take(ceremony, holder) {
      const k = slot(ceremony, holder);
      const challenge = entries.get(k) ?? null;
      entries.delete(k);
      return challenge;
    },
  };
}
