// The `Authorization` header as a credential: `Bearer sgw_pat_…` (always) and `Basic …` (with
// GATEWAY_BASIC_AUTH=true). Every door asks the same function after the session cookie. A header
// the gateway owns is never forwarded to the app (it would carry a password or a token); any other
// Authorization passes through untouched, as before.
import type { Identity } from '../session/types.js';
import type { BasicResult, BasicVerifier } from './basic.js';
import { isGatewayToken } from './token.js';
import type { TokenOutcome, TokenVerifier } from './verifier.js';

export type CredentialVerdict =
  /** No gateway credential in the request. */
  | { kind: 'none' }
  /** `id`: stable per credential (`t:<token hash>`, `b:<keyed hash>`), never the credential itself. */
  | { kind: 'valid'; identity: Identity; via: 'token' | 'basic'; id: string; cached: boolean }
  | { kind: 'invalid'; scheme: 'bearer' | 'basic'; user: string | null; reason: string }
  | { kind: 'throttled'; user: string; retryAfterSeconds: number }
  | { kind: 'busy' };

export interface HeaderAuthenticator {
  /** Whether this Authorization value is the gateway's (then it is checked here and never forwarded). */
  owns(authorization: string | undefined): boolean;
  authenticate(authorization: string | undefined, ip: string): Promise<CredentialVerdict>;
  /** Whether a 401 should invite Basic (GATEWAY_BASIC_AUTH=true). */
  readonly basicEnabled: boolean;
}

const BEARER = /^bearer[ \t]+/i;
const BASIC = /^basic[ \t]+/i;

export function createHeaderAuthenticator(options: { tokens: TokenVerifier | null; basic: BasicVerifier | null }): HeaderAuthenticator {
  const { tokens, basic } = options;
  const bearerToken = (authorization: string): string | null => {
    const match = BEARER.exec(authorization);
    if (!match) return null;
    const value = authorization.slice(match[0].length).trim();
    return isGatewayToken(value) ? value : null;
  };
  const owns = (authorization: string | undefined): boolean =>
    authorization !== undefined && (bearerToken(authorization) !== null || (basic !== null && BASIC.test(authorization)));
  return {
    owns,
    basicEnabled: basic !== null,
    async authenticate(authorization, ip) {
      if (authorization === undefined) return { kind: 'none' };
      const token = bearerToken(authorization);
      if (token !== null) {
        if (!tokens) return { kind: 'invalid', scheme: 'bearer', user: null, reason: 'tokens_unavailable' };
        const validation = await tokens.verify(token);
        if (validation.outcome === 'valid') return { kind: 'valid', identity: validation.identity, via: 'token', id: `t:${validation.tokenHash}`, cached: true };
        return { kind: 'invalid', scheme: 'bearer', user: null, reason: validation.outcome satisfies TokenOutcome };
      }
      if (basic === null) return { kind: 'none' };
      const match = BASIC.exec(authorization);
      if (!match) return { kind: 'none' };
      return basicVerdict(await basic.verify(authorization.slice(match[0].length), ip));
    },
  };
}

function basicVerdict(result: BasicResult): CredentialVerdict {
  switch (result.outcome) {
    case 'valid':
      return { kind: 'valid', identity: result.identity, via: 'basic', id: result.id, cached: result.cached };
    case 'invalid':
      return { kind: 'invalid', scheme: 'basic', user: result.user, reason: result.reason };
    case 'throttled':
      return { kind: 'throttled', user: result.user, retryAfterSeconds: result.retryAfterSeconds };
    case 'busy':
      return { kind: 'busy' };
  }
}

/**
 * `WWW-Authenticate` for a non-browser 401 with GATEWAY_BASIC_AUTH (RFC 7617): the realm is the
 * login page's title, reduced to characters a quoted string carries safely.
 */
export function basicChallengeFor(title: string): string {
  const realm = title.replace(/[^\x20-\x7e]|["\\]/g, '').trim() || 'session-gateway';
  return `Basic realm="${realm}", charset="UTF-8"`;
}
