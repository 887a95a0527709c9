// Operator actions on the gateway's own users table, behind the `users` CLI subcommands.
import type pg from 'pg';
import { hashPassword } from './passwords.js';

export interface NewUser {
  username: string;
  password: string;
  email: string | null;
  groups: string[];
}

export interface ListedUser {
  username: string;
  email: string | null;
  groups: string[];
  disabled: boolean;
  createdAt: string;
}

export class UserAdminError extends Error {}

/** C0 controls, DEL and C1 controls (NUL included): never part of a name a person types. */
export function hasControlCharacters(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) return true;
  }
  return false;
}

/**
 * Why a user name, e-mail or group given to the CLI is refused, or null. Leading and trailing
 * whitespace (any Unicode space) is stripped by HTTP parsers (RFC 9110 5.5), so `alice ` would
 * reach an app as `alice` if it were ever sent raw; control characters (NUL makes PostgreSQL
 * fail) cannot travel in a header at all. SPEC section 4.
 */
export function identityValueProblem(what: string, value: string): string | null {
  if (value === '') return `${what} is empty`;
  if (hasControlCharacters(value)) return `${what} ${JSON.stringify(value)} contains control characters`;
  if (/^\s|\s$/u.test(value)) return `${what} ${JSON.stringify(value)} starts or ends with whitespace`;
  return null;
}

export async function addUser(pool: pg.Pool, user: NewUser): Promise<void> {
  const problem = newUserProblem(user);
  if (problem) throw new UserAdminError(problem);
  const hash = await hashPassword(user.password);
  const result = await pool.query(
    `INSERT INTO gateway_users (username, password_hash, email, groups) VALUES ($1, $2, $3, $4)
     ON CONFLICT (username) DO NOTHING`,
    [user.username, hash, user.email, user.groups],
  );
  if (result.rowCount === 0) throw new UserAdminError(`user ${JSON.stringify(user.username)} already exists`);
}

/** The first reason a new account's name, e-mail or groups cannot be stored, or null. */
export function newUserProblem(user: Pick<NewUser, 'username' | 'email' | 'groups'>): string | null {
  return (
    identityValueProblem('user name', user.username) ??
    (user.email === null ? null : identityValueProblem('e-mail', user.email)) ??
    user.groups.map((group) => identityValueProblem('group', group)).find((problem) => problem !== null) ??
    null
  );
}

/** How a new password hash is written to the gateway's own table ($1 user name, $2 hash). */
export const OWN_TABLE_PASSWORD_QUERY = 'UPDATE gateway_users SET password_hash = $2, updated_at = now() WHERE username = $1';

export async function setPassword(pool: pg.Pool, username: string, password: string): Promise<void> {
  await writePasswordHash(pool, OWN_TABLE_PASSWORD_QUERY, username, await hashPassword(password));
}

/**
 * The one writer of a new password hash, for `users passwd` and the self-service page alike:
 * `query` is OWN_TABLE_PASSWORD_QUERY or GATEWAY_USER_PASSWORD_QUERY ($1 user name, $2 hash).
 */
export async function writePasswordHash(pool: pg.Pool, query: string, username: string, hash: string): Promise<void> {
  await updateOne(pool, query, [username, hash]);
}

export async function setDisabled(pool: pg.Pool, username: string, disabled: boolean): Promise<void> {
  await updateOne(pool, 'UPDATE gateway_users SET disabled = $2, updated_at = now() WHERE username = $1', [username, disabled]);
}

export async function deleteUser(pool: pg.Pool, username: string): Promise<void> {
  await updateOne(pool, 'DELETE FROM gateway_users WHERE username = $1', [username]);
}

export async function listUsers(pool: pg.Pool): Promise<ListedUser[]> {
  const result = await pool.query(
    'SELECT username, email, groups, disabled, created_at FROM gateway_users ORDER BY username',
  );
  return result.rows.map((row: Record<string, unknown>) => ({
    username: String(row.username),
    email: (row.email as string | null) ?? null,
    groups: (row.groups as string[] | null) ?? [],
    disabled: row.disabled === true,
    createdAt: (row.created_at as Date).toISOString(),
  }));
}

async function updateOne(pool: pg.Pool, sql: string, params: unknown[]): Promise<void> {
  const result = await pool.query(sql, params);
  if (result.rowCount === 0) throw new UserAdminError(`no such user ${JSON.stringify(params[0])}`);
}

// ---------------------------------------------------------------------------
// Legacy tables (GATEWAY_USER_QUERY): SPEC section 1 — the `users` commands go through the configured
// queries, or say in one line what is missing instead of failing on a gateway_users that is not there.
// ---------------------------------------------------------------------------

/** True when logins read another table than gateway_users, so its commands would miss the users. */
export function isLegacyTable(userQuery: string | null): boolean {
  return userQuery !== null && !/\bgateway_users\b/i.test(userQuery);
}

/** `users passwd` on a legacy table: through GATEWAY_USER_PASSWORD_QUERY (or the rehash query). */
export async function setLegacyPassword(pool: pg.Pool, passwordQuery: string | null, username: string, password: string): Promise<void> {
  if (!passwordQuery) {
    throw new UserAdminError('users passwd on a legacy table (GATEWAY_USER_QUERY) needs GATEWAY_USER_PASSWORD_QUERY, e.g. UPDATE users SET pass = $2 WHERE user_id = $1');
  }
  await writePasswordHash(pool, passwordQuery, username, await hashPassword(password));
}

/** The one line for commands that only the gateway's own table supports. */
export function ownTableOnly(action: string): UserAdminError {
  return new UserAdminError(`users ${action} works on the gateway's own gateway_users table only; GATEWAY_USER_QUERY points at another table: manage its users there (only users passwd has a query, GATEWAY_USER_PASSWORD_QUERY)`);
}

/** gateway_users missing: the operator skipped `migrate`, or meant a legacy table. */
export function explainMissingOwnTable(err: unknown): unknown {
  const { code, message } = err as { code?: string; message?: string };
  if (code === '42P01' && message?.includes('gateway_users')) {
    return new UserAdminError('the gateway_users table does not exist: run `session-gateway migrate`, or set GATEWAY_USER_QUERY to read an existing users table');
  }
  return err;
}
