// The gateway's own second-factor table, gateway_mfa (SPEC section 9; created by users/migrations.ts), keyed by username so a legacy
// users table needs no change. One row per user: the encrypted TOTP secret (unconfirmed until the
// first code is entered), the last time step a code was accepted for, and the recovery codes'
// hashes (issued with the first factor, TOTP or a passkey: a passkey-only user has a row without a
// secret). Every "use" is one conditional UPDATE, so a code or a recovery code is accepted once,
// whichever replica asks and however many ask at the same moment.
import type pg from 'pg';

export interface MfaStatus {
  totp: 'none' | 'unconfirmed' | 'enrolled';
  enrolledAt: Date | null;
  recoveryCodesLeft: number;
}

export interface MfaStore {
  status(user: string): Promise<MfaStatus>;
  /**
   * The stored secret of an enrolment that is not confirmed yet, created from `fresh` when there
   * is none (so a reload of the setup page shows the same key); null when the user is enrolled.
   */
  unconfirmedSecret(user: string, fresh: string): Promise<string | null>;
  /** Confirms the enrolment that stored `secret`; false when it was confirmed or replaced meanwhile. */
  confirm(user: string, secret: string, step: number, recoveryHashes: string[]): Promise<boolean>;
  /** The stored secret of a confirmed enrolment, or null. */
  enrolledSecret(user: string): Promise<string | null>;
  /** Records `step` as used if it is later than every step used before; false: a replay. */
  useStep(user: string, step: number): Promise<boolean>;
  /** Consumes the recovery code stored under one of `hashes`; false when there is none. */
  useRecoveryCode(user: string, hashes: string[]): Promise<boolean>;
  /** Replaces a stored secret by the same secret under the current key (after a key rotation). */
  reencrypt(user: string, from: string, to: string): Promise<void>;
  /** Stores ten new recovery codes if the user has none left; false when they still have some. */
  issueRecoveryCodes(user: string, recoveryHashes: string[]): Promise<boolean>;
  /** Forgets a TOTP secret that was never confirmed (recovery codes stay). */
  dropUnconfirmedSecret(user: string): Promise<void>;
  /** Removes the TOTP factor and every recovery code of a user; false when there was nothing. */
  reset(user: string): Promise<boolean>;
}

export function createPostgresMfaStore(pool: pg.Pool): MfaStore {
  return {
    async status(user) {
      const { rows } = await pool.query('SELECT totp_secret IS NOT NULL AS has_secret, totp_confirmed_at, cardinality(recovery_codes) AS left FROM gateway_mfa WHERE username = $1', [user]);
      const row = rows[0] as { has_secret: boolean; totp_confirmed_at: Date | null; left: number } | undefined;
      if (!row) return { totp: 'none', enrolledAt: null, recoveryCodesLeft: 0 };
      return { totp: totpState(row.has_secret, row.totp_confirmed_at), enrolledAt: row.totp_confirmed_at, recoveryCodesLeft: Number(row.left) };
    },
    async unconfirmedSecret(user, fresh) {
      // One round trip: the inserted row (or a passkey user's row given its first secret), or the
      // one that was already there.
      const { rows } = await pool.query(
        `WITH inserted AS (
           INSERT INTO gateway_mfa (username, totp_secret) VALUES ($1, $2)
           ON CONFLICT (username) DO UPDATE SET totp_secret = EXCLUDED.totp_secret, updated_at = now() WHERE gateway_mfa.totp_secret IS NULL
           RETURNING totp_secret, totp_confirmed_at
         )
         SELECT totp_secret, totp_confirmed_at FROM inserted
         UNION ALL SELECT totp_secret, totp_confirmed_at FROM gateway_mfa WHERE username = $1
         LIMIT 1`,
        [user, fresh],
      );
      const row = rows[0] as { totp_secret: string | null; totp_confirmed_at: Date | null } | undefined;
      if (!row || row.totp_secret === null) return null;
      return row.totp_confirmed_at ? null : row.totp_secret;
    },
    async confirm(user, secret, step, recoveryHashes) {
      const result = await pool.query(
        `UPDATE gateway_mfa SET totp_confirmed_at = now(), totp_last_step = $3, recovery_codes = $4, updated_at = now()
         WHERE username = $1 AND totp_secret = $2 AND totp_confirmed_at IS NULL`,
        [user, secret, step, recoveryHashes],
      );
      return result.rowCount === 1;
    },
    async enrolledSecret(user) {
      const { rows } = await pool.query('SELECT totp_secret FROM gateway_mfa WHERE username = $1 AND totp_confirmed_at IS NOT NULL', [user]);
      return (rows[0] as { totp_secret: string } | undefined)?.totp_secret ?? null;
    },
    async useStep(user, step) {
      const result = await pool.query(
        `UPDATE gateway_mfa SET totp_last_step = $2, updated_at = now()
         WHERE username = $1 AND totp_confirmed_at IS NOT NULL AND (totp_last_step IS NULL OR totp_last_step < $2)`,
        [user, step],
      );
      return result.rowCount === 1;
    },
    async useRecoveryCode(user, hashes) {
      const result = await pool.query(
        `UPDATE gateway_mfa SET recovery_codes = ARRAY(SELECT c FROM unnest(recovery_codes) AS c WHERE c <> ALL($2::text[])), updated_at = now()
         WHERE username = $1 AND recovery_codes && $2::text[]`,
        [user, hashes],
      );
      return result.rowCount === 1;
    },
    async reencrypt(user, from, to) {
      await pool.query('UPDATE gateway_mfa SET totp_secret = $3, updated_at = now() WHERE username = $1 AND totp_secret = $2', [user, from, to]);
    },
    async issueRecoveryCodes(user, recoveryHashes) {
      const result = await pool.query(
        `INSERT INTO gateway_mfa (username, totp_secret, recovery_codes) VALUES ($1, NULL, $2)
         ON CONFLICT (username) DO UPDATE SET recovery_codes = EXCLUDED.recovery_codes, updated_at = now() WHERE cardinality(gateway_mfa.recovery_codes) = 0`,
        [user, recoveryHashes],
      );
      return result.rowCount === 1;
    },
    async dropUnconfirmedSecret(user) {
      await pool.query('UPDATE gateway_mfa SET totp_secret = NULL, updated_at = now() WHERE username = $1 AND totp_confirmed_at IS NULL', [user]);
    },
    async reset(user) {
      const result = await pool.query('DELETE FROM gateway_mfa WHERE username = $1', [user]);
      return (result.rowCount ?? 0) > 0;
    },
  };
}

