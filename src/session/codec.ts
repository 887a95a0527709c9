// Compact encoding of a session record for the store. Redis memory per session is budgeted (issue
// 13: ≤ 400 bytes with the per-user index), and a string value is allocated in size classes
// (…, 80, 96, 112, 128 bytes: a record of up to 92 bytes takes 96), so every byte of a typical
// record counts.
//
// Form 4 (written today): `4` then the fields, separated by a unit separator (0x1F); groups are
// joined by a record separator (0x1E); numbers are base 36.
//   4user␟email␟groups␟createdAt␟lifetime␟touchedAfter[␟checkedAfter␟fingerprint[␟client[␟amr]]]
// An e-mail that starts with the user name's local part (the name up to its first `@`, or all of
// it) and `@` is stored from its `@` on (`jdoe` or `jdoe@corp` with `jdoe@example.com`: `@example.com`),
// as directories commonly name their users (a record with an e-mail starting with `@` is written in form 1).
// The sign-in time is in milliseconds (it orders a user's sign-ins for the session cap). The
// lifetime and the later times are whole seconds after it, rounded down: a session then idles
// out, is rechecked and ends up to a second early, never late, and a record touched hours after
// its sign-in stays as short as a new one. A touch time of zero (a record just signed in) is empty,
// and so is a recheck time of zero, which reads back as unset (the recheck counts from the sign-in
// when it has none).
// Form 3 (the previous release's) is form 4 with the e-mail always whole.
// (amr, the sign-in methods joined like groups, only when they are more than a password.)
// An empty e-mail is null, absent optional fields are unset. Fields after the known ones are
// ignored: a field added later goes at the end, optional, the ones before it written empty when
// unset, and this version reads such records during a rolling upgrade.
// Form 2 (the previous release's: `2␟` then the same fields, every time in milliseconds, an empty
// checkedAfter unset) and form 1 (a JSON array, times in milliseconds) are still read; form 1 is
// still written for the rare record form 4 cannot hold (a separator inside a name or group, an
// empty e-mail or group).
import type { SessionRecord } from './types.js';

const FIELD = '\x1f';
const GROUP = '\x1e';
const FORM_4 = '4';
const FORM_3 = '3';
const FORM_2 = `2${FIELD}`;
const BASE36 = /^-?[0-9a-z]+$/;
const SECOND = 1_000;

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
  if (text.startsWith(FORM_4)) return decodeCompact(text.slice(FORM_4.length), SECOND, true);
  if (text.startsWith(FORM_3)) return decodeCompact(text.slice(FORM_3.length), SECOND, false);
  if (text.startsWith(FORM_2)) return decodeCompact(text.slice(FORM_2.length), 1, false);
  if (text.startsWith('[')) return decodeJson(text);
  return null;
}

const unsafeText = (s: string) => s.includes(FIELD) || s.includes(GROUP);

function compactable(r: SessionRecord): boolean {
  if (unsafeText(r.user) || r.email === '' || (r.email !== null && (unsafeText(r.email) || r.email.startsWith('@')))) return false;
  if (r.groups.some((g) => g === '' || unsafeText(g))) return false;
  if (r.passwordFingerprint !== undefined && (r.passwordFingerprint === '' || unsafeText(r.passwordFingerprint))) return false;
  if (r.client !== undefined && (r.client === '' || unsafeText(r.client))) return false;
  if (r.amr !== undefined && r.amr.some((m) => m === '' || unsafeText(m))) return false;
  const times = [r.createdAt, r.expiresAt - r.createdAt, r.touchedAt - r.createdAt, (r.checkedAt ?? r.createdAt) - r.createdAt];
  return times.every((n) => Number.isSafeInteger(n));
}

const n36 = (n: number) => n.toString(36);
/** A duration in whole seconds, rounded down (so a deadline read back is never later). */
const seconds = (ms: number) => n36(Math.floor(ms / SECOND));
/** A time after the sign-in: whole seconds, and empty when that is zero. */
const after = (ms: number) => (ms >= 0 && ms < SECOND ? '' : seconds(ms));
/** The sign-in methods worth storing: anything beyond a password alone (absent means `pwd`). */
const storedAmr = (r: SessionRecord): string[] | null => (r.amr && !(r.amr.length === 1 && r.amr[0] === 'pwd') ? r.amr : null);

/** The user name's local part: up to its first `@`, or the whole name. */
function localPart(user: string): string {
  const at = user.indexOf('@');
  return at < 0 ? user : user.slice(0, at);
}

/** The e-mail as form 4 stores it: from its `@` on when it starts with the user name's local part and `@`. */
function storedEmail(user: string, email: string): string {
  const local = localPart(user);
  return email.startsWith(`${local}@`) ? email.slice(local.length) : email;
}

function encodeCompact(r: SessionRecord): string {
  const fields = [r.user, r.email === null ? '' : storedEmail(r.user, r.email), r.groups.join(GROUP), n36(r.createdAt), seconds(r.expiresAt - r.createdAt), after(r.touchedAt - r.createdAt)];
  // The user recheck's fields only when set, so a record without them stays short. A recheck time
  // equal to the sign-in's is written empty, as an unset one: the recheck counts from the sign-in
  // when it has none, so the two mean the same.
  const amr = storedAmr(r);
  if (r.checkedAt !== undefined || r.passwordFingerprint !== undefined || r.client !== undefined || amr !== null) {
    fields.push(r.checkedAt === undefined ? '' : after(r.checkedAt - r.createdAt), r.passwordFingerprint ?? '');
  }
  // The client description (account page: "Firefox on Linux"), after them, only when known.
  if (r.client !== undefined || amr !== null) fields.push(r.client ?? '');
  if (amr !== null) fields.push(amr.join(GROUP));
  return FORM_4 + fields.join(FIELD);
}

/**
 * Form 4 or 3 (`unitMs` a second; `relativeEmail` in form 4) or form 2 (milliseconds). An empty
 * checkedAfter is unset in all; an empty touchedAfter is zero in forms 3 and 4, malformed in form 2.
 */
function decodeCompact(body: string, unitMs: number, relativeEmail: boolean): SessionRecord | null {
  const fields = body.split(FIELD);
  if (fields.length < 6) return null;
  const [user, email, groups, created, lifetime, touchedAfter, checkedAfter = '', fingerprint = '', client = '', amr = ''] = fields as [string, string, string, string, string, string, string?, string?, string?, string?];
  const time = (field: string): number | null => (BASE36.test(field) ? parseInt(field, 36) * unitMs : null);
  const touched = touchedAfter === '' && unitMs === SECOND ? 0 : time(touchedAfter);
  const checked = checkedAfter === '' ? undefined : time(checkedAfter);
  if (!BASE36.test(created) || !BASE36.test(lifetime) || touched === null || checked === null) return null;
  const createdAt = parseInt(created, 36);
  const record: SessionRecord = {
    user,
    email: email === '' ? null : relativeEmail && email.startsWith('@') ? localPart(user) + email : email,
    groups: groups === '' ? [] : groups.split(GROUP),
    createdAt,
    expiresAt: createdAt + parseInt(lifetime, 36) * unitMs,
    touchedAt: createdAt + touched,
  };
  if (checked !== undefined) record.checkedAt = createdAt + checked;
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
