// What a user has set up as a second factor, apart from the service that checks codes: the sign-in
// path asks "has this user a factor?" on every sign-in, while the TOTP library behind the service
// is loaded only when GATEWAY_MFA is on (server.ts).
import type { MfaStatus } from './store.js';

export type MfaMethod = 'totp' | 'recovery' | 'webauthn';

/** What a user has set up: TOTP, how many passkeys, how many recovery codes are left. */
export interface FactorStatus extends MfaStatus {
  passkeys: number;
}

export const hasFactor = (status: FactorStatus): boolean => status.totp === 'enrolled' || status.passkeys > 0;
