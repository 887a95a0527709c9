// Compact encoding of a session record for the store. Redis memory per session is budgeted (issue
// 13: ≤ 400 bytes with the per-user index), and a string value is allocated in size classes
// (…, 96, 112, 128, 160 bytes), so every byte of a typical record counts.
//
// Form 2 (written today): `2` then the fields, each led by a unit separator (0x1F); groups are
// joined by a record separator (0x1E); numbers are base 36. Later times are offsets from login.
//   2␟user␟email␟groups␟createdAt␟lifetime␟touchedAfter[␟checkedAfter␟fingerprint[␟client[␟amr]]]
// (amr, the sign-in methods joined like groups, only when they are more than a password).
// An empty field is null (email) or absent (the optional ones). Fields after the known ones are
// ignored: a field added later goes at the end, optional, the ones before it written empty when
// unset, and this version reads such records during a rolling upgrade.
// Form 1 (JSON array, the previous version's records) is still read, and still written for the
// rare record form 2 cannot hold (a separator inside a name or group, an empty e-mail or group).
import type { SessionRecord } from './types.js';

const FIELD = '\x1f';
const GROUP = '\x1e';
const FORM_2 = `2${FIELD}`;
const BASE36 = /^-?[0-9a-z]+$/;

/** `compact: false` writes what the previous release reads (GATEWAY_SESSION_COMPACT_RECORDS=false, for a rolling upgrade). */
export function encodeRecord(r: SessionRecord, options: { compact?: boolean } = {}): string {
  if (options.compact === false) return encodePrevious(r);
  return compactable(r) ? encodeCompact(r) : encodeJson(r);
}

/**
 * The six fields the previous release reads, and nothing else (it refuses any other length): the
 * recheck's fields and the client description are left out while old replicas still run. A
 * recheck then finds no fingerprint and adopts the current one; nothing is refused for it.
 */
function encodePrevious(r: SessionRecord): string {
  return JSON.stringify([r.user, r.email, r.groups, r.createdAt, r.expiresAt - r.createdAt, r.touchedAt - r.createdAt]);
}

/** Decodes a stored record of either form; null for anything malformed (no session, never a crash). */
export function decodeRecord(text: string): SessionRecord | null {
  if (text.startsWith(FORM_2)) return decodeCompact(text);
  if (text.startsWith('[')) return decodeJson(text);
  return null;
}

const unsafeText = (s: string) => s.includes(FIELD) || s.includes(GROUP);

function compactable(r: SessionRecord): boolean {
  if (unsafeText(r.user) || r.email === '' || (r.email !== null && unsafeText(r.email))) return false;
  if (r.groups.some((g) => g === '' || unsafeText(g))) return false;
  if (r.passwordFingerprint !== undefined && (r.passwordFingerprint === '' || unsafeText(r.passwordFingerprint))) return false;
  if (r.client !== undefined && (r.client === '' || unsafeText(r.client))) return false;
  if (r.amr !== undefined && r.amr.some((m) => m === '' || unsafeText(m))) return false;
  const times = [r.createdAt, r.expiresAt - r.createdAt, r.touchedAt - r.createdAt, (r.checkedAt ?? r.createdAt) - r.createdAt];
  return times.every((n) => Number.isSafeInteger(n));
}

const n36 = (n: number) => n.toString(36);
/** The sign-in methods worth storing: anything beyond a password alone (absent means `pwd`). */
const storedAmr = (r: SessionRecord): string[] | null => (r.amr && !(r.amr.length === 1 && r.amr[0] === 'pwd') ? r.amr : null);

