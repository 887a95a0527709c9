// Where users come from: the gateway's own `gateway_users` table, any legacy table through
// GATEWAY_USER_QUERY, or (embedded default mode) one generated user held in memory.
import pg from 'pg';
import { userStoreUnavailable } from '../errors.js';

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
  options: { userQuery?: string | null; rehashQuery?: string | null; onError?: (err: unknown) => void } = {},
): UserStore {
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
        const result = await pool.query(userQuery, [username]);
        const row = result.rows[0] as Record<string, unknown> | undefined;
        return row ? rowToUser(row, username) : null;
      }),
    rehash: (username, newHash) =>
      guarded(async () => {
        if (!rehashQuery) return false;
        const result = await pool.query(rehashQuery, [username, newHash]);
        return (result.rowCount ?? 0) > 0;
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
    ping: async () => undefined,
    close: async () => undefined,
  };
}
