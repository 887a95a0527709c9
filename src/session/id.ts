// Session ids and their two derived forms: the signed cookie value the browser holds, and the
// hash under which the store keeps the session, so a dump of Redis yields no usable cookie
// (SPEC section 5).
import { createHash, randomBytes } from 'node:crypto';
import { Signer } from '@fastify/cookie';

/** 32 bytes = 256 random bits, as SPEC section 5 requires. */
const SESSION_ID_BYTES = 32;
const SESSION_ID_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export function newSessionId(): string {
  return randomBytes(SESSION_ID_BYTES).toString('base64url');
}

/**
 * The store key of a session: SHA-256 of the id, truncated to 128 bits (22 characters). Keys of
 * random 256-bit ids cannot collide in practice at that length, and every session saves ~40
 * bytes of Redis memory across its key and its user-index entry.
 */
export function hashSessionId(id: string): string {
  return createHash('sha256').update(id).digest().subarray(0, 16).toString('base64url');
}

export interface CookieSigner {
  sign(id: string): string;
  /** The session id inside a signed cookie value, or null if the signature or shape is wrong. */
  unsign(cookieValue: string): { id: string; signedWithOldSecret: boolean } | null;
}

/** A signer whose secrets can be replaced while it is in use (SIGHUP reload). */
export interface ReplaceableCookieSigner extends CookieSigner {
  /** From the next call on, the new first secret signs and every new secret verifies. */
  replaceSecrets(secrets: readonly string[]): void;
}

/** First secret signs, every secret verifies: rotation without logging everybody out. */
export function createCookieSigner(secrets: readonly string[]): ReplaceableCookieSigner {
  let signer = new Signer([...secrets], 'sha256');
  return {
    replaceSecrets(next) {
      signer = new Signer([...next], 'sha256');
    },
    sign: (id) => signer.sign(id),
    unsign(cookieValue) {
      // Bound the work an attacker can ask for: a real value is 43 + 1 + 43 characters.
      if (cookieValue.length > 200) return null;
      const result = signer.unsign(cookieValue);
      if (!result.valid || result.value === null || !SESSION_ID_PATTERN.test(result.value)) return null;
      return { id: result.value, signedWithOldSecret: result.renew };
    },
  };
}
