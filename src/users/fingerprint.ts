// What a session keeps of the password hash its sign-in checked, so a recheck can tell the hash
// changed: an HMAC of the hash, truncated to 64 bits. Never the hash itself: a Redis dump must not
// hand out hashes to crack, and a legacy unsalted hash must not become a fast offline guess target,
// hence the key. The key is derived from the session secrets every replica shares; the first makes
// new fingerprints and all of them are accepted, so a secret rotation ends no session.
// Why 64 bits are enough: nobody can compute a fingerprint without the key, and the only thing a
// match decides is that a password change went unnoticed, by chance, one in 2^64. They are 11
// characters in a session record where 128 bits took 22 (Redis memory per session is budgeted;
// see session/codec.ts). Fingerprints of 128 bits, kept by earlier versions, are still compared.
import { createHmac, timingSafeEqual } from 'node:crypto';

const KEY_LABEL = 'session-gateway password fingerprint v1';
const FINGERPRINT_BYTES = 8;
const EARLIER_FINGERPRINT_BYTES = 16;

export interface PasswordFingerprints {
  fingerprint(passwordHash: string | null): string;
  samePassword(passwordHash: string | null, fingerprint: string): boolean;
}

export function createPasswordFingerprints(secrets: string[]): PasswordFingerprints {
  if (secrets.length === 0) throw new Error('password fingerprints need at least one secret');
  const keys = secrets.map((secret) => createHmac('sha256', secret).update(KEY_LABEL).digest());
  const digest = (key: Buffer, passwordHash: string | null) =>
    // A missing hash (a user whose password was removed) has a fingerprint of its own.
    createHmac('sha256', key).update(passwordHash === null ? '\0' : `=${passwordHash}`).digest();
  return {
    fingerprint: (passwordHash) => digest(keys[0] as Buffer, passwordHash).subarray(0, FINGERPRINT_BYTES).toString('base64url'),
    samePassword(passwordHash, fingerprint) {
      const kept = Buffer.from(fingerprint, 'base64url');
      if (kept.length !== FINGERPRINT_BYTES && kept.length !== EARLIER_FINGERPRINT_BYTES) return false;
      return keys.some((key) => timingSafeEqual(digest(key, passwordHash).subarray(0, kept.length), kept));
    },
  };
}
