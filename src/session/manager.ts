// The session lifecycle: issue, validate (the hot path), roll the idle deadline, destroy.
// It owns the policy (idle and max timeouts, cache trust, coalescing); stores only keep bytes.
import { LRUCache } from 'lru-cache';
import { sessionStoreUnavailable } from '../errors.js';
import { tracedAwaitable } from '../tracing/index.js';
import { hashSessionId, newSessionId, type CookieSigner } from './id.js';
import type { CachedSession, LocalSessionCache } from './local-cache.js';
import type { Identity, InvalidationListener, SessionRecord, SessionStore, StoredSession, ValidationOutcome } from './types.js';

export interface SessionManagerOptions {
  store: SessionStore;
  signer: CookieSigner;
  cache: LocalSessionCache;
  idleTimeoutMs: number;
  maxLifetimeMs: number;
  /** The store's idle deadline is pushed forward at most once per this interval. */
  touchIntervalMs: number;
  /** During a store outage, cached sessions confirmed this recently keep working (0 = fail closed). */
  staleGraceMs?: number;
  now?: () => number;
  events?: SessionEvents;
  /** Sessions follow the user store (GATEWAY_USER_RECHECK_INTERVAL); absent: never re-read. */
  userCheck?: UserCheckOptions;
  /** GATEWAY_MAX_SESSIONS_PER_USER: sessions a user may hold at once (0 or unset: no cap). */
  maxSessionsPerUser?: number;
}

/** What the user store says about a user now. */
export interface FreshUser {
  email: string | null;
  groups: string[];
  disabled: boolean;
  passwordHash: string | null;
}

export interface UserCheckOptions {
  /** A session's user is read again when it was last read this long ago (> 0). */
  intervalMs: number;
  /** Reads the user: 'gone' when the store no longer has it, 'error' when the store cannot answer. */
  read(user: string): Promise<FreshUser | 'gone' | 'error'>;
  /** The fingerprint a session keeps of a password hash (keyed and truncated: never the hash). */
  fingerprint(passwordHash: string | null): string;
  /** Whether a kept fingerprint names this hash (also under a key since retired). */
  samePassword(passwordHash: string | null, fingerprint: string): boolean;
}

/** Why a recheck ended sessions. */
export type UserEndReason = 'disabled' | 'deleted' | 'password_changed';

/** Hooks for metrics and logs, so this module stays free of both. */
export interface SessionEvents {
  cacheLookup?(result: 'hit' | 'miss'): void;
  validated?(outcome: ValidationOutcome): void;
  storeError?(err: unknown, operation: string): void;
  storeLookup?(seconds: number): void;
  invalidation?(kind: 'session' | 'reset'): void;
  /** A recheck found the user changed in the store and ended `sessions` of its sessions (an audit line). */
  userSessionsEnded?(user: string, reason: UserEndReason, sessions: number): void;
}

export interface ActiveSession {
  idHash: string;
  record: SessionRecord;
  /** A freshly signed cookie value when the presented one was signed with a retired secret. */
  renewedCookie: string | null;
}

export type Validation = { outcome: 'valid'; session: ActiveSession } | { outcome: Exclude<ValidationOutcome, 'valid'> };

export interface ValidateOptions {
  /** Whether this counts as activity that rolls the idle deadline (default true: a request does). */
  touch?: boolean;
}

export interface CreateOptions {
  /** The hash the sign-in checked: kept only as a fingerprint, to notice a change. */
  passwordHash?: string | null;
  /** Or the fingerprint itself, of a sign-in checked earlier (a second step, a step-up). */
  passwordFingerprint?: string;
  client?: string;
}

