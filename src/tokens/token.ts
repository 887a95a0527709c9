// API tokens (SPEC 9): `sgw_pat_` + 256 random bits in base64url, shown once. Only a SHA-256 of
// the whole token is stored: for a random 256-bit secret a fast hash is enough (nothing to guess
// from it), and it lets a token be found by its hash with one indexed lookup.
import { createHash, randomBytes } from 'node:crypto';

export const TOKEN_PREFIX = 'sgw_pat_';
const TOKEN_BYTES = 32;
/** The prefix and 43 base64url characters: anything else is not a token this gateway issued. */
const TOKEN_PATTERN = /^sgw_pat_[A-Za-z0-9_-]{43}$/;
/** Names are for people and scripts (`ci-deploy`, `caldav.phone`): short and printable. */
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function newToken(): string {
  return TOKEN_PREFIX + randomBytes(TOKEN_BYTES).toString('base64url');
}

/** Whether a credential claims to be a gateway token (then the gateway owns it, valid or not). */
export function isGatewayToken(value: string): boolean {
  return value.startsWith(TOKEN_PREFIX);
}

export function isWellFormedToken(value: string): boolean {
  return value.length === TOKEN_PREFIX.length + 43 && TOKEN_PATTERN.test(value);
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/** Why a token name is refused, or null. */
export function tokenNameProblem(name: string): string | null {
  return NAME_PATTERN.test(name) ? null : `token name ${JSON.stringify(name)} must be 1-64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit`;
}
