// Compact encoding of a session record for the store: a JSON array rather than an object keeps
// a typical session well under the 400 bytes of Redis memory the hot-path issue budgets.
import type { SessionRecord } from './types.js';

// The later times are stored as offsets from login: shorter numbers, same precision. The user
// recheck's two fields come last and only when set, so a record without them keeps the old form;
// the client description (a few bytes, e.g. "Firefox on Linux") after them, only when known; the
// sign-in methods (amr) last, only when they are more than a password, so a password session is
// stored as before and replicas of an older version still read it.
type Base = [user: string, email: string | null, groups: string[], createdAt: number, lifetimeMs: number, touchedAfterMs: number];
type Encoded =
  | Base
  | [...Base, checkedAfterMs: number, passwordFingerprint: string | null]
  | [...Base, checkedAfterMs: number | null, passwordFingerprint: string | null, client: string]
  | [...Base, checkedAfterMs: number | null, passwordFingerprint: string | null, client: string | null, amr: string[]];

export function encodeRecord(r: SessionRecord): string {
  const base: Base = [r.user, r.email, r.groups, r.createdAt, r.expiresAt - r.createdAt, r.touchedAt - r.createdAt];
  const checked = r.checkedAt === undefined ? null : r.checkedAt - r.createdAt;
  const amr = r.amr && !(r.amr.length === 1 && r.amr[0] === 'pwd') ? r.amr : null;
  const encoded: Encoded =
    amr !== null
      ? [...base, checked, r.passwordFingerprint ?? null, r.client ?? null, amr]
      : r.client !== undefined
        ? [...base, checked, r.passwordFingerprint ?? null, r.client]
        : r.checkedAt === undefined && r.passwordFingerprint === undefined
          ? base
          : [...base, checked ?? 0, r.passwordFingerprint ?? null];
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
  if (!Array.isArray(value) || (value.length !== 6 && value.length !== 8 && value.length !== 9 && value.length !== 10)) return null;
  const [user, email, groups, createdAt, lifetimeMs, touchedAfterMs, checkedAfterMs, fingerprint, client, amr] = value as unknown[];
  if (typeof user !== 'string' || (email !== null && typeof email !== 'string')) return null;
  if (!Array.isArray(groups) || !groups.every((g) => typeof g === 'string')) return null;
  if (typeof createdAt !== 'number' || typeof lifetimeMs !== 'number' || typeof touchedAfterMs !== 'number') return null;
  const record: SessionRecord = { user, email, groups: groups as string[], createdAt, expiresAt: createdAt + lifetimeMs, touchedAt: createdAt + touchedAfterMs };
  if (value.length === 6) return record;
  if (fingerprint !== null && typeof fingerprint !== 'string') return null;
  if (value.length >= 9) {
    if ((checkedAfterMs !== null && typeof checkedAfterMs !== 'number') || (client !== null && typeof client !== 'string')) return null;
    if (value.length === 9 && client === null) return null;
    if (typeof client === 'string') record.client = client;
  } else if (typeof checkedAfterMs !== 'number') return null;
  if (typeof checkedAfterMs === 'number') record.checkedAt = createdAt + checkedAfterMs;
  if (fingerprint !== null) record.passwordFingerprint = fingerprint;
  if (value.length === 10) {
    if (!Array.isArray(amr) || !amr.every((m) => typeof m === 'string')) return null;
    record.amr = amr as string[];
  }
  return record;
}
