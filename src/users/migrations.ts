// `session-gateway migrate`: the gateway's own tables (users, second factor, passkeys). Idempotent, so it can run on every
// deploy (an init container, an ECS one-off task) without checking first.
import type pg from 'pg';

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS gateway_users (
     username      text PRIMARY KEY,
     password_hash text NOT NULL,
     email         text,
     groups        text[] NOT NULL DEFAULT '{}',
     disabled      boolean NOT NULL DEFAULT false,
     created_at    timestamptz NOT NULL DEFAULT now(),
     updated_at    timestamptz NOT NULL DEFAULT now()
   )`,
  // The second factor (SPEC 9, src/mfa/store.ts): keyed by username, so a legacy users table is
  // untouched. The TOTP secret is AES-256-GCM ciphertext; recovery codes are keyed hashes.
  `CREATE TABLE IF NOT EXISTS gateway_mfa (
     username          text PRIMARY KEY,
     totp_secret       text NOT NULL,
     totp_confirmed_at timestamptz,
     totp_last_step    bigint,
     recovery_codes    text[] NOT NULL DEFAULT '{}',
     created_at        timestamptz NOT NULL DEFAULT now(),
     updated_at        timestamptz NOT NULL DEFAULT now()
   )`,
  // A user whose only factor is a passkey keeps recovery codes here without a TOTP secret. Guarded,
  // so a migrate that finds it done takes no table lock.
  `DO $$ BEGIN
     IF EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'gateway_mfa' AND column_name = 'totp_secret' AND is_nullable = 'NO') THEN
       ALTER TABLE gateway_mfa ALTER COLUMN totp_secret DROP NOT NULL;
     END IF;
   END $$`,
  // Passkeys (WebAuthn, src/mfa/webauthn-store.ts): public keys only, one row per credential.
  `CREATE TABLE IF NOT EXISTS gateway_webauthn_credentials (
     credential_id text PRIMARY KEY,
     username      text NOT NULL,
     public_key    bytea NOT NULL,
     counter       bigint NOT NULL DEFAULT 0,
     transports    text[] NOT NULL DEFAULT '{}',
     name          text NOT NULL,
     created_at    timestamptz NOT NULL DEFAULT now(),
     last_used_at  timestamptz
   )`,
  'CREATE INDEX IF NOT EXISTS gateway_webauthn_credentials_username ON gateway_webauthn_credentials (username)',
];

export async function migrate(pool: pg.Pool): Promise<void> {
  await runMigrations(pool, MIGRATIONS);
}

/** Runs idempotent statements in one transaction, serialised with every other `migrate`. */
export async function runMigrations(pool: pg.Pool, statements: readonly string[]): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    // Two replicas migrating at once wait for each other instead of racing on CREATE TABLE.
    await client.query("SELECT pg_advisory_xact_lock(hashtext('session-gateway:migrate'))");
    for (const sql of statements) await client.query(sql);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
