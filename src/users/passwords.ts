/**
 * Password hashing and verification.
 *
 * Stored hashes may be argon2id / argon2i / argon2d (PHC strings), bcrypt
 * ($2a$, $2b$, $2y$), scrypt in the PHC-style format
 * `$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>`, or (only when explicitly
 * allowed) plaintext. New hashes are always argon2id with ARGON2ID_DEFAULTS.
 *
 * Invariants:
 * - Hashing never runs on the event loop: only the async APIs of
 *   @node-rs/argon2, @node-rs/bcrypt and node:crypto are used; they run in the
 *   libuv thread pool (at a lower priority on Linux: hash-threads.ts).
 * - verifyPassword never throws for bad stored data or input: it answers
 *   `ok: false`. Every path that does no real hash work (unknown user,
 *   malformed hash, refused plaintext, oversized password) verifies against a
 *   dummy argon2id hash instead, so those cases take about as long as a wrong
 *   password against a default argon2id hash and cannot be told apart by timing.
 * - Parameters read from stored hashes are bounded before any work is started,
 *   so a hostile row (e.g. scrypt ln=40) cannot exhaust memory or pin a
 *   thread-pool thread for minutes.
 */
import { createHmac, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import * as argon2 from '@node-rs/argon2';
import type { Algorithm } from '@node-rs/argon2';
import * as bcrypt from '@node-rs/bcrypt';
import { createLimiter, HASHING_CONCURRENCY, HASHING_QUEUE } from './concurrency.js';
import { traced } from '../tracing/index.js';

/** Every hash and verify shares these slots (see concurrency.ts for why); beyond the queue's bounds they reject with LimiterBusyError. */
const hashingSlots = createLimiter(HASHING_CONCURRENCY, HASHING_QUEUE);

export type HashScheme = 'argon2id' | 'argon2' /* argon2i/argon2d */ | 'bcrypt' | 'scrypt' | 'plaintext';

export interface VerifyResult {
  ok: boolean;
  scheme: HashScheme | 'none';
  /** True only when ok and the hash is not argon2id with >= current defaults. */
  needsRehash: boolean;
}

export interface VerifyOptions {
  allowPlaintext: boolean;
  /** Who asks (the client address): the hashing queue serves askers round-robin (concurrency.ts). */
  queueKey?: string;
}

export interface ScryptParams {
  /** log2 of the CPU/memory cost N. */
  ln: number;
  r: number;
  p: number;
}

/** OWASP Password Storage Cheat Sheet minimum for argon2id (19 MiB, t=2, p=1). */
export const ARGON2ID_DEFAULTS: Readonly<{ memoryCost: number; timeCost: number; parallelism: number }> =
  Object.freeze({ memoryCost: 19456, timeCost: 2, parallelism: 1 });

/**
 * Longest password (UTF-8 bytes) we are willing to hash. Far above any real
 * password, low enough that the input cannot be used to burn CPU. Note that
 * bcrypt only ever looks at the first 72 bytes (the library truncates, as
 * every bcrypt implementation does); that is a property of legacy bcrypt
 * hashes and goes away when they are rehashed to argon2id on login.
 */
export const MAX_PASSWORD_BYTES = 4096;

/*
 * Upper bounds for parameters read from stored hashes. Anything above is
 * treated as a malformed hash (ok: false) rather than computed. They sit well
 * above what real deployments use so legitimate legacy hashes still verify.
 */
/** scrypt: N <= 2^20 (the spec's bound). */
export const MAX_SCRYPT_LN = 20;
/** scrypt: the V array (128 * r * N bytes) may not exceed 1 GiB (ln=20, r=8). */
export const MAX_SCRYPT_MEMORY_BYTES = 1024 * 1024 * 1024;
/** scrypt: r * p bounds the work per N (RFC 7914 only requires < 2^30). */
export const MAX_SCRYPT_RP = 64;
/** argon2: memory cost in KiB (1 GiB). */
export const MAX_ARGON2_MEMORY_KIB = 1024 * 1024;
/** argon2: passes. */
export const MAX_ARGON2_TIME_COST = 32;
/** bcrypt: cost 16 is ~16x the usual cost 12; cost 31 would take days. */
export const MAX_BCRYPT_COST = 16;

// `Algorithm` is an ambient const enum, which isolatedModules forbids reading
// at runtime; the numeric values are part of the package's public API.
const ALGORITHM_ARGON2ID = 2 as Algorithm;
// argon2 Version.V0x13 (19); V0x10 is the older, weaker variant.
const ARGON2_VERSION_0X13 = 1;

const SCRYPT_SALT_BYTES = 16;
const SCRYPT_KEY_BYTES = 32;
const SCRYPT_MIN_KEY_BYTES = 16;
const SCRYPT_MAX_KEY_BYTES = 128;

/** Marks a stored hash that cannot be verified (malformed, out of bounds, refused). */
const UNUSABLE = Symbol('unusable');

interface Match {
  match: boolean;
  /** The hash is weaker than the current default (only meaningful on a match). */
  weak: boolean;
}
type Outcome = Match | typeof UNUSABLE;

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

/** Hash a new password: argon2id with the current defaults, random salt. */
export async function hashPassword(password: string): Promise<string> {
  return traced('password hash', () => hashingSlots.run(() => argon2.hash(password, argon2idOptions())));
}

/** Classify a stored value by its prefix; anything unrecognised is plaintext. */
export function detectScheme(stored: string): HashScheme {
  if (stored.startsWith('$argon2id$')) return 'argon2id';
  if (stored.startsWith('$argon2i$') || stored.startsWith('$argon2d$')) return 'argon2';
  if (/^\$2[aby]\$/.test(stored)) return 'bcrypt';
  if (stored.startsWith('$scrypt$')) return 'scrypt';
  return 'plaintext';
}

/**
 * Check `password` against a stored hash. Never throws on bad data; see the
 * module comment for the timing guarantees.
 */
export async function verifyPassword(
  stored: string | null | undefined,
  password: string,
  opts: VerifyOptions,
): Promise<VerifyResult> {
  return traced('password verify', () => hashingSlots.run(() => verifyUnlimited(stored, password, opts), opts.queueKey));
}

async function verifyUnlimited(stored: string | null | undefined, password: string, opts: VerifyOptions): Promise<VerifyResult> {
  if (stored === null || stored === undefined || stored === '') {
    await dummyVerify(password);
    return refused('none');
  }
  const scheme = detectScheme(stored);
  if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) {
    await dummyVerify('');
    return refused(scheme);
  }
  const outcome = await verifyWithScheme(scheme, stored, password, opts);
  if (outcome === UNUSABLE) {
    await dummyVerify(password);
    return refused(scheme);
  }
  return { ok: outcome.match, scheme, needsRehash: outcome.match && outcome.weak };
}

