// A sign-in whose password was right but whose second step is still to come. It is NOT a session:
// it lives under its own cookie, scoped to the second-step routes (Path=<prefix>/mfa), in its own
// short-lived store entry, so every door that checks sessions (proxy, WebSocket, forward-auth,
// /session) sees nobody, and nothing but the second step is reachable with it. The store keeps a
// hash of the id, as sessions do, and an entry is taken (deleted) once, when the step succeeds.
import { createHash, randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { RedisClient } from '../redis-client.js';

export const PENDING_COOKIE = 'sgw_mfa';
/** Time to open an authenticator app, or to scan a QR code and type the first code. */
export const PENDING_TTL_MS = 10 * 60_000;

export type SecondStep = 'verify' | 'setup';

export interface PendingSignIn {
  user: string;
  email: string | null;
  groups: string[];
  /** What the password step established (`pwd`). */
  amr: string[];
  step: SecondStep;
  /** Where to go once signed in (already checked: a same-origin path). */
  rd: string;
  createdAt: number;
  /**
   * The fingerprint of the password hash the first step checked (never the hash): the second step
   * ends the sign-in if the password changed meanwhile, and the session keeps it for its rechecks.
   */
  passwordFingerprint?: string;
}

export interface PendingStore {
  /** Saves a pending sign-in; returns the id for the cookie. */
  create(pending: PendingSignIn): Promise<string>;
  get(id: string | undefined): Promise<PendingSignIn | null>;
  /** Ends it; true for exactly one caller, however many race (the id is single-use). */
  take(id: string): Promise<boolean>;
}

const hashId = (id: string) => createHash('sha256').update(id).digest('base64url');
const newId = () => randomBytes(32).toString('base64url');
const WELL_FORMED_ID = /^[A-Za-z0-9_-]{43}$/;

export function createRedisPendingStore(redis: RedisClient, prefix: string, ttlMs = PENDING_TTL_MS): PendingStore {
  const key = (id: string) => `${prefix}mfa:p:${hashId(id)}`;
  return {
    async create(pending) {
      const id = newId();
      await redis.set(key(id), JSON.stringify(pending), 'PX', ttlMs);
      return id;
    },
    async get(id) {
      if (id === undefined || !WELL_FORMED_ID.test(id)) return null;
      const text = await redis.get(key(id));
      return text === null ? null : decode(text);
    },
    async take(id) {
      return (await redis.del(key(id))) === 1;
    },
  };
}

export function createMemoryPendingStore(ttlMs = PENDING_TTL_MS): PendingStore {
  const entries = new LRUCache<string, PendingSignIn>({ max: 10_000, ttl: ttlMs });
  return {
    async create(pending) {
      const id = newId();
      entries.set(hashId(id), pending);
      return id;
    },
    async get(id) {
      if (id === undefined || !WELL_FORMED_ID.test(id)) return null;
      return entries.get(hashId(id)) ?? null;
    },
    async take(id) {
      return entries.delete(hashId(id));
    },
  };
}

function decode(text: string): PendingSignIn | null {
  try {
    const value = JSON.parse(text) as PendingSignIn;
    if (typeof value.user !== 'string' || (value.step !== 'verify' && value.step !== 'setup') || typeof value.rd !== 'string') return null;
    if (value.passwordFingerprint !== undefined && typeof value.passwordFingerprint !== 'string') return null;
    return value;
  } catch {
    return null;
  }
}
