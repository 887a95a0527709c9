// Real hashing throughout (no mocks): these tests pin the stored-hash formats
// the user store may contain and the refusal behaviour for bad data.
import t from 'tap';
import { randomBytes, scryptSync } from 'node:crypto';
import * as argon2 from '@node-rs/argon2';
import type { Algorithm } from '@node-rs/argon2';
import * as bcrypt from '@node-rs/bcrypt';
import {
  ARGON2ID_DEFAULTS,
  MAX_PASSWORD_BYTES,
  detectScheme,
  encodeScryptHash,
  hashPassword,
  hashScrypt,
  verifyPassword,
  type HashScheme,
} from '../../src/users/passwords.js';

const PW = 'correct horse battery staple';
const WRONG = 'correct horse battery stapler';
const STRICT = { allowPlaintext: false };
const LENIENT = { allowPlaintext: true };

// Ambient const enum values cannot be read under isolatedModules.
const ARGON2D = 0 as Algorithm;
const ARGON2I = 1 as Algorithm;
const ARGON2ID = 2 as Algorithm;

/** Cheap scrypt parameters so the suite stays fast. */
const SCRYPT_FAST = { ln: 10, r: 8, p: 1 };

/** Enough of a tap test object for the helper below (works for root and subtests). */
type Asserter = Pick<typeof t, 'same'>;

/** Assert a hash verifies the right password only, and report needsRehash on match. */
async function checkRightAndWrong(
  t: Asserter,
  stored: string,
  scheme: HashScheme,
  needsRehash: boolean,
): Promise<void> {
  t.same(await verifyPassword(stored, PW, STRICT), { ok: true, scheme, needsRehash }, 'right password');
  t.same(await verifyPassword(stored, WRONG, STRICT), { ok: false, scheme, needsRehash: false }, 'wrong password');
}