/**
 * True when a refused login failed because the stored value is no hash the gateway knows and
 * plaintext is not allowed: an operator mistake (legacy plaintext column), not a mistyped password.
 */
export function isUnrecognisedHash(stored: string | null | undefined, result: VerifyResult, opts: VerifyOptions): boolean {
  return !result.ok && !opts.allowPlaintext && typeof stored === 'string' && stored !== '' && result.scheme === 'plaintext';
}

export const UNRECOGNISED_HASH_HINT =
  'the stored password_hash is not a recognised hash (argon2, bcrypt, scrypt), so no password can match it; ' +
  'if the column holds plaintext passwords, set GATEWAY_ALLOW_PLAINTEXT_PASSWORDS=true';

/**
 * `first(key)` is true the first time a key is seen. Memory is bounded: past `limit` keys the set
 * starts again, so a table full of such users costs at most a repeat of their lines.
 */
export function createFirstSeen(limit = 10_000): { first(key: string): boolean } {
  const seen = new Set<string>();
  return {
    first(key) {
      if (seen.has(key)) return false;
      if (seen.size >= limit) seen.clear();
      seen.add(key);
      return true;
    },
  };
}

/**
 * Compute the dummy hash now (e.g. at startup) so the first unknown-user login
 * does not pay for hashing on top of verifying, which would make it stand out.
 */
export async function prepareDummyHash(): Promise<void> {
  await dummyHash();
}

