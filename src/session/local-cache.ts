// In-process cache of validated sessions, in front of the store. Keyed by the whole signed
// cookie value so a hit skips the HMAC check too; a second map from id hash to cookie value lets
// an invalidation (which only knows the hash) find the entry. Bounded by entry count and by a
// TTL backstop, so even a missed invalidation cannot keep a session alive longer than the TTL.
import { LRUCache } from 'lru-cache';
import type { SessionRecord } from './types.js';

export interface CachedSession {
  idHash: string;
  record: SessionRecord;
  /** The id the signed cookie carries (kept to re-sign after a secret rotation). */
  id: string;
  signedWithOldSecret: boolean;
  /** When the store last confirmed this session (for the outage grace), epoch ms. */
  confirmedAt: number;
}

export interface LocalSessionCache {
  get(cookieValue: string): CachedSession | undefined;
  set(cookieValue: string, session: CachedSession): void;
  /** Forgets one session, wherever its cookie is. */
  forget(idHash: string): void;
  clear(): void;
  readonly size: number;
}

export function createLocalSessionCache(options: { maxEntries: number; ttlMs: number }): LocalSessionCache {
  if (options.maxEntries === 0 || options.ttlMs === 0) return disabledCache;
  const cookieByHash = new Map<string, string>();
  const lru = new LRUCache<string, CachedSession>({
    // The bound is a size of one per entry rather than `max`: with `max` the cache allocates its
    // index for every entry up front (4.2 MiB for the default 100,000, on every replica, however
    // few sessions it holds); counted this way its arrays grow with the sessions it actually holds.
    maxSize: options.maxEntries,
    sizeCalculation: () => 1,
    ttl: options.ttlMs,
    // TTL is checked against a clock read per get; performance.now is cheaper than Date.now.
    ttlAutopurge: false,
    // One performance.now() per get. lru-cache's default (1 ms) instead keeps the clock reading
    // and arms a timer to forget it: a timer per request whenever requests are over 1 ms apart.
    ttlResolution: 0,
    dispose: (session, cookieValue) => {
      if (cookieByHash.get(session.idHash) === cookieValue) cookieByHash.delete(session.idHash);
    },
  });
  return {
    get: (cookieValue) => lru.get(cookieValue),
    set(cookieValue, session) {
      const previous = cookieByHash.get(session.idHash);
      if (previous !== undefined && previous !== cookieValue) lru.delete(previous);
      cookieByHash.set(session.idHash, cookieValue);
      lru.set(cookieValue, session);
    },
    forget(idHash) {
      const cookieValue = cookieByHash.get(idHash);
      if (cookieValue !== undefined) lru.delete(cookieValue);
      cookieByHash.delete(idHash);
    },
    clear() {
      lru.clear();
      cookieByHash.clear();
    },
    get size() {
      return lru.size;
    },
  };
}

const disabledCache: LocalSessionCache = {
  get: () => undefined,
  set: () => undefined,
  forget: () => undefined,
  clear: () => undefined,
  size: 0,
};
