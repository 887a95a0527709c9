// Bearer tokens on the hot path (SPEC 9), validated like sessions: an in-process cache keyed by
// the token itself serves a hot token with no store call; on a miss one PostgreSQL lookup (coalesced
// per token) finds the token by its hash and the user through the configured user query (the user
// must exist and not be disabled). A revocation reaches every replica through the invalidation
// channel; while the channel is down nothing cached is trusted. Expiry is checked on every use; the
// last-used time is written at most once per interval, never awaited.
import { LRUCache } from 'lru-cache';
import { GatewayError } from '../errors.js';
import type { Identity } from '../session/types.js';
import type { UserRecord } from '../users/user-store.js';
import type { TokenInvalidation } from './invalidation.js';
import { hashToken, isWellFormedToken } from './token.js';
import type { TokenRecord, TokenStore } from './token-store.js';

export type TokenOutcome = 'valid' | 'invalid' | 'expired' | 'revoked' | 'disabled';
export const TOKEN_OUTCOMES: readonly TokenOutcome[] = ['valid', 'invalid', 'expired', 'revoked', 'disabled'];

export type TokenValidation = { outcome: 'valid'; identity: Identity; name: string; tokenHash: string } | { outcome: Exclude<TokenOutcome, 'valid'> };

export interface TokenVerifierOptions {
  store: TokenStore;
  findUser(username: string): Promise<UserRecord | null>;
  invalidation: TokenInvalidation;
  maxEntries: number;
  /** Backstop: an entry is read again from the stores after this long, whatever was missed. */
  ttlMs: number;
  /** The last-used time is written at most once per this interval. */
  lastUsedIntervalMs: number;
  now?: () => number;
  events?: {
    validated?(outcome: TokenOutcome): void;
    storeError?(err: unknown, operation: string): void;
  };
}

export interface TokenVerifier {
  /** Throws a 503 GatewayError when the stores cannot answer. */
  verify(token: string): Promise<TokenValidation>;
  readonly cacheSize: number;
}

interface Entry {
  tokenHash: string;
  identity: Identity;
  name: string;
  expiresAt: number | null;
  /** When the last-used time was last written (or read), epoch ms. */
  usedWrittenAt: number;
}

const REVOKED_MEMORY = { max: 10_000, ttl: 60 * 60_000 };

export const tokenStoreUnavailable = (cause: unknown) =>
  new GatewayError('GW_ERR_TOKEN_STORE_UNAVAILABLE', 503, 'Token checks are temporarily unavailable; try again shortly.', { cause });

export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const { store, invalidation, lastUsedIntervalMs } = options;
  const now = options.now ?? Date.now;
  const events = options.events ?? {};
  const enabled = options.maxEntries > 0 && options.ttlMs > 0;
  const tokenByHash = new Map<string, string>();
  const cache = new LRUCache<string, Entry>({
    max: Math.max(1, options.maxEntries),
    ttl: Math.max(1, options.ttlMs),
    dispose: (entry, token) => {
      if (tokenByHash.get(entry.tokenHash) === token) tokenByHash.delete(entry.tokenHash);
    },
  });
  // A hash we were told is revoked is refused without asking PostgreSQL, and a lookup that was in
  // flight when the revocation arrived is not cached.
  const revoked = new LRUCache<string, true>(REVOKED_MEMORY);
  const inflight = new Map<string, Promise<Entry | TokenOutcome>>();

  const forget = (tokenHash: string) => {
    const token = tokenByHash.get(tokenHash);
    if (token !== undefined) cache.delete(token);
    tokenByHash.delete(tokenHash);
  };
  invalidation.onInvalidation((event) => {
    if (event.kind === 'reset') {
      cache.clear();
      tokenByHash.clear();
    } else if (event.kind === 'token') {
      revoked.set(event.tokenHash, true);
      forget(event.tokenHash);
    } else {
      for (const [token, entry] of cache.entries()) {
        if (entry.identity.user === event.user) {
          cache.delete(token);
          tokenByHash.delete(entry.tokenHash);
        }
      }
    }
  });

  const fail = (outcome: Exclude<TokenOutcome, 'valid'>): TokenValidation => {
    events.validated?.(outcome);
    return { outcome };
  };
  const succeed = (entry: Entry): TokenValidation => {
    events.validated?.('valid');
    maybeMarkUsed(entry);
    return { outcome: 'valid', identity: entry.identity, name: entry.name, tokenHash: entry.tokenHash };
  };

  const maybeMarkUsed = (entry: Entry) => {
    const at = now();
    if (at - entry.usedWrittenAt < lastUsedIntervalMs) return;
    entry.usedWrittenAt = at;
    store.markUsed(entry.tokenHash, at).catch((err: unknown) => events.storeError?.(err, 'mark_used'));
  };

  const load = async (tokenHash: string): Promise<Entry | TokenOutcome> => {
    let record: TokenRecord | null;
    let user: UserRecord | null;
    try {
      record = await store.find(tokenHash);
      user = record ? await options.findUser(record.user) : null;
    } catch (err) {
      events.storeError?.(err, 'find_token');
      throw err instanceof GatewayError ? err : tokenStoreUnavailable(err);
    }
    if (!record) return 'invalid';
    if (!user || user.disabled) return 'disabled';
    return {
      tokenHash,
      name: record.name,
      identity: { user: user.username, email: user.email, groups: user.groups },
      expiresAt: record.expiresAt,
      // A use written recently by any replica counts: no write until the interval has passed.
      usedWrittenAt: record.lastUsedAt ?? 0,
    };
  };

  return {
    async verify(token) {
      const cached = enabled && invalidation.live() ? cache.get(token) : undefined;
      if (cached) {
        if (cached.expiresAt !== null && now() >= cached.expiresAt) {
          forget(cached.tokenHash);
          return fail('expired');
        }
        return succeed(cached);
      }
      if (!isWellFormedToken(token)) return fail('invalid');
      const tokenHash = hashToken(token);
      if (revoked.has(tokenHash)) return fail('revoked');
      let pending = inflight.get(tokenHash);
      if (!pending) {
        pending = load(tokenHash).finally(() => inflight.delete(tokenHash));
        inflight.set(tokenHash, pending);
      }
      const loaded = await pending;
      if (revoked.has(tokenHash)) return fail('revoked');
      if (typeof loaded === 'string') return fail(loaded as Exclude<TokenOutcome, 'valid'>);
      if (loaded.expiresAt !== null && now() >= loaded.expiresAt) return fail('expired');
      if (enabled) {
        cache.set(token, loaded);
        tokenByHash.set(tokenHash, token);
      }
      return succeed(loaded);
    },
    get cacheSize() {
      return cache.size;
    },
  };
}
