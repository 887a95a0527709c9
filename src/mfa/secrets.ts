// What the second factor keeps secret at rest (SPEC section 9, GATEWAY_MFA_ENCRYPTION_KEY):
// - TOTP secrets, encrypted with AES-256-GCM. Keys rotate like the session secret: the first
//   encrypts, every key decrypts. The username is the additional data, so a ciphertext copied to
//   another user's row does not decrypt there.
// - Recovery codes, kept only as keyed hashes (HMAC-SHA-256). They are 60 random bits each, so a
//   fast keyed hash is enough (no password hashing needed), and a database dump alone cannot be
//   used to check guesses.
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, randomInt } from 'node:crypto';

const FORMAT = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

interface DerivedKey {
  id: string;
  encryption: Buffer;
  recovery: Buffer;
}

export interface MfaSecrets {
  encrypt(plaintext: string, username: string): string;
  /** null when no configured key opens it (a removed key, or a row moved to another user). */
  decrypt(stored: string, username: string): string | null;
  /** Whether a stored value was encrypted with another key than the first (re-encrypt it). */
  isStale(stored: string): boolean;
  /** The hash stored for a recovery code (first key). */
  recoveryHash(code: string): string;
  /** The hashes a code may be stored under, one per key (a code issued before a rotation still works). */
  recoveryHashes(code: string): string[];
}

/** Keys as GATEWAY_MFA_ENCRYPTION_KEY gives them (config.ts checks there is at least one, long enough). */
export function createMfaSecrets(keys: readonly string[]): MfaSecrets {
  if (keys.length === 0) throw new Error('the second factor needs at least one encryption key');
  const derived: DerivedKey[] = keys.map((key) => ({
    id: createHash('sha256').update(`sgw-mfa-key-id:${key}`).digest('base64url').slice(0, 8),
    encryption: Buffer.from(hkdfSync('sha256', key, 'session-gateway', 'mfa totp secret aes-256-gcm', 32)),
    recovery: Buffer.from(hkdfSync('sha256', key, 'session-gateway', 'mfa recovery code hmac', 32)),
  }));
  const first = derived[0] as DerivedKey;
  const hashWith = (key: DerivedKey, code: string) => createHmac('sha256', key.recovery).update(normaliseRecoveryCode(code)).digest('base64url');
  return {
    encrypt(plaintext, username) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', first.encryption, iv);
      cipher.setAAD(Buffer.from(username, 'utf8'));
      const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return [FORMAT, first.id, iv.toString('base64url'), ciphertext.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
    },
    decrypt(stored, username) {
      const [format, id, iv, ciphertext, tag] = stored.split('.');
      if (format !== FORMAT || !id || !iv || ciphertext === undefined || !tag) return null;
      // The key named first, then the others (a key id is a hint, not a promise).
      const ordered = [...derived.filter((k) => k.id === id), ...derived.filter((k) => k.id !== id)];
      for (const key of ordered) {
        try {
          const decipher = createDecipheriv('aes-256-gcm', key.encryption, Buffer.from(iv, 'base64url'), { authTagLength: TAG_BYTES });
          decipher.setAAD(Buffer.from(username, 'utf8'));
          decipher.setAuthTag(Buffer.from(tag, 'base64url'));
          return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
        } catch {
          // Not this key: try the next one.
        }
      }
      return null;
    },
    isStale: (stored) => stored.split('.')[1] !== first.id,
    recoveryHash: (code) => hashWith(first, code),
    recoveryHashes: (code) => derived.map((key) => hashWith(key, code)),
  };
}

/** No 0/O, 1/I/L, 2/Z, 5/S, 8/B: nothing to misread when typing a code from paper. */
const RECOVERY_ALPHABET = 'acdefghjkmnpqrtuvwxy34679';
export const RECOVERY_CODE_COUNT = 10;
/** 3 groups of 4 from 25 symbols: about 56 bits per code. */
const RECOVERY_GROUPS = 3;
const RECOVERY_GROUP_LENGTH = 4;

export function newRecoveryCodes(count = RECOVERY_CODE_COUNT): string[] {
  return Array.from({ length: count }, () =>
    Array.from({ length: RECOVERY_GROUPS }, () => Array.from({ length: RECOVERY_GROUP_LENGTH }, () => RECOVERY_ALPHABET[randomInt(RECOVERY_ALPHABET.length)]).join('')).join('-'),
  );
}

/** What a person may type for a code: any case, spaces or dashes anywhere. */
export function normaliseRecoveryCode(code: string): string {
  return code.toLowerCase().replace(/[\s-]+/g, '');
}

export function looksLikeRecoveryCode(code: string): boolean {
  const plain = normaliseRecoveryCode(code);
  return plain.length === RECOVERY_GROUPS * RECOVERY_GROUP_LENGTH && [...plain].every((c) => RECOVERY_ALPHABET.includes(c));
}
