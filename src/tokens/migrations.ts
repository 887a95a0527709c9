// The gateway's own `gateway_tokens` table, next to (never inside) whatever table holds the users:
// a token names its user by name only, so it works beside a legacy users table too. Idempotent,
// run by `session-gateway migrate` after the users migration.
import type pg from 'pg';
import { runMigrations } from '../users/migrations.js';

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS gateway_tokens (
     token_hash   text PRIMARY KEY,
     username     text NOT NULL,
     name         text NOT NULL,
     created_at   timestamptz NOT NULL DEFAULT now(),
     expires_at   timestamptz,
     last_used_at timestamptz,
     UNIQUE (username, name)
   )`,
];

export async function migrateTokens(pool: pg.Pool): Promise<void> {
  await runMigrations(pool, MIGRATIONS);
}
