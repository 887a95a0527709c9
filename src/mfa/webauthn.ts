// Passkeys as a second factor (SPEC section 9): the two WebAuthn ceremonies, registration and
// assertion, with @simplewebauthn/server doing the verification (origin, RP ID hash, challenge,
// signature, attestation "none"). This module adds what the library leaves to us: challenges
// kept server-side and used once (challenges.ts), credentials in our table (webauthn-store.ts),
// the answer's shape checked before the library sees it, and the signature counter. HTTP is the
// routes' business; this knows nothing of Config.
import { generateAuthenticationOptions, generateRegistrationOptions, verifyAuthenticationResponse, verifyRegistrationResponse } from '@simplewebauthn/server';
import type { AuthenticationResponseJSON, PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import type { ChallengeStore } from './challenges.js';
import type { Passkey, PasskeyStore } from './webauthn-store.js';

/** Who the passkeys are for: the RP ID (a host name) and the origin the browser must report. */
export interface RelyingParty {
  id: string;
  origin: string;
}

/** How long the browser waits for the authenticator (ms); the stored challenge lives longer. */
const CEREMONY_TIMEOUT_MS = 120_000;
const MAX_ID_LENGTH = 1_366; // base64url of WebAuthn's 1023-byte credential id limit
const MAX_FIELD_LENGTH = 32_768;
const TRANSPORTS = new Set(['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb']);
const BASE64URL = /^[A-Za-z0-9_-]*$/;
/**
 * COSE algorithms offered and accepted: EdDSA, ES256, RS256 (what authenticators make). Named, so
 * the library does not probe the runtime for post-quantum ones (an experimental API in Node 24
 * that prints a warning).
 */
const ALGORITHMS = [-8, -7, -257];

export type RegistrationResult =
  | { ok: true; passkey: Pick<Passkey, 'id' | 'name'> }
  | { ok: false; reason: 'no_challenge' | 'invalid' | 'exists' };

export type AssertionResult =
  | { ok: true; passkey: Pick<Passkey, 'id' | 'name'> }
  | { ok: false; reason: 'no_challenge' | 'unknown_credential' | 'invalid' | 'counter' };

export interface WebAuthn {
  readonly passkeys: PasskeyStore;
  /** Options for navigator.credentials.create(); the challenge is kept for `holder`. */
  registrationOptions(user: string, holder: string, rp: RelyingParty): Promise<PublicKeyCredentialCreationOptionsJSON>;
  register(user: string, holder: string, rp: RelyingParty, response: unknown, name: string): Promise<RegistrationResult>;
  /** Options for navigator.credentials.get() naming the user's passkeys; null when they have none. */
  assertionOptions(user: string, holder: string, rp: RelyingParty): Promise<PublicKeyCredentialRequestOptionsJSON | null>;
  assert(user: string, holder: string, rp: RelyingParty, response: unknown): Promise<AssertionResult>;
}

export function createWebAuthn(options: { passkeys: PasskeyStore; challenges: ChallengeStore }): WebAuthn {
  const { passkeys, challenges } = options;
  return {
    passkeys,
    async registrationOptions(user, holder, rp) {
      const existing = await passkeys.list(user);
      const creation = await generateRegistrationOptions({
        rpName: rp.id,
        rpID: rp.id,
        userName: user,
        userDisplayName: user,
        timeout: CEREMONY_TIMEOUT_MS,
        attestationType: 'none',
        // The same authenticator twice would be one factor counted twice.
        excludeCredentials: existing.map((passkey) => ({ id: passkey.id, transports: passkey.transports })),
        authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
        supportedAlgorithmIDs: ALGORITHMS,
      });
      await challenges.put('register', holder, creation.challenge);
      return creation;
    },
    async register(user, holder, rp, response, name) {
      if (!isRegistrationResponse(response)) return { ok: false, reason: 'invalid' };
      // Taken before verifying: a wrong answer uses the challenge up too.
      const challenge = await challenges.take('register', holder);
      if (challenge === null) return { ok: false, reason: 'no_challenge' };
      let verified;
      try {
        // A second factor after the password: the user's presence is required, their verification (PIN, biometrics) is not.
        verified = await verifyRegistrationResponse({ response, expectedChallenge: challenge, expectedOrigin: rp.origin, expectedRPID: rp.id, requireUserVerification: false, supportedAlgorithmIDs: ALGORITHMS });
      } catch {
        return { ok: false, reason: 'invalid' };
      }
      if (!verified.verified) return { ok: false, reason: 'invalid' };
      const { credential } = verified.registrationInfo;
      const transports = (response.response.transports ?? []).filter((transport) => TRANSPORTS.has(transport));
      const added = await passkeys.add({ id: credential.id, user, publicKey: credential.publicKey, counter: credential.counter, transports, name });
      return added ? { ok: true, passkey: { id: credential.id, name } } : { ok: false, reason: 'exists' };
    },
    async assertionOptions(user, holder, rp) {
      const existing = await passkeys.list(user);
      if (existing.length === 0) return null;
      const request = await generateAuthenticationOptions({
        rpID: rp.id,
        timeout: CEREMONY_TIMEOUT_MS,
        allowCredentials: existing.map((passkey) => ({ id: passkey.id, transports: passkey.transports })),
        userVerification: 'preferred',
      });
      await challenges.put('authenticate', holder, request.challenge);
      return request;
    },
    async assert(user, holder, rp, response) {
      if (!isAssertionResponse(response)) return { ok: false, reason: 'invalid' };
      const challenge = await challenges.take('authenticate', holder);
      if (challenge === null) return { ok: false, reason: 'no_challenge' };
      const passkey = await passkeys.find(user, response.id);
      if (passkey === null) return { ok: false, reason: 'unknown_credential' };
      let verified;
      try {
        verified = await verifyAuthenticationResponse({
          response,
          expectedChallenge: challenge,
          expectedOrigin: rp.origin,
          expectedRPID: rp.id,
          // Counter 0 here turns the library's own counter check off: ours below is the one that
          // counts, since it is also the atomic write that every replica sees.
          credential: { id: passkey.id, publicKey: passkey.publicKey, counter: 0, transports: passkey.transports },
          requireUserVerification: false,
        });
      } catch {
        return { ok: false, reason: 'invalid' };
      }
      if (!verified.verified) return { ok: false, reason: 'invalid' };
      // A counter that does not move forward (when the authenticator keeps one): a cloned
      // authenticator, or this very assertion accepted already.
      if (!(await passkeys.use(user, passkey.id, verified.authenticationInfo.newCounter))) return { ok: false, reason: 'counter' };
      return { ok: true, passkey: { id: passkey.id, name: passkey.name } };
    },
  };
}

// ----- the answer's shape, before the library parses it -------------------------------------------

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const isB64 = (value: unknown, max = MAX_FIELD_LENGTH): value is string => typeof value === 'string' && value.length > 0 && value.length <= max && BASE64URL.test(value);

function isCredentialEnvelope(value: unknown): value is { id: string; rawId: string; type: 'public-key'; response: Record<string, unknown>; clientExtensionResults?: unknown } {
  if (!isRecord(value)) return false;
  return isB64(value.id, MAX_ID_LENGTH) && value.rawId === value.id && value.type === 'public-key' && isRecord(value.response) && isB64(value.response.clientDataJSON);
}

function isRegistrationResponse(value: unknown): value is RegistrationResponseJSON {
  if (!isCredentialEnvelope(value)) return false;
  const { attestationObject, transports } = value.response;
  if (!isB64(attestationObject)) return false;
  if (transports !== undefined && !(Array.isArray(transports) && transports.length <= 10 && transports.every((t) => typeof t === 'string'))) return false;
  value.clientExtensionResults = isRecord(value.clientExtensionResults) ? value.clientExtensionResults : {};
  return true;
}

function isAssertionResponse(value: unknown): value is AuthenticationResponseJSON {
  if (!isCredentialEnvelope(value)) return false;
  const { authenticatorData, signature, userHandle } = value.response;
  if (!isB64(authenticatorData) || !isB64(signature)) return false;
  if (userHandle === null) delete value.response.userHandle;
  else if (userHandle !== undefined && !isB64(userHandle, 1_024)) return false;
  value.clientExtensionResults = isRecord(value.clientExtensionResults) ? value.clientExtensionResults : {};
  return true;
}
