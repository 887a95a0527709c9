// Compact encoding of a session record for the store: a JSON array rather than an object keeps
// a typical session well under the 400 bytes of Redis memory the hot-path issue budgets.
import type { SessionRecord } from './types.js';

// The two later times are stored as offsets from login: shorter numbers, same precision.
type Encoded = [user: string, email: string | null, groups: string[], createdAt: number, lifetimeMs: number, touchedAfterMs: number];

export function encodeRecord(r: SessionRecord): string {
  const encoded: Encoded = [r.user, r.email, r.groups, r.createdAt, r.expiresAt - r.createdAt, r.touchedAt - r.createdAt];
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
  if (!Array.isArray(value) || value.length !== 6) return null;
  const [user, email, groups, createdAt, lifetimeMs, touchedAfterMs] = value as unknown[];
  if (typeof user !== 'string' || (email !== null && typeof email !== 'string')) return null;
  if (!Array.isArray(groups) || !groups.every((g) => typeof g === 'string')) return null;
  if (typeof createdAt !== 'number' || typeof lifetimeMs !== 'number' || typeof touchedAfterMs !== 'number') return null;
  return { user, email, groups: groups as string[], createdAt, expiresAt: createdAt + lifetimeMs, touchedAt: createdAt + touchedAfterMs };
}