export interface SessionManager {
  /** Validates a cookie value; throws a 503 GatewayError when the store cannot answer. */
  validate(cookieValue: string | undefined, options?: ValidateOptions): Promise<Validation>;
  /**
   * `validate`, answered without a promise when no store call is needed (a cached session, no
   * cookie): the proxied request's hot path, which then allocates no promise per layer.
   */
  validateAwaitable(cookieValue: string | undefined, options?: ValidateOptions): Validation | Promise<Validation>;
  /**
   * A new session. `amr` records how the sign-in was established (default: a password alone);
   * `passwordHash`: the hash the sign-in checked, kept only as a fingerprint to notice a change.
   */
  create(identity: Identity & { amr?: string[] }, options?: CreateOptions): Promise<{ cookieValue: string; record: SessionRecord }>;
  /**
   * The fingerprint a session would keep of this hash, for a sign-in that becomes a session later
   * (the second step carries it over); undefined when sessions keep none (no user recheck).
   */
  passwordFingerprint(passwordHash: string | null): string | undefined;
  /** Whether a kept fingerprint names this hash (true when sessions keep none: nothing to compare). */
  samePassword(passwordHash: string | null, fingerprint: string): boolean;
  /** Ends the session a cookie names, on every replica; false if there was none. */
  destroy(cookieValue: string | undefined): Promise<boolean>;
  listByUser(user: string): Promise<StoredSession[]>;
  /**
   * Ends some of a user's own sessions (by id hash) on every replica, refused here at once; the
   * others as soon as the invalidation reaches them. Returns how many existed. 503 GatewayError
   * when the store cannot answer.
   */
  endUserSessions(user: string, idHashes: string[]): Promise<number>;
  revokeUser(user: string): Promise<number>;
  /**
   * The session cap, called right after a sign-in: ends the user's oldest sessions beyond
   * maxSessionsPerUser on every replica (their WebSockets close) and returns how many; 0 without
   * a cap. Throws a 503 GatewayError when the store cannot answer.
   */
  endSessionsBeyondCap(user: string): Promise<number>;
  /**
   * Told after this replica's cache has dropped a session that ended on any replica ('session'),
   * or was flushed because invalidations may have been missed ('reset'), so holders of
   * long-lived connections (WebSockets) can end them too.
   */
  onInvalidation(listener: InvalidationListener): void;
  readonly cacheSize: number;
}

const REVOKED_MEMORY = { max: 10_000, ttl: 60 * 60_000 };
/** Users whose last read is remembered (beyond this, a user's sessions may each read it again). */
const USER_READS_MAX = 10_000;

/** One read of a user, shared by every session of that user on this replica for one interval. */
interface UserRead {
  /** When the read started: what the sessions it serves record as their last check. */
  at: number;
  result: Promise<FreshUser | 'gone' | 'error'>;
  /** Set once a disabled or deleted user's sessions were ended on the strength of this read. */
  ended?: Promise<void>;
}

