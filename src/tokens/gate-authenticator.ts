// The gate's seam (access/gate.ts): the Authorization header as the second credential, asked when
// the session cookie is missing. It answers `missing` when the header is not the gateway's, so an
// app's own Authorization never decides anything here.
import type { Authentication, Authenticator, Credentials } from '../access/gate.js';
import { signInBusy, tooManySignInAttempts } from '../errors.js';
import type { CredentialVerdict, HeaderAuthenticator } from './authenticator.js';

/** What the gateway does with each verdict besides deciding: audit lines and counters. */
export interface AuthorizationEvents {
  checked?(verdict: CredentialVerdict, ip: string): void;
}

/** A shed password check: the hashing queue drains within a couple of seconds (users/concurrency.ts). */
const BUSY_RETRY_AFTER_SECONDS = 2;

export function authorizationAuthenticator(header: HeaderAuthenticator, events: AuthorizationEvents = {}): Authenticator {
  const authorizationOf = (credentials: Credentials) => {
    const value = credentials.headers.authorization;
    return typeof value === 'string' ? value : undefined;
  };
  return {
    kind: 'authorization',
    presented: (credentials) => header.owns(authorizationOf(credentials)),
    async authenticate(credentials): Promise<Authentication> {
      const ip = credentials.ip ?? '';
      const verdict = await header.authenticate(authorizationOf(credentials), ip);
      events.checked?.(verdict, ip);
      switch (verdict.kind) {
        case 'none':
          return { outcome: 'missing', clearCookie: false };
        case 'valid':
          return {
            outcome: 'valid',
            // A browser attaches Basic by itself once it has it, like a cookie; a bearer token never.
            principal: { kind: verdict.via, idHash: verdict.id, record: verdict.identity, session: null, ambient: verdict.via === 'basic' },
          };
        case 'invalid':
          return { outcome: verdict.reason === 'expired' || verdict.reason === 'revoked' ? verdict.reason : 'invalid', clearCookie: false };
        case 'throttled':
          throw tooManySignInAttempts(verdict.retryAfterSeconds);
        case 'busy':
          throw signInBusy(BUSY_RETRY_AFTER_SECONDS);
      }
    },
  };
}
