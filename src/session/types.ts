// The session contract, apart from its implementations (oauth2-proxy's SessionStore idea):
// the manager speaks only this interface, and one contract test suite runs against every store.

export interface Identity {
  user: string;
  email: string | null;
  groups: string[];
}

export interface SessionRecord extends Identity {
  /** Login time, epoch ms. */
  createdAt: number;
  /** Absolute end (login + max lifetime), epoch ms. Never moves. */
  expiresAt: number;
  /** When the idle deadline was last pushed forward in the store, epoch ms. */
  touchedAt: number;
  /** When the user was last read from the user store (sign-in or a recheck), epoch ms; absent: at login. */
  checkedAt?: number;
  /** A keyed, truncated hash of the password hash read then (never the hash), to notice a change. */
  passwordFingerprint?: string;
  /** A short description of the client at sign-in ("Firefox on Linux"), from a fixed vocabulary: never the raw User-Agent. */
  client?: string;
  /**
   * How the sign-in was established (RFC 8176 names: `pwd`, `otp`, `hwk`); absent means a
   * password alone, as for every session made before the second factor existed.
   */
  amr?: string[];
}

/** What a session without a recorded `amr` was established with. */
export const PASSWORD_ONLY: readonly string[] = Object.freeze(['pwd']);

export interface StoredSession {
  idHash: string;
  record: SessionRecord;
}

/** Why the store tells the caches to forget something. */
export type InvalidationListener = (event: { kind: 'session'; idHash: string } | { kind: 'reset' }) => void;

export interface SessionStore {
  readonly kind: 'memory' | 'redis';
  /** Saves a new session with a TTL and adds it to its user's index. */
  create(idHash: string, record: SessionRecord, ttlMs: number): Promise<void>;
  get(idHash: string): Promise<SessionRecord | null>;
  /** Rewrites an existing session with a new TTL; false (and nothing written) if it is gone. */
  touch(idHash: string, record: SessionRecord, ttlMs: number): Promise<boolean>;
  /** Deletes one session and tells every replica; true if it existed. */
  delete(idHash: string, user: string): Promise<boolean>;
  listByUser(user: string): Promise<StoredSession[]>;
  /** Deletes every session of a user and tells every replica; returns how many. */
  deleteByUser(user: string): Promise<number>;
  /**
   * Ends the user's oldest sessions (earliest max-lifetime end, i.e. earliest sign-in) beyond the
   * newest `keep`, tells every replica, and returns the ids it ended. Atomic per user: concurrent
   * calls on any number of replicas leave exactly `keep` (or fewer) sessions, never end one twice.
   */
  endOldest(user: string, keep: number): Promise<string[]>;
  /** Resolves when the store answers; rejects otherwise. */
  ping(): Promise<void>;
  /** Whether invalidations from other replicas are currently being received. */
  invalidationsLive(): boolean;
  onInvalidation(listener: InvalidationListener): void;
  close(): Promise<void>;
}

export type ValidationOutcome = 'valid' | 'missing' | 'invalid' | 'expired' | 'revoked';
