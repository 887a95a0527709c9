// Where users come from: the gateway's own `gateway_users` table, any legacy table through
// GATEWAY_USER_QUERY, or (embedded default mode) one generated user held in memory.
import pg from 'pg';
import { userStoreUnavailable } from '../errors.js';
import { postgresCall } from '../tracing/index.js';
import { isLegacyTable, OWN_TABLE_PASSWORD_QUERY, UserAdminError, writePasswordHash } from './user-admin.js';

export interface UserRecord {
  username: string;
  passwordHash: string | null;
  email: string | null;
  groups: string[];
  disabled: boolean;
}

export interface UserStore {
  readonly kind: 'postgres' | 'memory';
  /** The user, or null if unknown; throws a 503 GatewayError when the store cannot answer. */
  find(username: string): Promise<UserRecord | null>;
  /** Replaces a stored hash after a login proved the password (legacy → argon2id). */
  rehash(username: string, newHash: string): Promise<boolean>;
  /**
   * A user's own password change (self-service): writes the new hash where `users passwd` does, the
   * gateway's table or GATEWAY_USER_PASSWORD_QUERY. 'no_query': a legacy table without that query.
   */
  setPasswordHash(username: string, newHash: string): Promise<'ok' | 'no_user' | 'no_query'>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export const DEFAULT_USER_QUERY =
  'SELECT username, password_hash, email, groups, disabled FROM gateway_users WHERE username = $1';
export const DEFAULT_REHASH_QUERY = 'UPDATE gateway_users SET password_hash = $2, updated_at = now() WHERE username = $1';

const QUERY_TIMEOUT_MS = 5_000;
const CONNECT_TIMEOUT_MS = 5_000;

export function createPgPool(databaseUrl: string): pg.Pool {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: 10,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    query_timeout: QUERY_TIMEOUT_MS,
    statement_timeout: QUERY_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
    application_name: 'session-gateway',
  });
  // An idle client losing its connection (database restart) must not crash the process; the
  // pool replaces it on the next checkout.
  pool.on('error', () => undefined);
  return pool;
}

export function createPostgresUserStore(
  pool: pg.Pool,
  options: { userQuery?: string | null; rehashQuery?: string | null; passwordQuery?: string | null; onError?: (err: unknown) => void } = {},
): UserStore {
  // The same choice as the CLI's `users passwd`: the own table, or the legacy table's query.
  const passwordQuery = isLegacyTable(options.userQuery ?? null) ? (options.passwordQuery ?? null) : OWN_TABLE_PASSWORD_QUERY;
  const userQuery = options.userQuery ?? DEFAULT_USER_QUERY;
  // With a custom (legacy) query and no rehash query, never guess how to write the legacy table.
  const rehashQuery = options.rehashQuery ?? (options.userQuery ? null : DEFAULT_REHASH_QUERY);
  const guarded = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (err) {
      options.onError?.(err);
      throw userStoreUnavailable(err);
    }
  };
  return {
    kind: 'postgres',
    find: (username) =>
      guarded(async () => {
        const result = await postgresCall('find user', userQuery, () => pool.query(userQuery, [username]));
        const row = result.rows[0] as Record<string, unknown> | undefined;
        return row ? rowToUser(row, username) : null;
      }),
    rehash: (username, newHash) =>
      guarded(async () => {
        if (!rehashQuery) return false;
        const result = await postgresCall('rehash', rehashQuery, () => pool.query(rehashQuery, [username, newHash]));
        return (result.rowCount ?? 0) > 0;
      }),
    setPasswordHash: (username, newHash) =>
      guarded(async () => {
        if (!passwordQuery) return 'no_query';
        try {
          await postgresCall('set_password', passwordQuery, () => writePasswordHash(pool, passwordQuery, username, newHash));
          return 'ok';
        } catch (err) {
          if (err instanceof UserAdminError) return 'no_user';
          throw err;
        }
      }),
    ping: () => guarded(async () => void (await pool.query('SELECT 1'))),
    close: () => pool.end(),
  };
}

/** Maps a row of any shape GATEWAY_USER_QUERY may return onto a UserRecord. */
export function rowToUser(row: Record<string, unknown>, requested: string): UserRecord {
  const hash = row.password_hash;
  return {
    username: typeof row.username === 'string' ? row.username : requested,
    passwordHash: typeof hash === 'string' ? hash : Buffer.isBuffer(hash) ? hash.toString('utf8') : null,
    email: typeof row.email === 'string' && row.email !== '' ? row.email : null,
    groups: parseGroups(row.groups),
    disabled: row.disabled === true || row.disabled === 't' || row.disabled === 1 || row.disabled === '1',
  };
}