function encodeCompact(r: SessionRecord): string {
  const fields = [r.user, r.email ?? '', r.groups.join(GROUP), n36(r.createdAt), n36(r.expiresAt - r.createdAt), n36(r.touchedAt - r.createdAt)];
  // The user recheck's fields only when set, so a record without them stays short.
  const amr = storedAmr(r);
  if (r.checkedAt !== undefined || r.passwordFingerprint !== undefined || r.client !== undefined || amr !== null) {
    fields.push(r.checkedAt === undefined ? '' : n36(r.checkedAt - r.createdAt), r.passwordFingerprint ?? '');
  }
  // The client description (account page: "Firefox on Linux"), after them, only when known.
  if (r.client !== undefined || amr !== null) fields.push(r.client ?? '');
  if (amr !== null) fields.push(amr.join(GROUP));
  return FORM_2 + fields.join(FIELD);
}

function decodeCompact(text: string): SessionRecord | null {
  const fields = text.slice(FORM_2.length).split(FIELD);
  if (fields.length < 6) return null;
  const [user, email, groups, created, lifetime, touchedAfter, checkedAfter = '', fingerprint = '', client = '', amr = ''] = fields as [string, string, string, string, string, string, string?, string?, string?, string?];
  if (![created, lifetime, touchedAfter].every((s) => BASE36.test(s))) return null;
  if (checkedAfter !== '' && !BASE36.test(checkedAfter)) return null;
  const createdAt = parseInt(created, 36);
  const record: SessionRecord = {
    user,
    email: email === '' ? null : email,
    groups: groups === '' ? [] : groups.split(GROUP),
    createdAt,
    expiresAt: createdAt + parseInt(lifetime, 36),
    touchedAt: createdAt + parseInt(touchedAfter, 36),
  };
  if (checkedAfter !== '') record.checkedAt = createdAt + parseInt(checkedAfter, 36);
  if (fingerprint !== '') record.passwordFingerprint = fingerprint;
  if (client !== '') record.client = client;
  if (amr !== '') record.amr = amr.split(GROUP);
  return record;
}

// Form 1: a JSON array; the recheck's two fields last and only when set.
type Encoded =
  | [user: string, email: string | null, groups: string[], createdAt: number, lifetimeMs: number, touchedAfterMs: number]
  | [user: string, email: string | null, groups: string[], createdAt: number, lifetimeMs: number, touchedAfterMs: number, checkedAfterMs: number, passwordFingerprint: string | null]
  | [user: string, email: string | null, groups: string[], createdAt: number, lifetimeMs: number, touchedAfterMs: number, checkedAfterMs: number | null, passwordFingerprint: string | null, client: string]
  | [user: string, email: string | null, groups: string[], createdAt: number, lifetimeMs: number, touchedAfterMs: number, checkedAfterMs: number | null, passwordFingerprint: string | null, client: string | null, amr: string[]];

function encodeJson(r: SessionRecord): string {
  const base = [r.user, r.email, r.groups, r.createdAt, r.expiresAt - r.createdAt, r.touchedAt - r.createdAt] as const;
  const checked = r.checkedAt === undefined ? null : r.checkedAt - r.createdAt;
  const amr = storedAmr(r);
  const encoded: Encoded =
    amr !== null
      ? [...base, checked, r.passwordFingerprint ?? null, r.client ?? null, amr]
      : r.client !== undefined
        ? [...base, checked, r.passwordFingerprint ?? null, r.client]
        : r.checkedAt === undefined && r.passwordFingerprint === undefined
          ? [...base]
          : [...base, checked ?? 0, r.passwordFingerprint ?? null];
  return JSON.stringify(encoded);
}

function decodeJson(text: string): SessionRecord | null {
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
    if ((value.length === 9 ? typeof client !== 'string' : client !== null && typeof client !== 'string') || (checkedAfterMs !== null && typeof checkedAfterMs !== 'number')) return null;
    if (typeof client === 'string') record.client = client;
    if (value.length === 10) {
      if (!Array.isArray(amr) || !amr.every((m) => typeof m === 'string')) return null;
      record.amr = amr as string[];
    }
  } else if (typeof checkedAfterMs !== 'number') return null;
  if (typeof checkedAfterMs === 'number') record.checkedAt = createdAt + checkedAfterMs;
  if (fingerprint !== null) record.passwordFingerprint = fingerprint;
  return record;
}
