// Compact encoding of a session record for the store: a JSON array rather than an object keeps
// a typical session well under the 400 bytes of Redis memory the hot-path issue budgets.
import type { SessionRecord } from './types.js';

// The later times are stored as offsets from login: shorter numbers, same precision. The user
// recheck's two fields come last and only when set, so a record without them keeps the old form;
// the client description (a few bytes, e.g. "Firefox on Linux") after them, only when known.
type Encoded =
  | [user: string, email: string | null, groups: string[], createdAt: number, lifetimeMs: number, touchedAfterMs: number]
  | [user: string, email: string | null, groups: string[], createdAt: number, lifetimeMs: number, touchedAfterMs: number, checkedAfterMs: number, passwordFingerprint: string | null]
  | [user: string, email: string | null, groups: string[], createdAt: number, lifetimeMs: number, touchedAfterMs: number, checkedAfterMs: number | null, passwordFingerprint: string | null, client: string];

export function encodeRecord(r: SessionRecord): string {
  const base = [r.user, r.email, r.groups, r.createdAt, r.expiresAt - r.createdAt, r.touchedAt - r.createdAt] as const;
  const checked = r.checkedAt === undefined ? null : r.checkedAt - r.createdAt;
  const encoded: Encoded =
    r.client !== undefined
      ? [...base, checked, r.passwordFingerprint ?? null, r.client]
      : r.checkedAt === undefined && r.passwordFingerprint === undefined
        ? [...base]
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
  if (!Array.isArray(value) || (value.length !== 6 && value.length !== 8 && value.length !== 9)) return null;
  const [user, email, groups, createdAt, lifetimeMs, touchedAfterMs, checkedAfterMs, fingerprint, client] = value as unknown[];
  if (typeof user !== 'string' || (email !== null && typeof email !== 'string')) return null;
  if (!Array.isArray(groups) || !groups.every((g) => typeof g === 'string')) return null;
  if (typeof createdAt !== 'number' || typeof lifetimeMs !== 'number' || typeof touchedAfterMs !== 'number') return null;
  const record: SessionRecord = { user, email, groups: groups as string[], createdAt, expiresAt: createdAt + lifetimeMs, touchedAt: createdAt + touchedAfterMs };
  if (value.length === 6) return record;
  if (fingerprint !== null && typeof fingerprint !== 'string') return null;
  if (value.length === 9) {
    if (typeof client !== 'string' || (checkedAfterMs !== null && typeof checkedAfterMs !== 'number')) return null;
    record.client = client;
  } else if (typeof checkedAfterMs !== 'number') return null;
  if (typeof checkedAfterMs === 'number') record.checkedAt = createdAt + checkedAfterMs;
  if (fingerprint !== null) record.passwordFingerprint = fingerprint;
  return record;
}
