// TOTP (RFC 6238) as SPEC section 9 fixes it: SHA-1, 6 digits, 30-second steps, one step of clock
// drift either way. The arithmetic is the otpauth library's; this module only pins the parameters
// and says which time step a code belonged to, so the store can refuse it a second time.
import { Secret, TOTP } from 'otpauth';

export const TOTP_DIGITS = 6;
export const TOTP_PERIOD_SECONDS = 30;
/** Steps of clock drift accepted either way. */
export const TOTP_WINDOW = 1;
/** 160 bits, the size RFC 4226 recommends and authenticator apps expect. */
const SECRET_BYTES = 20;

/** A new random secret, base32 (what authenticator apps are given). */
export function newTotpSecret(): string {
  return new Secret({ size: SECRET_BYTES }).base32;
}

const totpFor = (secretBase32: string, label = '', issuer = '') =>
  new TOTP({ issuer, label, algorithm: 'SHA1', digits: TOTP_DIGITS, period: TOTP_PERIOD_SECONDS, secret: Secret.fromBase32(secretBase32) });

/** The otpauth:// URI an authenticator app reads from the QR code. */
export function otpauthUri(secretBase32: string, account: string, issuer: string): string {
  return totpFor(secretBase32, account, issuer).toString();
}

/** The time step a code is valid for at `nowMs` (the counter of RFC 6238). */
export function timeStep(nowMs: number): number {
  return Math.floor(nowMs / 1_000 / TOTP_PERIOD_SECONDS);
}

/**
 * The time step the code belongs to (within one step of now), or null when it is not valid.
 * The caller must still refuse a step that was already used (replay).
 */
export function matchTotp(secretBase32: string, code: string, nowMs: number): number | null {
  if (!isTotpCode(code)) return null;
  const delta = totpFor(secretBase32).validate({ token: code, timestamp: nowMs, window: TOTP_WINDOW });
  return delta === null ? null : timeStep(nowMs) + delta;
}

/** The code for a time (tests and the screenshot script compute codes the way an app does). */
export function totpCode(secretBase32: string, nowMs: number): string {
  return totpFor(secretBase32).generate({ timestamp: nowMs });
}

export function isTotpCode(code: string): boolean {
  return code.length === TOTP_DIGITS && /^\d+$/.test(code);
}

/** `JBSWY3DPEHPK3PXP…` → `JBSW Y3DP EHPK 3PXP …`: easier to type into an app by hand. */
export function groupedKey(secretBase32: string): string {
  return secretBase32.replace(/=+$/, '').replace(/(.{4})(?=.)/g, '$1 ');
}