function parseGroups(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((g): g is string => typeof g === 'string' && g !== '');
  if (typeof value === 'string') return value.split(',').map((g) => g.trim()).filter((g) => g !== '');
  return [];
}

export function createMemoryUserStore(users: UserRecord[]): UserStore {
  const byName = new Map(users.map((u) => [u.username, { ...u }]));
  return {
    kind: 'memory',
    find: async (username) => {
      const user = byName.get(username);
      return user ? { ...user } : null;
    },
    rehash: async (username, newHash) => {
      const user = byName.get(username);
      if (user) user.passwordHash = newHash;
      return user !== undefined;
    },
    setPasswordHash: async (username, newHash) => {
      const user = byName.get(username);
      if (!user) return 'no_user';
      user.passwordHash = newHash;
      return 'ok';
    },
    ping: async () => undefined,
    close: async () => undefined,
  };
}

export interface ConfiguredQueries {
  userQuery: string | null;
  rehashQuery: string | null;
  passwordQuery: string | null;
}

/** 'unreachable': PostgreSQL could not be asked (try again later); a string: what is wrong, one line. */
export type QueryCheck = 'ok' | 'unreachable' | string;

const REQUIRED_USER_COLUMNS = ['username', 'password_hash'];

/**
 * Checks the configured legacy-table queries with NULL parameters inside a transaction that is
 * rolled back: NULL matches no row and binds to any column type, so no real user is needed. The user
 * query runs (its result columns come back even with no row); the write queries are EXPLAINed.
 * PostgreSQL parses, plans and checks privileges, so a wrong query is named at start-up instead of
 * as `no_password` at every login.
 */
export async function checkConfiguredQueries(pool: pg.Pool, queries: ConfiguredQueries): Promise<QueryCheck> {
  if (!queries.userQuery) return 'ok';
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch {
    return 'unreachable';
  }
  try {
    // A connection that drops right after connecting is an outage like a refused one.
    if (!(await client.query('BEGIN').then(() => true, () => false))) return 'unreachable';
    const named: Array<[string, string | null, number]> = [
      ['GATEWAY_USER_QUERY', queries.userQuery, 1],
      ['GATEWAY_USER_REHASH_QUERY', queries.rehashQuery, 2],
      ['GATEWAY_USER_PASSWORD_QUERY', queries.passwordQuery !== queries.rehashQuery ? queries.passwordQuery : null, 2],
    ];
    for (const [name, sql, parameters] of named) {
      // A procedure (CALL) cannot be explained: it is left to its first use.
      if (!sql || /^\s*call\b/i.test(sql)) continue;
      // Writes are only EXPLAINed: nothing runs (no trigger fires, a read-only standby accepts it),
      // yet the statement is parsed, planned and its privileges checked.
      const statement = name === 'GATEWAY_USER_QUERY' ? sql : `EXPLAIN ${sql}`;
      const outcome = await client.query(statement, new Array<null>(parameters).fill(null)).then(
        (result) => (name === 'GATEWAY_USER_QUERY' ? missingColumns(result.fields.map((f) => f.name)) : 'ok'),
        (err: unknown) => (isQueryFault(err) ? `${name} fails: ${(err as Error).message}` : 'unreachable'),
      );
      if (outcome !== 'ok') return outcome;
    }
    return 'ok';
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    client.release();
  }
}

function missingColumns(columns: string[]): QueryCheck {
  const missing = REQUIRED_USER_COLUMNS.filter((c) => !columns.includes(c));
  if (missing.length === 0) return 'ok';
  return `GATEWAY_USER_QUERY returns no ${missing.join(' or ')} column (it returns: ${columns.join(', ') || 'nothing'}); alias them, e.g. SELECT user_id AS username, pass AS password_hash FROM users WHERE user_id = $1`;
}

/**
 * A server-side error about the statement itself (syntax, unknown table or column, missing
 * privilege, …) as opposed to the connection or the server's state (SQLSTATE classes 08, 53, 57,
 * 28, 3D) or a client-side error without a SQLSTATE.
 */
function isQueryFault(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return false;
  return !['08', '53', '57', '28', '3D'].includes(code.slice(0, 2));
}
