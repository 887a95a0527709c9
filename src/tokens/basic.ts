// HTTP Basic for clients that speak nothing else (CalDAV/CardDAV, WebDAV, git, old scripts), when
// GATEWAY_BASIC_AUTH=true (SPEC 9). The password is the user's own (not for a user who signs in
// with a second factor: needsSecondFactor), or an API token. Such clients
// send the credential on every request, so a verified one is remembered in-process for
// GATEWAY_BASIC_AUTH_CACHE under an HMAC of name and password with a key made per process (never
// the password, and useless outside this process): one password hash per interval, not per
// request. A miss goes the login form's way: throttle (per user and per address) → look up the user
// → verify against the stored hash or the dummy one → one answer for every failure.
import { hash, randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Identity } from '../session/types.js';
import { LimiterBusyError } from '../users/concurrency.js';
import { hasControlCharacters } from '../users/user-admin.js';
import type { UserRecord } from '../users/user-store.js';
import type { VerifyOptions, VerifyResult } from '../users/passwords.js';
import type { TokenInvalidation } from './invalidation.js';
import { isGatewayToken } from './token.js';
import type { TokenVerifier } from './verifier.js';

const MAX_USERNAME_LENGTH = 256;
const MAX_PASSWORD_LENGTH = 4096;
/** base64 of the longest name and password, with room for the colon. */
const MAX_ENCODED_LENGTH = Math.ceil(((MAX_USERNAME_LENGTH + MAX_PASSWORD_LENGTH + 1) * 4) / 3) + 4;

/** Structurally the login form's throttle (login/throttle.ts), so both share one budget. */
export interface BasicThrottle {
  begin(username: string, ip: string): Promise<{ allowed: true } | { allowed: false; retryAfterSeconds: number; by: 'user' | 'ip' }>;
  succeeded(username: string, ip: string): Promise<void>;
  abandoned(username: string, ip: string): Promise<void>;
}

export type BasicFailure = 'malformed' | 'unknown_user' | 'wrong_password' | 'disabled' | 'no_password' | 'invalid_username' | 'bad_token' | 'second_factor';

export type BasicResult =
  /** `id`: stable per credential and meaningless outside this process (keys caches of derived values). */
  | { outcome: 'valid'; identity: Identity; via: 'password' | 'token'; cached: boolean; id: string }
  | { outcome: 'invalid'; user: string | null; reason: BasicFailure }
  | { outcome: 'throttled'; user: string; retryAfterSeconds: number; by: 'user' | 'ip' }
  | { outcome: 'busy'; user: string };

export interface BasicVerifierOptions {
  findUser(username: string): Promise<UserRecord | null>;
  verifyPassword(stored: string | null, password: string, options: VerifyOptions): Promise<VerifyResult>;
  allowPlaintext: boolean;
  throttle: BasicThrottle;
  /** null: tokens are not available (no PostgreSQL), a token as the password is refused. */
  tokens: TokenVerifier | null;
  invalidation: TokenInvalidation;
  cacheTtlMs: number;
  maxEntries?: number;
  /** For a test: the HMAC key, 64 bytes below 0x80 (random per process otherwise). */
  key?: Buffer;
  /**
   * Whether a correct password is not enough for this user (GATEWAY_MFA: a factor enrolled, or
   * enrolment required). Basic cannot carry a second step, so such a user is refused here and
   * uses an API token instead, as Nextcloud asks for an app password; absent: never.
   */
  needsSecondFactor?: (user: string) => Promise<boolean>;
}

export interface BasicVerifier {
  /** `credentials` is what follows `Basic ` in the Authorization header. */
  verify(credentials: string, ip: string): Promise<BasicResult>;
  readonly cacheSize: number;
}

interface Entry {
  identity: Identity;
}

export function parseBasicCredentials(encoded: string): { user: string; password: string } | null {
  const value = encoded.trim();
  if (value.length === 0 || value.length > MAX_ENCODED_LENGTH || !/^[A-Za-z0-9+/]+={0,2}$/.test(value)) return null;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return null;
  const user = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  if (password === '' || user.length > MAX_USERNAME_LENGTH || password.length > MAX_PASSWORD_LENGTH) return null;
  return { user, password };
}

