// The second factor's rules, apart from HTTP: which step a user needs after the password, enrolment
// (a secret, its QR code, confirmation with a first code, ten recovery codes), and checking a code
// (TOTP once per time step, or a recovery code once). A passkey (webauthn.ts) counts as a factor
// too: a user with one is asked for the second step, and their first one brings the recovery codes.
// Routes and the CLI use this; it takes its stores and keys as options and knows nothing of Config.
import { createMfaSecrets, looksLikeRecoveryCode, newRecoveryCodes } from './secrets.js';
import type { MfaStore } from './store.js';
import { hasFactor, type FactorStatus, type MfaMethod } from './factors.js';
import { groupedKey, isTotpCode, matchTotp, newTotpSecret, otpauthUri } from './totp.js';
import type { SecondStep } from './pending.js';
import type { PasskeyStore } from './webauthn-store.js';

export type MfaMode = 'off' | 'optional' | 'required';
export type { FactorStatus, MfaMethod };
export { hasFactor };

export interface MfaServiceOptions {
  mode: MfaMode;
  store: MfaStore;
  passkeys: PasskeyStore;
  /** GATEWAY_MFA_ENCRYPTION_KEY: the first encrypts, all decrypt. */
  keys: readonly string[];
  now?: () => number;
}

export type Enrolment = { enrolled: true } | { enrolled: false; otpauth: string; key: string; secret: string };

export type Verification =
  | { ok: true; method: MfaMethod }
  | { ok: false; method: MfaMethod; reason: 'wrong' | 'replayed' | 'not_enrolled' | 'undecryptable' };

export type Confirmation =
  | { ok: true; recoveryCodes: string[] }
  | { ok: false; reason: 'wrong' | 'enrolled' | 'undecryptable' | 'raced' };

export interface MfaService {
  readonly mode: MfaMode;
  /** After a correct password: the second step this user must take, or null (a full session at once). */
  nextStep(user: string): Promise<SecondStep | null>;
  /** The enrolment to show (the same one until it is confirmed), or that the user is enrolled already. */
  enrolment(user: string, issuer: string): Promise<Enrolment>;
  confirm(user: string, code: string): Promise<Confirmation>;
  verify(user: string, code: string): Promise<Verification>;
  /** After a first passkey: ten recovery codes if the user has none left, else null (they keep theirs). */
  recoveryCodesForPasskey(user: string): Promise<string[] | null>;
  status(user: string): Promise<FactorStatus>;
  /** Removes TOTP, every passkey and every recovery code; false when there was nothing. */
  reset(user: string): Promise<boolean>;
}

export function createMfaService(options: MfaServiceOptions): MfaService {
  const { mode, store, passkeys } = options;
  const now = options.now ?? Date.now;
  const secrets = createMfaSecrets(options.keys);
  return {
    mode,
    async nextStep(user) {
      if (mode === 'off') return null;
      if (hasFactor(await this.status(user))) return 'verify';
      return mode === 'required' ? 'setup' : null;
    },
    async enrolment(user, issuer) {
      const stored = await store.unconfirmedSecret(user, secrets.encrypt(newTotpSecret(), user));
      if (stored === null) return { enrolled: true };
      const secret = secrets.decrypt(stored, user);
      // An unconfirmed secret under a key that was removed since: start over with a new one.
      if (secret === null) {
        await store.dropUnconfirmedSecret(user);
        return this.enrolment(user, issuer);
      }
      return { enrolled: false, otpauth: otpauthUri(secret, user, issuer), key: groupedKey(secret), secret };
    },
    async confirm(user, code) {
      const stored = await store.unconfirmedSecret(user, secrets.encrypt(newTotpSecret(), user));
      if (stored === null) return { ok: false, reason: 'enrolled' };
      const secret = secrets.decrypt(stored, user);
      if (secret === null) return { ok: false, reason: 'undecryptable' };
      const step = matchTotp(secret, code.replace(/\s+/g, ''), now());
      if (step === null) return { ok: false, reason: 'wrong' };
      const recoveryCodes = newRecoveryCodes();
      const confirmed = await store.confirm(user, stored, step, recoveryCodes.map((c) => secrets.recoveryHash(c)));
      return confirmed ? { ok: true, recoveryCodes } : { ok: false, reason: 'raced' };
    },
    async verify(user, code) {
      const typed = code.replace(/\s+/g, '');
      if (!isTotpCode(typed) && looksLikeRecoveryCode(code)) {
        const used = await store.useRecoveryCode(user, secrets.recoveryHashes(code));
        return used ? { ok: true, method: 'recovery' } : { ok: false, method: 'recovery', reason: 'wrong' };
      }
      const stored = await store.enrolledSecret(user);
      if (stored === null) return { ok: false, method: 'totp', reason: 'not_enrolled' };
      const secret = secrets.decrypt(stored, user);
      if (secret === null) return { ok: false, method: 'totp', reason: 'undecryptable' };
      const step = matchTotp(secret, typed, now());
      if (step === null) return { ok: false, method: 'totp', reason: 'wrong' };
      if (!(await store.useStep(user, step))) return { ok: false, method: 'totp', reason: 'replayed' };
      // Encrypted under a key that is no longer the first: move it to the current key, so the old
      // one can be dropped once every active user has signed in (never fails the sign-in).
      if (secrets.isStale(stored)) await store.reencrypt(user, stored, secrets.encrypt(secret, user)).catch(() => undefined);
      return { ok: true, method: 'totp' };
    },
    async recoveryCodesForPasskey(user) {
      const recoveryCodes = newRecoveryCodes();
      const issued = await store.issueRecoveryCodes(user, recoveryCodes.map((c) => secrets.recoveryHash(c)));
      return issued ? recoveryCodes : null;
    },
    async status(user) {
      const [status, count] = await Promise.all([store.status(user), passkeys.count(user)]);
      return { ...status, passkeys: count };
    },
    async reset(user) {
      const [removed, keys] = await Promise.all([store.reset(user), passkeys.removeAll(user)]);
      return removed || keys > 0;
    },
  };
}
