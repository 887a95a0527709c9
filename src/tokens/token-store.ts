// Where tokens are kept: PostgreSQL's gateway_tokens, by the hash of the token (never the token).
import type pg from 'pg';

export interface TokenRecord {
  user: string;
  name: string;
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms; null: never expires. */
  expiresAt: number | null;
  /** Epoch ms; null: never used. */
  lastUsedAt: number | null;
}

export interface TokenStore {
  /** False (nothing written) when the user already has a token of that name. */
  insert(tokenHash: string, user: string, name: string, expiresAt: number | null): Promise<boolean>;
  find(tokenHash: string): Promise<TokenRecord | null>;
  list(user: string): Promise<TokenRecord[]>;
  /** Deletes one token; its hash (to tell every replica), or null when there was none. */
  revoke(user: string, name: string): Promise<string | null>;
  markUsed(tokenHash: string, at: number): Promise<void>;
}

const COLUMNS = 'username, name, created_at, expires_at, last_used_at';

export function createPostgresTokenStore(pool: pg.Pool): TokenStore {
  return {
    async insert(tokenHash, user, name, expiresAt) {
      const result = await pool.query(
        `INSERT INTO gateway_tokens (token_hash, username, name, expires_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (username, name) DO NOTHING`,
        [tokenHash, user, name, expiresAt === null ? null : new Date(expiresAt)],
      );
      return (result.rowCount ?? 0) > 0;
    },
    async find(tokenHash) {
      const result = await pool.query(`SELECT ${COLUMNS} FROM gateway_tokens WHERE token_hash = $1`, [tokenHash]);
      const row = result.rows[0] as Record<string, unknown> | undefined;
      return row ? toRecord(row) : null;
    },
    async list(user) {
      const result = await pool.query(`SELECT ${COLUMNS} FROM gateway_tokens WHERE username = $1 ORDER BY name`, [user]);
      return (result.rows as Array<Record<string, unknown>>).map(toRecord);
    },
    async revoke(user, name) {
      const result = await pool.query('DELETE FROM gateway_tokens WHERE username = $1 AND name = $2 RETURNING token_hash', [user, name]);
      const row = result.rows[0] as { token_hash: string } | undefined;
      return row?.token_hash ?? null;
    },
    async markUsed(tokenHash, at) {
      await pool.query('UPDATE gateway_tokens SET last_used_at = $2 WHERE token_hash = $1', [tokenHash, new Date(at)]);
    },
  };
}

const time = (value: unknown): number | null => (value instanceof Date ? value.getTime() : value === null || value === undefined ? null : new Date(String(value)).getTime());

function toRecord(row: Record<string, unknown>): TokenRecord {
  return {
    user: String(row.username),
    name: String(row.name),
    createdAt: time(row.created_at) ?? 0,
    expiresAt: time(row.expires_at),
    lastUsedAt: time(row.last_used_at),
  };
}