/** Encode scrypt parameters, salt and derived key in the spec's format. */
export function encodeScryptHash(params: ScryptParams, salt: Uint8Array, hash: Uint8Array): string {
  const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64').replace(/=+$/, '');
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${b64(salt)}$${b64(hash)}`;
}

/**
 * Make an scrypt hash in the spec's format. Only for tests and legacy-migration
 * fixtures: new passwords are hashed with hashPassword (argon2id).
 */
export async function hashScrypt(password: string, params: ScryptParams): Promise<string> {
  if (!scryptParamsWithinBounds(params)) throw new RangeError('scrypt parameters out of bounds');
  const salt = randomBytes(SCRYPT_SALT_BYTES);
  const key = await scryptAsync(password, salt, SCRYPT_KEY_BYTES, params);
  return encodeScryptHash(params, salt, key);
}

// ---------------------------------------------------------------------------
// Dispatch and shared helpers
// ---------------------------------------------------------------------------

function refused(scheme: HashScheme | 'none'): VerifyResult {
  return { ok: false, scheme, needsRehash: false };
}

function verifyWithScheme(
  scheme: HashScheme,
  stored: string,
  password: string,
  opts: VerifyOptions,
): Promise<Outcome> {
  switch (scheme) {
    case 'argon2id':
    case 'argon2':
      return verifyArgon2(stored, password);
    case 'bcrypt':
      return verifyBcrypt(stored, password);
    case 'scrypt':
      return verifyScrypt(stored, password);
    case 'plaintext':
      return opts.allowPlaintext ? verifyPlaintext(stored, password) : Promise.resolve(UNUSABLE);
  }
}

function argon2idOptions(): argon2.Options {
  return { algorithm: ALGORITHM_ARGON2ID, ...ARGON2ID_DEFAULTS };
}

/**
 * Library calls can reject on malformed input after validation we did not
 * anticipate; those count as an unusable hash, never as an exception.
 */
async function guarded(work: () => Promise<Outcome>): Promise<Outcome> {
  try {
    return await work();
  } catch {
    return UNUSABLE;
  }
}

// ---------------------------------------------------------------------------
// Dummy hash: equalises the time of "no usable hash" with a real verify
// ---------------------------------------------------------------------------

let dummyHashPromise: Promise<string> | undefined;

function dummyHash(): Promise<string> {
  // Computed once, lazily, from a random secret nobody knows, so no password
  // can ever match it. A failed attempt is forgotten so the next call retries.
  dummyHashPromise ??= argon2.hash(randomBytes(32), argon2idOptions()).catch((err: unknown) => {
    dummyHashPromise = undefined;
    throw err;
  });
  return dummyHashPromise;
}

async function dummyVerify(password: string): Promise<void> {
  try {
    await argon2.verify(await dummyHash(), password);
  } catch {
    // Only timing matters here; the result is always "refused" anyway.
  }
}

// ---------------------------------------------------------------------------
// argon2
// ---------------------------------------------------------------------------

function verifyArgon2(stored: string, password: string): Promise<Outcome> {
  return guarded(async () => {
    const parsed = argon2.parseOptions(stored); // throws on malformed → UNUSABLE
    if (parsed.memoryCost > MAX_ARGON2_MEMORY_KIB || parsed.timeCost > MAX_ARGON2_TIME_COST) return UNUSABLE;
    const match = await argon2.verify(stored, password);
    return { match, weak: isWeakerArgon2(parsed) };
  });
}

function isWeakerArgon2(parsed: argon2.ParsedHashOptions): boolean {
  return (
    parsed.algorithm !== ALGORITHM_ARGON2ID ||
    parsed.version !== ARGON2_VERSION_0X13 ||
    parsed.memoryCost < ARGON2ID_DEFAULTS.memoryCost ||
    parsed.timeCost < ARGON2ID_DEFAULTS.timeCost ||
    parsed.parallelism < ARGON2ID_DEFAULTS.parallelism
  );
}

// ---------------------------------------------------------------------------
// bcrypt
// ---------------------------------------------------------------------------

/** `$2b$<two-digit cost>$<22-char salt><31-char hash>` in bcrypt's own base64 alphabet. */
const BCRYPT_SHAPE = /^\$2[aby]\$(\d{2})\$[./A-Za-z0-9]{53}$/;

function verifyBcrypt(stored: string, password: string): Promise<Outcome> {
  return guarded(async () => {
    // Checking the shape first lets us bound the cost before any work starts.
    const shape = BCRYPT_SHAPE.exec(stored);
    if (!shape || Number(shape[1]) > MAX_BCRYPT_COST) return UNUSABLE;
    // The library truncates passwords to 72 bytes, as bcrypt always has.
    const match = await bcrypt.verify(password, stored);
    return { match, weak: true };
  });
}

// ---------------------------------------------------------------------------
// scrypt
// ---------------------------------------------------------------------------

interface ParsedScrypt {
  params: ScryptParams;
  salt: Buffer;
  hash: Buffer;
}

// Strict shape: PHC integers without leading zeros, unpadded base64 in either
// the standard or the url-safe alphabet. Buffer.from(..., 'base64') accepts
// both alphabets but silently skips other characters, hence the regex.
const SCRYPT_RE =
  /^\$scrypt\$ln=([1-9][0-9]?),r=([1-9][0-9]{0,5}),p=([1-9][0-9]{0,5})\$([A-Za-z0-9+/_-]+)\$([A-Za-z0-9+/_-]+)$/;

function parseScrypt(stored: string): ParsedScrypt | undefined {
  const m = SCRYPT_RE.exec(stored);
  if (!m) return undefined;
  const [, ln, r, p, salt, hash] = m;
  if (ln === undefined || r === undefined || p === undefined || salt === undefined || hash === undefined) {
    return undefined;
  }
  const saltBytes = decodeBase64(salt);
  const hashBytes = decodeBase64(hash);
  if (!saltBytes || !hashBytes) return undefined;
  return { params: { ln: Number(ln), r: Number(r), p: Number(p) }, salt: saltBytes, hash: hashBytes };
}

/** Unpadded base64 (standard or url-safe); a length of 4k+1 is never valid. */
function decodeBase64(text: string): Buffer | undefined {
  if (text.length % 4 === 1) return undefined;
  return Buffer.from(text, 'base64');
}

function scryptParamsWithinBounds({ ln, r, p }: ScryptParams): boolean {
  if (![ln, r, p].every((n) => Number.isSafeInteger(n) && n >= 1)) return false;
  if (ln > MAX_SCRYPT_LN || r * p > MAX_SCRYPT_RP) return false;
  return 128 * r * 2 ** ln <= MAX_SCRYPT_MEMORY_BYTES;
}

function verifyScrypt(stored: string, password: string): Promise<Outcome> {
  return guarded(async () => {
    const parsed = parseScrypt(stored);
    if (!parsed || !scryptParamsWithinBounds(parsed.params)) return UNUSABLE;
    const keyLen = parsed.hash.length;
    if (keyLen < SCRYPT_MIN_KEY_BYTES || keyLen > SCRYPT_MAX_KEY_BYTES) return UNUSABLE;
    const derived = await scryptAsync(password, parsed.salt, keyLen, parsed.params);
    return { match: timingSafeEqual(derived, parsed.hash), weak: true };
  });
}

function scryptAsync(password: string, salt: Buffer, keyLen: number, { ln, r, p }: ScryptParams): Promise<Buffer> {
  const N = 2 ** ln;
  // OpenSSL needs 128*r*(N+2) bytes for V plus 128*r*p for B; asking for
  // exactly that keeps the limit tight (the params are already bounded).
  const maxmem = 128 * r * (N + p + 2);
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keyLen, { N, r, p, maxmem }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

// ---------------------------------------------------------------------------
// plaintext (legacy stores only, behind allowPlaintext)
// ---------------------------------------------------------------------------

// Random per process: the digests are only compared, never stored, so the key
// need not survive a restart. Comparing fixed-length HMACs instead of the raw
// values means neither content nor length leaks through timingSafeEqual.
const PLAINTEXT_HMAC_KEY = randomBytes(32);

function plaintextDigest(value: string): Buffer {
  return createHmac('sha256', PLAINTEXT_HMAC_KEY).update(value, 'utf8').digest();
}

async function verifyPlaintext(stored: string, password: string): Promise<Outcome> {
  // The comparison itself is instant; doing the dummy verify as well keeps
  // plaintext users indistinguishable by timing from argon2id and unknown users.
  await dummyVerify(password);
  return { match: timingSafeEqual(plaintextDigest(stored), plaintextDigest(password)), weak: true };
}
