// Passkeys (WebAuthn credentials) in the gateway's own table, gateway_webauthn_credentials (created
// by users/migrations.ts), keyed by credential id with the username beside it, so a legacy users
// table needs no change. Only public keys are kept. A use moves the signature counter forward in
// one conditional UPDATE, so an assertion whose counter does not advance (a cloned authenticator,
// or the same assertion twice on two replicas) is refused whichever replica asks.
import type pg from 'pg';

export interface Passkey {
  /** The credential id, base64url (as WebAuthn's JSON forms carry it). */
  id: string;
  user: string;
  /** COSE public key, as the authenticator gave it. */
  publicKey: Uint8Array<ArrayBuffer>;
  counter: number;
  transports: string[];
  /** Shown to the user ("Chrome on Linux"). */
  name: string;
  createdAt: Date;
  lastUsedAt: Date | null;
}

export type NewPasskey = Pick<Passkey, 'id' | 'user' | 'publicKey' | 'counter' | 'transports' | 'name'>;

export interface PasskeyStore {
  list(user: string): Promise<Passkey[]>;
  count(user: string): Promise<number>;
  /** The user's passkey with this credential id, or null (unknown, or another user's). */
  find(user: string, id: string): Promise<Passkey | null>;
  /** Saves a new passkey; false when a credential with this id exists already. */
  add(passkey: NewPasskey): Promise<boolean>;
  /**
   * Records a use with the authenticator's new counter: true when it moved forward (or the
   * authenticator keeps no counter: 0 then and now); false otherwise, and nothing written.
   */
  use(user: string, id: string, counter: number): Promise<boolean>;
  /** Removes every passkey of a user; returns how many. */
  removeAll(user: string): Promise<number>;
}

interface Row {
  credential_id: string;
  username: string;
  public_key: Buffer;
  counter: string | number;
  transports: string[];
  name: string;
  created_at: Date;
  last_used_at: Date | null;
}

const COLUMNS = 'credential_id, username, public_key, counter, transports, name, created_at, last_used_at';

const fromRow = (row: Row): Passkey => ({
  id: row.credential_id,
  user: row.username,
  publicKey: new Uint8Array(row.public_key),
  counter: Number(row.counter),
  transports: row.transports,
  name: row.name,
  createdAt: row.created_at,
  lastUsedAt: row.last_used_at,
});

export function createPostgresPasskeyStore(pool: pg.Pool): PasskeyStore {
  return {
    async list(user) {
      const { rows } = await pool.query(`SELECT ${COLUMNS} FROM gateway_webauthn_credentials WHERE username = $1 ORDER BY created_at`, [user]);
      return (rows as Row[]).map(fromRow);
    },
    async count(user) {
      const { rows } = await pool.query('SELECT count(*)::int AS n FROM gateway_webauthn_credentials WHERE username = $1', [user]);
      return (rows[0] as { n: number }).n;
    },
    async find(user, id) {
      const { rows } = await pool.query(`SELECT ${COLUMNS} FROM gateway_webauthn_credentials WHERE credential_id = $1 AND username = $2`, [id, user]);
      const row = rows[0] as Row | undefined;
      return row ? fromRow(row) : null;
    },
    async add(passkey) {
      const result = await pool.query(
        `INSERT INTO gateway_webauthn_credentials (credential_id, username, public_key, counter, transports, name)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (credential_id) DO NOTHING`,
        [passkey.id, passkey.user, Buffer.from(passkey.publicKey), passkey.counter, passkey.transports, passkey.name],
      );
      return result.rowCount === 1;
    },
    async use(user, id, counter) {
      const result = await pool.query(
        `UPDATE gateway_webauthn_credentials SET counter = $3, last_used_at = now()
         WHERE credential_id = $1 AND username = $2 AND (counter < $3 OR ($3 = 0 AND counter = 0))`,
        [id, user, counter],
      );
      return result.rowCount === 1;
    },
    async removeAll(user) {
      const result = await pool.query('DELETE FROM gateway_webauthn_credentials WHERE username = $1', [user]);
      return result.rowCount ?? 0;
    },
  };
}

/** The embedded mode's store (one process): the same rules, in memory. */
export function createMemoryPasskeyStore(): PasskeyStore {
  const passkeys = new Map<string, Passkey>();
  const mine = (user: string) => [...passkeys.values()].filter((passkey) => passkey.user === user);
  return {
    async list(user) {
      return mine(user);
    },
    async count(user) {
      return mine(user).length;
    },
    async find(user, id) {
      const passkey = passkeys.get(id);
      return passkey?.user === user ? passkey : null;
    },
    async add(passkey) {
      if (passkeys.has(passkey.id)) return false;
      passkeys.set(passkey.id, { ...passkey, createdAt: new Date(), lastUsedAt: null });
      return true;
    },
    async use(user, id, counter) {
      const passkey = passkeys.get(id);
      if (passkey?.user !== user) return false;
      if (!(passkey.counter < counter || (counter === 0 && passkey.counter === 0))) return false;
      Object.assign(passkey, { counter, lastUsedAt: new Date() });
      return true;
    },
    async removeAll(user) {
      const gone = mine(user);
      for (const passkey of gone) passkeys.delete(passkey.id);
      return gone.length;
    },
  };
}
