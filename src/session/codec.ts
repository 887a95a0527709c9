// Compact encoding of a session record for the store: a JSON array rather than an object keeps
// a typical session well under the 400 bytes of Redis memory the hot-path issue budgets.
import type { SessionRecord } from './types.js';

// The two later times are stored as offsets from login: shorter numbers, same precision. The
// sign-in methods (amr) follow only when they are more than a password, so a password session is
// stored exactly as before and replicas of an older version still read it during a rolling update.
type Encoded = [user: string, email: string | null, groups: string[], createdAt: number, lifetimeMs: number, touchedAfterMs: number, amr?: string[]];

export function encodeRecord(r: SessionRecord): string {
  const encoded: Encoded = [r.user, r.email, r.groups, r.createdAt, r.expiresAt - r.createdAt, r.touchedAt - r.createdAt];
  if (r.amr && !(r.amr.length === 1 && r.amr[0] === 'pwd')) encoded.push(r.amr);
  return JSON.stringify(encoded);
}

/** Decodes a stored record; null for anything malformed (treated as no session, never a crash). */
export function decodeRecord(text: string): SessionRecord | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (!Array.isArray(value) || (value.length !== 6 && value.length !== 7)) return null;
  const [user, email, groups, createdAt, lifetimeMs, touchedAfterMs, amr] = value as unknown[];
  if (amr !== undefined && !(Array.isArray(amr) && amr.every((m) => typeof m === 'string'))) return null;
  if (typeof user !== 'string' || (email !== null && typeof email !== 'string')) return null;
  if (!Array.isArray(groups) || !groups.every((g) => typeof g === 'string')) return null;
  if (typeof createdAt !== 'number' || typeof lifetimeMs !== 'number' || typeof touchedAfterMs !== 'number') return null;
  const record: SessionRecord = { user, email, groups: groups as string[], createdAt, expiresAt: createdAt + lifetimeMs, touchedAt: createdAt + touchedAfterMs };
  if (amr !== undefined) record.amr = amr as string[];
  return record;
}