/** PHC-style unpadded base64, optionally url-safe. */
function b64(bytes: Buffer, urlSafe = false): string {
  const std = bytes.toString('base64').replace(/=+$/, '');
  return urlSafe ? std.replace(/\+/g, '-').replace(/\//g, '_') : std;
}

/** A bytes buffer whose base64 is guaranteed to contain '+' and '/' (0xfb 0xff 0xbf → "+/+/"). */
function saltWithSpecialChars(): Buffer {
  return Buffer.concat([Buffer.from([0xfb, 0xff, 0xbf]), randomBytes(13)]);
}

t.test('argon2id from hashPassword', async (t) => {
  const stored = await hashPassword(PW);
  t.match(stored, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  t.same(ARGON2ID_DEFAULTS, { memoryCost: 19456, timeCost: 2, parallelism: 1 });
  await checkRightAndWrong(t, stored, 'argon2id', false);
  t.not(await hashPassword(PW), stored, 'salt is random');
});

t.test('argon2id cost parameters and needsRehash', async (t) => {
  const weaker: Array<[string, argon2.Options]> = [
    ['lower m', { memoryCost: 8192 }],
    ['lower t', { timeCost: 1 }],
  ];
  for (const [name, opts] of weaker) {
    const stored = await argon2.hash(PW, { ...ARGON2ID_DEFAULTS, algorithm: ARGON2ID, ...opts });
    t.test(name, (t) => checkRightAndWrong(t, stored, 'argon2id', true));
  }
  const stronger = await argon2.hash(PW, { ...ARGON2ID_DEFAULTS, algorithm: ARGON2ID, timeCost: 3, parallelism: 2 });
  t.test('higher than defaults', (t) => checkRightAndWrong(t, stronger, 'argon2id', false));
  const defaults = await argon2.hash(PW, { ...ARGON2ID_DEFAULTS, algorithm: ARGON2ID });
  t.test('exactly the defaults', (t) => checkRightAndWrong(t, defaults, 'argon2id', false));
});

t.test('argon2i and argon2d verify and need rehash', async (t) => {
  for (const [name, algorithm] of [['argon2i', ARGON2I], ['argon2d', ARGON2D]] as const) {
    const stored = await argon2.hash(PW, { ...ARGON2ID_DEFAULTS, algorithm });
    t.ok(stored.startsWith(`$${name}$`), `${name} prefix`);
    t.test(name, (t) => checkRightAndWrong(t, stored, 'argon2', true));
  }
});

t.test('bcrypt $2a$ $2b$ $2y$', async (t) => {
  for (const version of ['2a', '2b', '2y'] as const) {
    const generated = `$${version}${(await bcrypt.hash(PW, 4)).slice(3)}`;
    t.ok(generated.startsWith(`$${version}$`));
    t.test(`generated ${version}`, (t) => checkRightAndWrong(t, generated, 'bcrypt', true));
  }
  // Same algorithm for 2a/2b/2y on passwords < 255 bytes, so swapping the
  // prefix of a $2b$ hash gives a valid hash of the other versions.
  const base = await bcrypt.hash(PW, 4);
  for (const prefix of ['$2a$', '$2y$']) {
    const swapped = prefix + base.slice(4);
    t.test(`prefix swapped to ${prefix}`, (t) => checkRightAndWrong(t, swapped, 'bcrypt', true));
  }
});

t.test('bcrypt only uses the first 72 bytes (documented limitation)', async (t) => {
  const long = 'x'.repeat(72);
  const stored = await bcrypt.hash(long, 4);
  t.equal((await verifyPassword(stored, `${long}anything`, STRICT)).ok, true);
});

t.test('scrypt made by hashScrypt', async (t) => {
  const stored = await hashScrypt(PW, SCRYPT_FAST);
  t.match(stored, /^\$scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
  await checkRightAndWrong(t, stored, 'scrypt', true);
  await t.rejects(hashScrypt(PW, { ln: 21, r: 8, p: 1 }), RangeError);
});

t.test('scrypt made independently with crypto.scryptSync (proves the format)', async (t) => {
  const salt = saltWithSpecialChars();
  const key = scryptSync(PW, salt, 32, { N: 2 ** 10, r: 8, p: 2 });
  const standard = `$scrypt$ln=10,r=8,p=2$${b64(salt)}$${b64(key)}`;
  const urlSafe = `$scrypt$ln=10,r=8,p=2$${b64(salt, true)}$${b64(key, true)}`;
  t.ok(standard.includes('+/'), 'standard alphabet exercised');
  t.ok(urlSafe.includes('-_'), 'url-safe alphabet exercised');
  t.equal(encodeScryptHash({ ln: 10, r: 8, p: 2 }, salt, key), standard, 'encoder matches');
  t.test('standard alphabet', (t) => checkRightAndWrong(t, standard, 'scrypt', true));
  t.test('url-safe alphabet', (t) => checkRightAndWrong(t, urlSafe, 'scrypt', true));
  const key64 = scryptSync(PW, salt, 64, { N: 2 ** 10, r: 8, p: 1 });
  const longKey = `$scrypt$ln=10,r=8,p=1$${b64(salt)}$${b64(key64)}`;
  t.test('key length taken from the stored hash', (t) => checkRightAndWrong(t, longKey, 'scrypt', true));
});

t.test('hostile scrypt parameters are rejected without computing', async (t) => {
  const salt = b64(randomBytes(16));
  const hash = b64(randomBytes(32));
  const hostile = [
    'ln=40,r=8,p=1', // N = 2^40
    'ln=21,r=8,p=1', // N > 2^20
    'ln=10,r=8,p=1000', // r*p too large
    'ln=10,r=1000,p=1', // r*p too large
    'ln=20,r=16,p=1', // 2 GiB of memory
  ];
  for (const params of hostile) {
    const stored = `$scrypt$${params}$${salt}$${hash}`;
    t.same(await verifyPassword(stored, PW, STRICT), { ok: false, scheme: 'scrypt', needsRehash: false }, params);
  }
  // Cheap enough to compute for real: a correct hash still refused proves the
  // refusal comes from the bound, not from a mismatch.
  for (const { r, p } of [{ r: 8, p: 100 }, { r: 100, p: 1 }]) {
    const rawSalt = randomBytes(16);
    const key = scryptSync(PW, rawSalt, 32, { N: 2 ** 10, r, p, maxmem: 256 * 1024 * 1024 });
    const stored = encodeScryptHash({ ln: 10, r, p }, rawSalt, key);
    t.same(await verifyPassword(stored, PW, STRICT), { ok: false, scheme: 'scrypt', needsRehash: false }, `r=${r},p=${p}`);
  }
});

t.test('hostile argon2 and bcrypt costs are rejected without computing', async (t) => {
  // If these were computed the test would time out (m = 4 GiB; bcrypt 2^31 rounds).
  const argon = await hashPassword(PW);
  const bigMemory = argon.replace('m=19456', 'm=4194304');
  t.same(await verifyPassword(bigMemory, PW, STRICT), { ok: false, scheme: 'argon2id', needsRehash: false });
  // Correct hash, cheap to make, refused only because t exceeds the bound.
  const manyPasses = await argon2.hash(PW, { algorithm: ARGON2ID, memoryCost: 64, timeCost: 33, parallelism: 1 });
  t.same(await verifyPassword(manyPasses, PW, STRICT), { ok: false, scheme: 'argon2id', needsRehash: false });
  const bc = await bcrypt.hash(PW, 4);
  const cost31 = bc.replace(/^\$2[aby]\$04\$/, '$2b$31$');
  t.same(await verifyPassword(cost31, PW, STRICT), { ok: false, scheme: 'bcrypt', needsRehash: false });
});

t.test('malformed hashes of known schemes give ok:false and never throw', async (t) => {
  const goodScrypt = await hashScrypt(PW, SCRYPT_FAST);
  const malformed: Array<[string, HashScheme]> = [
    ['$argon2id$garbage', 'argon2id'],
    ['$argon2id$v=19$m=19456,t=2,p=1$AAAA$BBBB', 'argon2id'],
    ['$argon2i$', 'argon2'],
    ['$2b$garbage', 'bcrypt'],
    ['$2y$04$short', 'bcrypt'],
    ['$2a$', 'bcrypt'],
    ['$scrypt$', 'scrypt'],
    ['$scrypt$ln=x,r=8,p=1$AAAA$BBBB', 'scrypt'],
    ['$scrypt$ln=0,r=8,p=1$AAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAA', 'scrypt'],
    ['$scrypt$ln=10,r=08,p=1$AAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAA', 'scrypt'],
    ['$scrypt$ln=10,r=8,p=1$!!!!$AAAAAAAAAAAAAAAAAAAAAAAA', 'scrypt'],
    ['$scrypt$ln=10,r=8,p=1$AAAAA$AAAAAAAAAAAAAAAAAAAAAAAA', 'scrypt'], // 4k+1 base64 chars
    ['$scrypt$ln=10,r=8,p=1$AAAAAAAA$AAAA', 'scrypt'], // 3-byte key
    [`${goodScrypt}=`, 'scrypt'], // padding is not PHC
    [`${goodScrypt}$extra`, 'scrypt'],
  ];
  for (const [stored, scheme] of malformed) {
    const result = await verifyPassword(stored, PW, LENIENT);
    t.same(result, { ok: false, scheme, needsRehash: false }, stored);
  }
});

t.test('plaintext only with allowPlaintext', async (t) => {
  t.same(await verifyPassword(PW, PW, LENIENT), { ok: true, scheme: 'plaintext', needsRehash: true });
  t.same(await verifyPassword(PW, WRONG, LENIENT), { ok: false, scheme: 'plaintext', needsRehash: false });
  t.same(await verifyPassword(PW, PW.slice(0, 5), LENIENT), { ok: false, scheme: 'plaintext', needsRehash: false });
  t.same(await verifyPassword(PW, PW, STRICT), { ok: false, scheme: 'plaintext', needsRehash: false });
  // An unlisted bcrypt variant is not a recognised hash, so it is plaintext.
  t.same(await verifyPassword('$2x$04$abc', PW, STRICT), { ok: false, scheme: 'plaintext', needsRehash: false });
});

t.test('no stored hash', async (t) => {
  for (const stored of [null, undefined, '']) {
    for (const opts of [STRICT, LENIENT]) {
      t.same(await verifyPassword(stored, PW, opts), { ok: false, scheme: 'none', needsRehash: false });
      t.same(await verifyPassword(stored, '', opts), { ok: false, scheme: 'none', needsRehash: false });
    }
  }
});

t.test('oversized passwords are refused even when they match', async (t) => {
  const huge = 'p'.repeat(MAX_PASSWORD_BYTES + 1);
  const stored = await argon2.hash(huge, { ...ARGON2ID_DEFAULTS, algorithm: ARGON2ID });
  t.same(await verifyPassword(stored, huge, STRICT), { ok: false, scheme: 'argon2id', needsRehash: false });
  t.same(await verifyPassword(huge, huge, LENIENT), { ok: false, scheme: 'plaintext', needsRehash: false });
  // The cap is in UTF-8 bytes, not characters: 1366 × 3 bytes > 4096.
  const multibyte = '€'.repeat(1366);
  t.equal((await verifyPassword(multibyte, multibyte, LENIENT)).ok, false);
  const atLimit = 'p'.repeat(MAX_PASSWORD_BYTES);
  t.equal((await verifyPassword(atLimit, atLimit, LENIENT)).ok, true, 'exactly the limit is fine');
});

t.test('detectScheme', async (t) => {
  const table: Array<[string, HashScheme]> = [
    ['$argon2id$v=19$m=19456,t=2,p=1$x$y', 'argon2id'],
    ['$argon2i$v=19$m=19456,t=2,p=1$x$y', 'argon2'],
    ['$argon2d$v=19$m=19456,t=2,p=1$x$y', 'argon2'],
    ['$2a$10$x', 'bcrypt'],
    ['$2b$10$x', 'bcrypt'],
    ['$2y$10$x', 'bcrypt'],
    ['$2x$10$x', 'plaintext'],
    ['$scrypt$ln=14,r=8,p=1$x$y', 'scrypt'],
    ['hunter2', 'plaintext'],
    ['$argon2$', 'plaintext'],
    ['', 'plaintext'],
  ];
  for (const [stored, scheme] of table) t.equal(detectScheme(stored), scheme, stored);
});

t.test('needsRehash table (right password)', async (t) => {
  const table: Array<[string, string, boolean]> = [
    ['argon2id defaults', await hashPassword(PW), false],
    ['argon2id m=8192', await argon2.hash(PW, { ...ARGON2ID_DEFAULTS, algorithm: ARGON2ID, memoryCost: 8192 }), true],
    ['argon2i', await argon2.hash(PW, { ...ARGON2ID_DEFAULTS, algorithm: ARGON2I }), true],
    ['argon2d', await argon2.hash(PW, { ...ARGON2ID_DEFAULTS, algorithm: ARGON2D }), true],
    ['bcrypt', await bcrypt.hash(PW, 4), true],
    ['scrypt', await hashScrypt(PW, SCRYPT_FAST), true],
    ['plaintext', PW, true],
  ];
  for (const [name, stored, expected] of table) {
    const result = await verifyPassword(stored, PW, LENIENT);
    t.equal(result.ok, true, `${name} ok`);
    t.equal(result.needsRehash, expected, `${name} needsRehash`);
  }
});

t.test('verification runs off the event loop', async (t) => {
  // A synchronous hash inside an async function would resolve in the
  // microtask queue, before any setImmediate callback. The immediate running
  // first shows the event loop kept turning while the hash was computed.
  const cases: Array<[string, string | null]> = [
    ['argon2id', await hashPassword(PW)],
    ['bcrypt', await bcrypt.hash(PW, 4)],
    ['scrypt', await hashScrypt(PW, SCRYPT_FAST)],
    ['no stored hash (dummy verify)', null],
    ['malformed (dummy verify)', '$2b$garbage'],
    ['plaintext (dummy verify)', PW],
  ];
  for (const [name, stored] of cases) {
    const order: string[] = [];
    setImmediate(() => order.push('immediate'));
    const pending = verifyPassword(stored, PW, LENIENT);
    t.ok(pending instanceof Promise, `${name} returns a Promise`);
    await pending.then(() => order.push('verified'));
    t.same(order, ['immediate', 'verified'], name);
  }
});