const totpState = (hasSecret: boolean, confirmedAt: Date | null): MfaStatus['totp'] => (!hasSecret ? 'none' : confirmedAt ? 'enrolled' : 'unconfirmed');

interface MemoryRow {
  secret: string | null;
  confirmedAt: Date | null;
  lastStep: number | null;
  recovery: string[];
}

/** The embedded mode's store (one process, like its generated user): the same rules, in memory. */
export function createMemoryMfaStore(): MfaStore {
  const rows = new Map<string, MemoryRow>();
  return {
    async status(user) {
      const row = rows.get(user);
      if (!row) return { totp: 'none', enrolledAt: null, recoveryCodesLeft: 0 };
      return { totp: totpState(row.secret !== null, row.confirmedAt), enrolledAt: row.confirmedAt, recoveryCodesLeft: row.recovery.length };
    },
    async unconfirmedSecret(user, fresh) {
      let row = rows.get(user);
      if (!row) rows.set(user, (row = { secret: fresh, confirmedAt: null, lastStep: null, recovery: [] }));
      row.secret ??= fresh;
      return row.confirmedAt ? null : row.secret;
    },
    async confirm(user, secret, step, recoveryHashes) {
      const row = rows.get(user);
      if (!row || row.confirmedAt || row.secret !== secret) return false;
      Object.assign(row, { confirmedAt: new Date(), lastStep: step, recovery: [...recoveryHashes] });
      return true;
    },
    async enrolledSecret(user) {
      const row = rows.get(user);
      return row?.confirmedAt ? row.secret : null;
    },
    async useStep(user, step) {
      const row = rows.get(user);
      if (!row?.confirmedAt || (row.lastStep !== null && row.lastStep >= step)) return false;
      row.lastStep = step;
      return true;
    },
    async useRecoveryCode(user, hashes) {
      const row = rows.get(user);
      if (!row) return false;
      const left = row.recovery.filter((hash) => !hashes.includes(hash));
      if (left.length === row.recovery.length) return false;
      row.recovery = left;
      return true;
    },
    async reencrypt(user, from, to) {
      const row = rows.get(user);
      if (row?.secret === from) row.secret = to;
    },
    async issueRecoveryCodes(user, recoveryHashes) {
      const row = rows.get(user);
      if (row && row.recovery.length > 0) return false;
      if (row) row.recovery = [...recoveryHashes];
      else rows.set(user, { secret: null, confirmedAt: null, lastStep: null, recovery: [...recoveryHashes] });
      return true;
    },
    async dropUnconfirmedSecret(user) {
      const row = rows.get(user);
      if (row && !row.confirmedAt) row.secret = null;
    },
    async reset(user) {
      return rows.delete(user);
    },
  };
}
