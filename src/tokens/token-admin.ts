// Operator actions behind `tokens create|list|revoke` and the admin API's DELETE /tokens/<user>/<name>.
import type { UserRecord } from '../users/user-store.js';
import { hashToken, newToken, tokenNameProblem } from './token.js';
import type { TokenRecord, TokenStore } from './token-store.js';

export class TokenAdminError extends Error {}

export interface ListedToken {
  name: string;
  created: string;
  expires: string | null;
  lastUsed: string | null;
}

/**
 * Issues a token for an existing, enabled user (read through the configured user query, so a
 * legacy table works) and returns it: the only time it is ever seen.
 */
export async function createToken(
  store: TokenStore,
  findUser: (name: string) => Promise<UserRecord | null>,
  request: { user: string; name: string; expiresInMs: number | null },
  now: () => number = Date.now,
): Promise<{ token: string; expiresAt: number | null }> {
  const problem = tokenNameProblem(request.name);
  if (problem) throw new TokenAdminError(problem);
  const user = await findUser(request.user);
  if (!user) throw new TokenAdminError(`no such user ${JSON.stringify(request.user)}`);
  if (user.disabled) throw new TokenAdminError(`user ${JSON.stringify(request.user)} is disabled`);
  const token = newToken();
  const expiresAt = request.expiresInMs === null ? null : now() + request.expiresInMs;
  if (!(await store.insert(hashToken(token), user.username, request.name, expiresAt))) {
    throw new TokenAdminError(`user ${JSON.stringify(user.username)} already has a token named ${JSON.stringify(request.name)}: revoke it first or choose another name`);
  }
  return { token, expiresAt };
}

export function describeToken(record: TokenRecord): ListedToken {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return { name: record.name, created: new Date(record.createdAt).toISOString(), expires: iso(record.expiresAt), lastUsed: iso(record.lastUsedAt) };
}

/** gateway_tokens missing: the operator has not run `migrate` since tokens arrived. */
export function explainMissingTokenTable(err: unknown): unknown {
  const { code, message } = err as { code?: string; message?: string };
  if (code === '42P01' && message?.includes('gateway_tokens')) {
    return new TokenAdminError('the gateway_tokens table does not exist: run `session-gateway migrate`');
  }
  return err;
}