export function createBasicVerifier(options: BasicVerifierOptions): BasicVerifier {
  const hmac = createHmacSha256(options.key ?? randomBytes(64).map((b) => b & 0x7f));
  const enabled = options.cacheTtlMs > 0;
  const cache = new LRUCache<string, Entry>({ max: options.maxEntries ?? 10_000, ttl: Math.max(1, options.cacheTtlMs) });
  // A client firing requests in parallel with one credential costs one hash, not one each.
  const inflight = new Map<string, Promise<BasicResult>>();
  const { invalidation } = options;

  invalidation.onInvalidation((event) => {
    if (event.kind === 'reset') cache.clear();
    else if (event.kind === 'user') {
      for (const [k, entry] of cache.entries()) if (entry.identity.user === event.user) cache.delete(k);
    }
    // A revoked token used as a password is found by the token verifier on every request.
  });

  // Of the header's base64 as sent: a hot request is one HMAC and one lookup, nothing decoded. Two
  // spellings of one credential (padding) are two entries, each verified on its own.
  const cacheKey = (encoded: string) => hmac(encoded);

  async function check(user: string, password: string, ip: string, k: string): Promise<BasicResult> {
    const verdict = await options.throttle.begin(user, ip);
    if (!verdict.allowed) return { outcome: 'throttled', user, retryAfterSeconds: verdict.retryAfterSeconds, by: verdict.by };
    // A name with control characters names nobody and never reaches the user store (SPEC 4).
    const invalidName = hasControlCharacters(user);
    const found = invalidName ? null : await options.findUser(user);
    let result: VerifyResult;
    try {
      // Always a hash: an unknown user costs what a wrong password costs (the dummy hash).
      result = await options.verifyPassword(found?.passwordHash ?? null, password, { allowPlaintext: options.allowPlaintext, queueKey: ip });
    } catch (err) {
      if (!(err instanceof LimiterBusyError)) throw err;
      await options.throttle.abandoned(user, ip).catch(() => undefined);
      return { outcome: 'busy', user };
    }
    const reason: BasicFailure | null = invalidName ? 'invalid_username' : !found ? 'unknown_user' : !found.passwordHash ? 'no_password' : !result.ok ? 'wrong_password' : found.disabled ? 'disabled' : null;
    if (reason || !found) return { outcome: 'invalid', user, reason: reason ?? 'unknown_user' };
    // The same answer as a wrong password: the password alone opens nothing for this user. Counted
    // as a failure, so Basic is no way to test passwords of such accounts faster than the form.
    if (options.needsSecondFactor && (await options.needsSecondFactor(found.username))) return { outcome: 'invalid', user, reason: 'second_factor' };
    await options.throttle.succeeded(user, ip).catch(() => undefined);
    const identity: Identity = { user: found.username, email: found.email, groups: found.groups };
    if (k !== '') cache.set(k, { identity });
    return { outcome: 'valid', identity, via: 'password', cached: false, id: `b:${k !== '' ? k : user}` };
  }

  return {
    async verify(credentials, ip) {
      const encoded = credentials.trim();
      const k = enabled && encoded.length <= MAX_ENCODED_LENGTH ? cacheKey(encoded) : '';
      const hit = k !== '' && invalidation.live() ? cache.get(k) : undefined;
      if (hit) return { outcome: 'valid', identity: hit.identity, via: 'password', cached: true, id: `b:${k}` };
      const parsed = parseBasicCredentials(encoded);
      if (!parsed) return { outcome: 'invalid', user: null, reason: 'malformed' };
      const { user, password } = parsed;
      if (isGatewayToken(password)) {
        // The token carries its own user; the name sent with it must be that user's.
        if (!options.tokens) return { outcome: 'invalid', user, reason: 'bad_token' };
        const validation = await options.tokens.verify(password);
        if (validation.outcome !== 'valid' || validation.identity.user !== user) return { outcome: 'invalid', user, reason: 'bad_token' };
        return { outcome: 'valid', identity: validation.identity, via: 'token', cached: true, id: `t:${validation.tokenHash}` };
      }
      // One check per credential at a time (keyed like the cache; without a cache, per name and password).
      const flight = k !== '' ? k : cacheKey(encoded);
      let pending = inflight.get(flight);
      if (!pending) {
        pending = check(user, password, ip, k).finally(() => inflight.delete(flight));
        inflight.set(flight, pending);
      }
      return pending;
    },
    get cacheSize() {
      return cache.size;
    },
  };
}

/**
 * HMAC-SHA256 (RFC 2104) of ASCII text under a key of one block (64 bytes), computed with two
 * one-shot hashes: H((K ^ opad) || H((K ^ ipad) || m)). With every key byte below 0x80 both padded
 * keys are ASCII, so the inner input is a plain string; half the cost of crypto.createHmac, which
 * matters on the hot path of a client sending Basic with every request. 448 random key bits.
 */
export function createHmacSha256(key: Uint8Array): (text: string) => string {
  if (key.length !== 64 || key.some((b) => b >= 0x80)) throw new Error('the key must be 64 bytes, each below 0x80');
  const ipad = Buffer.from(key.map((b) => b ^ 0x36)).toString('latin1');
  const opad = Buffer.from(key.map((b) => b ^ 0x5c));
  return (text) => hash('sha256', Buffer.concat([opad, hash('sha256', ipad + text, 'buffer')]), 'base64url');
}