export function createSessionManager(options: SessionManagerOptions): SessionManager {
  const { store, signer, cache, idleTimeoutMs, maxLifetimeMs, touchIntervalMs } = options;
  const now = options.now ?? Date.now;
  const staleGraceMs = options.staleGraceMs ?? 0;
  const events = options.events ?? {};
  const inflightLookups = new Map<string, Promise<SessionRecord | null>>();
  const inflightTouches = new Set<string>();
  // Ids are never reused, so a hash we were told is gone can be refused without asking Redis,
  // and the refusal can say "revoked" rather than "expired".
  const revoked = new LRUCache<string, true>(REVOKED_MEMORY);
  const invalidationListeners: InvalidationListener[] = [];
  const userCheck = options.userCheck && options.userCheck.intervalMs > 0 ? options.userCheck : null;
  const recheckAfterMs = userCheck?.intervalMs ?? Infinity;
  const userReads = new LRUCache<string, UserRead>({ max: USER_READS_MAX });

  store.onInvalidation((event) => {
    events.invalidation?.(event.kind);
    if (event.kind === 'reset') {
      cache.clear();
    } else {
      cache.forget(event.idHash);
      revoked.set(event.idHash, true);
    }
    // After the cache is updated, so a listener that re-validates sees the session as ended.
    for (const listener of invalidationListeners) listener(event);
  });

  const ttlFor = (record: SessionRecord, at: number) => Math.max(1, Math.min(idleTimeoutMs, record.expiresAt - at));
  const idleDeadline = (record: SessionRecord) => Math.min(record.touchedAt + idleTimeoutMs, record.expiresAt);

  const fail = (outcome: Exclude<ValidationOutcome, 'valid'>): Validation => {
    events.validated?.(outcome);
    return { outcome };
  };
  const succeed = (entry: CachedSession, touch: boolean): Validation => {
    events.validated?.('valid');
    if (touch) maybeTouch(entry);
    const renewedCookie = entry.signedWithOldSecret ? signer.sign(entry.id) : null;
    return { outcome: 'valid', session: { idHash: entry.idHash, record: entry.record, renewedCookie } };
  };

  /** Whether the session's user is due to be read again (one subtraction on the hot path). */
  const recheckDue = (record: SessionRecord, at: number) => at - (record.checkedAt ?? record.createdAt) >= recheckAfterMs;

  /** The user's read for this interval: a recent one (any session's) if there is one, else a new one. */
  const readUser = (check: UserCheckOptions, user: string, at: number): UserRead => {
    const recent = userReads.get(user);
    if (recent && at - recent.at < check.intervalMs) return recent;
    const read: UserRead = { at, result: check.read(user).catch(() => 'error' as const) };
    userReads.set(user, read);
    return read;
  };

  /**
   * Reads the user again before the request goes on: disabled or deleted ends all the user's
   * sessions, a password hash that differs from the sign-in's ends this one (every replica, through
   * the store's invalidation); a changed e-mail or groups is adopted and written back. When the
   * store cannot answer, the session goes on and the read is retried after the interval.
   */
  const recheck = async (check: UserCheckOptions, entry: CachedSession, touch: boolean): Promise<Validation> => {
    const { user } = entry.record;
    const read = readUser(check, user, now());
    const fresh = await read.result;
    // The store's error is counted where it happens; the read is tried again after the interval.
    if (fresh === 'error') return succeed(entry, touch);
    if (revoked.has(entry.idHash)) return fail('revoked');
    const end = async (reason: UserEndReason): Promise<Validation> => {
      cache.forget(entry.idHash);
      revoked.set(entry.idHash, true);
      // A disabled or deleted user loses every session (once per read); a new password, only the
      // sessions signed in with the old one.
      if (reason === 'password_changed') await endSessions(user, reason, [entry.idHash]);
      else await (read.ended ??= endSessions(user, reason, null));
      return fail('revoked');
    };
    if (fresh === 'gone') return end('deleted');
    if (fresh.disabled) return end('disabled');
    const kept = entry.record.passwordFingerprint;
    if (kept !== undefined && !check.samePassword(fresh.passwordHash, kept)) return end('password_changed');
    const at = now();
    const fingerprint = check.fingerprint(fresh.passwordHash);
    const record: SessionRecord = {
      ...entry.record,
      email: fresh.email,
      groups: fresh.groups,
      checkedAt: read.at,
      passwordFingerprint: fingerprint,
      touchedAt: touch ? at : entry.record.touchedAt,
    };
    entry.record = record;
    // Written back so other replicas and later cache misses see the check and the new identity;
    // never awaited, and no idle-deadline write of its own while it is in flight.
    if (!inflightTouches.has(entry.idHash)) {
      inflightTouches.add(entry.idHash);
      store
        .touch(entry.idHash, record, Math.max(1, idleDeadline(record) - at))
        .then((stillThere) => stillThere || cache.forget(entry.idHash))
        .catch((err: unknown) => events.storeError?.(err, 'touch'))
        .finally(() => inflightTouches.delete(entry.idHash));
    }
    return succeed(entry, touch);
  };

  /** Ends some sessions (null: all) of a user on every replica, with an audit line; fails closed locally. */
  const endSessions = async (user: string, reason: UserEndReason, idHashes: string[] | null): Promise<void> => {
    try {
      let ended = 0;
      if (idHashes === null) ended = await store.deleteByUser(user);
      else for (const idHash of idHashes) if (await store.delete(idHash, user)) ended++;
      if (ended > 0) events.userSessionsEnded?.(user, reason, ended);
    } catch (err) {
      // This replica already refuses them; the others find the same on their own recheck.
      events.storeError?.(err, 'delete');
    }
  };

  /** One store read per id at a time: a burst of requests for a cold session makes one call. */
  const lookup = (idHash: string): Promise<SessionRecord | null> => {
    let pending = inflightLookups.get(idHash);
    if (!pending) {
      const started = performance.now();
      pending = store.get(idHash).finally(() => {
        inflightLookups.delete(idHash);
        events.storeLookup?.((performance.now() - started) / 1_000);
      });
      inflightLookups.set(idHash, pending);
    }
    return pending;
  };

  /** Rolling idle timeout, written at most once per touch interval and never awaited. */
  const maybeTouch = (entry: CachedSession) => {
    const at = now();
    if (at - entry.record.touchedAt < touchIntervalMs || inflightTouches.has(entry.idHash)) return;
    const record = { ...entry.record, touchedAt: at };
    inflightTouches.add(entry.idHash);
    store
      .touch(entry.idHash, record, ttlFor(record, at))
      .then((stillThere) => {
        if (stillThere) entry.record = record;
        else cache.forget(entry.idHash);
      })
      .catch((err: unknown) => events.storeError?.(err, 'touch'))
      .finally(() => inflightTouches.delete(entry.idHash));
  };

  const judge = (entry: CachedSession, at: number): 'valid' | 'expired' | 'recheck' => {
    if (at >= entry.record.expiresAt) return 'expired';
    return at < idleDeadline(entry.record) ? 'valid' : 'recheck';
  };

  const validateFromStore = async (cookieValue: string, cached: CachedSession | undefined, touch: boolean): Promise<Validation> => {
    const unsigned = cached ?? signer.unsign(cookieValue);
    if (!unsigned) return fail('invalid');
    const idHash = cached?.idHash ?? hashSessionId(unsigned.id);
    if (revoked.has(idHash)) return fail('revoked');
    let record: SessionRecord | null;
    try {
      record = await lookup(idHash);
    } catch (err) {
      events.storeError?.(err, 'get');
      if (cached && staleGraceMs > 0 && now() - cached.confirmedAt <= staleGraceMs && judge(cached, now()) !== 'expired') {
        return succeed(cached, touch);
      }
      throw sessionStoreUnavailable(err);
    }
    // A revocation may have arrived while the read was in flight: never cache what it ended.
    if (revoked.has(idHash)) return fail('revoked');
    const at = now();
    if (!record || at >= idleDeadline(record)) {
      cache.forget(idHash);
      return fail(revoked.has(idHash) ? 'revoked' : 'expired');
    }
    const entry: CachedSession = { idHash, record, id: unsigned.id, signedWithOldSecret: unsigned.signedWithOldSecret, confirmedAt: at };
    cache.set(cookieValue, entry);
    return userCheck && recheckDue(record, at) ? recheck(userCheck, entry, touch) : succeed(entry, touch);
  };

  const validateAwaitable = (cookieValue: string | undefined, options?: ValidateOptions): Validation | Promise<Validation> =>
    tracedAwaitable('session check', validateNow, cookieValue, options);

  const validateNow = (cookieValue: string | undefined, options?: ValidateOptions): Validation | Promise<Validation> => {
    if (!cookieValue) return fail('missing');
    const touch = options?.touch ?? true;
    // While invalidations are not flowing, a cached entry may have been revoked elsewhere.
    const cached = store.invalidationsLive() ? cache.get(cookieValue) : undefined;
    events.cacheLookup?.(cached ? 'hit' : 'miss');
    if (cached) {
      const at = now();
      const verdict = judge(cached, at);
      if (verdict === 'valid') return userCheck && recheckDue(cached.record, at) ? recheck(userCheck, cached, touch) : succeed(cached, touch);
      if (verdict === 'expired') {
        cache.forget(cached.idHash);
        return fail('expired');
      }
    }
    // A stale cached entry is kept only for the outage grace; its signature was already checked.
    const staleCandidate = cached ?? (staleGraceMs > 0 ? cache.get(cookieValue) : undefined);
    return validateFromStore(cookieValue, staleCandidate, touch);
  };

  return {
    validate: async (cookieValue, options) => validateAwaitable(cookieValue, options),
    validateAwaitable,

    passwordFingerprint: (passwordHash) => userCheck?.fingerprint(passwordHash),
    samePassword: (passwordHash, fingerprint) => userCheck === null || userCheck.samePassword(passwordHash, fingerprint),

    async create(identity, createOptions) {
      const id = newSessionId();
      const at = now();
      const { amr, ...who } = identity;
      const record: SessionRecord = { ...who, createdAt: at, expiresAt: at + maxLifetimeMs, touchedAt: at, ...(amr ? { amr } : {}) };
      if (createOptions?.client !== undefined) record.client = createOptions.client;
      // The sign-in read the user just now; without the hash, the first recheck adopts what it reads.
      const passwordHash = createOptions?.passwordHash;
      const carried = createOptions?.passwordFingerprint;
      if (userCheck && passwordHash !== undefined) {
        record.checkedAt = at;
        record.passwordFingerprint = userCheck.fingerprint(passwordHash);
      } else if (userCheck && carried !== undefined) {
        // Checked when the password was (the pending sign-in read the user again since).
        record.passwordFingerprint = carried;
      }
      const idHash = hashSessionId(id);
      try {
        await store.create(idHash, record, ttlFor(record, at));
      } catch (err) {
        events.storeError?.(err, 'create');
        throw sessionStoreUnavailable(err);
      }
      const cookieValue = signer.sign(id);
      cache.set(cookieValue, { idHash, record, id, signedWithOldSecret: false, confirmedAt: at });
      return { cookieValue, record };
    },

    async destroy(cookieValue) {
      const unsigned = cookieValue ? signer.unsign(cookieValue) : null;
      if (!unsigned) return false;
      const idHash = hashSessionId(unsigned.id);
      cache.forget(idHash);
      try {
        const record = await store.get(idHash);
        return await store.delete(idHash, record?.user ?? '');
      } catch (err) {
        events.storeError?.(err, 'delete');
        throw sessionStoreUnavailable(err);
      }
    },

    listByUser: (user) => store.listByUser(user),

    async endUserSessions(user, idHashes) {
      let ended = 0;
      for (const idHash of idHashes) {
        cache.forget(idHash);
        revoked.set(idHash, true);
        try {
          if (await store.delete(idHash, user)) ended++;
        } catch (err) {
          events.storeError?.(err, 'delete');
          throw sessionStoreUnavailable(err);
        }
      }
      return ended;
    },

    async revokeUser(user) {
      const count = await store.deleteByUser(user);
      return count;
    },

    async endSessionsBeyondCap(user) {
      const cap = options.maxSessionsPerUser ?? 0;
      if (cap <= 0) return 0;
      let ended: string[];
      try {
        ended = await store.endOldest(user, cap);
      } catch (err) {
        events.storeError?.(err, 'end_oldest');
        throw sessionStoreUnavailable(err);
      }
      // This replica refuses them at once; the others as soon as the invalidation reaches them.
      for (const idHash of ended) {
        cache.forget(idHash);
        revoked.set(idHash, true);
      }
      return ended.length;
    },

    onInvalidation(listener) {
      invalidationListeners.push(listener);
    },

    get cacheSize() {
      return cache.size;
    },
  };
}
