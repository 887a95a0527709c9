// What a session keeps of the password hash its sign-in checked, so a recheck can tell the hash
// changed: an HMAC of the hash, truncated to 128 bits. Never the hash itself: a Redis dump must not
// hand out hashes to crack, and a legacy unsalted hash must not become a fast offline guess target,
// hence the key. The key is derived from the session secrets every replica shares; the first makes
// new fingerprints and all of them are accepted, so a secret rotation ends no session.
import { createHmac, timingSafeEqual } from 'node:crypto';

const KEY_LABEL = 'session-gateway password fingerprint v1';
const FINGERPRINT_BYTES = 16;

export interface PasswordFingerprints {
  fingerprint(passwordHash: string | null): string;
  samePassword(passwordHash: string | null, fingerprint: string): boolean;
}

export function createPasswordFingerprints(secrets: string[]): PasswordFingerprints {
  if (secrets.length === 0) throw new Error('password fingerprints need at least one secret');
  const keys = secrets.map((secret) => createHmac('sha256', secret).update(KEY_LABEL).digest());
  const digest = (key: Buffer, passwordHash: string | null) =>
    // A missing hash (a user whose password was removed) has a fingerprint of its own.
    createHmac('sha256', key).update(passwordHash === null ? '\0' : `=${passwordHash}`).digest().subarray(0, FINGERPRINT_BYTES);
  return {
    fingerprint: (passwordHash) => digest(keys[0] as Buffer, passwordHash).toString('base64url'),
    samePassword(passwordHash, fingerprint) {
      const kept = Buffer.from(fingerprint, 'base64url');
      if (kept.length !== FINGERPRINT_BYTES) return false;
      return keys.some((key) => timingSafeEqual(digest(key, passwordHash), kept));
    },
  };
}
