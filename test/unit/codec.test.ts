import t from 'tap';
import { decodeRecord, encodeRecord } from '../../src/session/codec.js';
import { hashSessionId, newSessionId, createCookieSigner } from '../../src/session/id.js';

t.test('a record survives encoding; malformed values decode to null', async (t) => {
  const record = { user: 'zoë', email: null, groups: ['a,b', 'c'], createdAt: 1_800_000_000_456, expiresAt: 1_800_043_200_456, touchedAt: 1_800_000_123_456 };
  t.same(decodeRecord(encodeRecord(record)), record);
  for (const bad of ['', 'not json', '{}', '[1,2,3]', '["u",null,"g",1,2,3]', '["u",null,[1],1,2,3]', '[1,null,[],1,2,3]']) {
    t.equal(decodeRecord(bad), null, JSON.stringify(bad));
  }
});

t.test('the user recheck fields survive encoding; a record without them stays short', async (t) => {
  const base = { user: 'ann', email: 'a@example.com', groups: [], createdAt: 1_800_000_000_000, expiresAt: 1_800_043_200_000, touchedAt: 1_800_000_000_000 };
  const checked = { ...base, checkedAt: 1_800_000_300_000, passwordFingerprint: 'AbCdEfGhIjKlMnOpQrStUv' };
  t.ok(encodeRecord(base).length < encodeRecord(checked).length - 22);
  t.same(decodeRecord(encodeRecord(checked)), checked);
  const noFingerprint = { ...base, checkedAt: 1_800_000_300_000 };
  t.same(decodeRecord(encodeRecord(noFingerprint)), noFingerprint);
  const noCheckedAt = { ...base, passwordFingerprint: 'AbCdEfGhIjKlMnOpQrStUv' };
  t.same(decodeRecord(encodeRecord(noCheckedAt)), noCheckedAt);
  // Rechecked at the sign-in: read back as unset, which the recheck counts from the sign-in alike.
  t.same(decodeRecord(encodeRecord({ ...noCheckedAt, checkedAt: base.createdAt })), noCheckedAt);
  for (const bad of ['["u",null,[],1,2,3,"x",null]', '["u",null,[],1,2,3,4,5]', '["u",null,[],1,2,3,4]']) {
    t.equal(decodeRecord(bad), null, bad);
  }
});

t.test('the client description survives encoding in a few bytes; older records still decode', async (t) => {
  const base = { user: 'ann', email: null, groups: [], createdAt: 1_800_000_000_000, expiresAt: 1_800_043_200_000, touchedAt: 1_800_000_000_000 };
  const withClient = { ...base, client: 'Firefox on Linux' };
  t.same(decodeRecord(encodeRecord(withClient)), withClient);
  t.ok(encodeRecord(withClient).length - encodeRecord(base).length <= 30, 'the description adds a few bytes');
  const checked = { ...withClient, checkedAt: 1_800_000_300_000, passwordFingerprint: 'AbCdEfGhIjKlMnOpQrStUv' };
  t.same(decodeRecord(encodeRecord(checked)), checked);
  // Written before the field existed: six and eight fields decode as before, without a client.
  t.same(decodeRecord('["ann",null,[],1800000000000,43200000,0]'), base);
  t.same(decodeRecord('["ann",null,[],1800000000000,43200000,0,300000,null]'), { ...base, checkedAt: 1_800_000_300_000 });
  for (const bad of ['["u",null,[],1,2,3,null,null,5]', '["u",null,[],1,2,3,"x",null,"c"]', '["u",null,[],1,2,3,null,7,"c"]']) {
    t.equal(decodeRecord(bad), null, bad);
  }
});

// What the previous version wrote (its JSON arrays, verbatim): a rolling upgrade signs nobody out.
t.test('records written by the previous version are still read, and can still be written', async (t) => {
  const plain = '["alice@corp","alice@example.com",["staff","vpn-users"],1800000000000,43200000,120000]';
  const rechecked = '["bob",null,[],1800000000000,43200000,0,300000,"AbCdEfGhIjKlMnOpQrStUv"]';
  const alice = { user: 'alice@corp', email: 'alice@example.com', groups: ['staff', 'vpn-users'], createdAt: 1_800_000_000_000, expiresAt: 1_800_043_200_000, touchedAt: 1_800_000_120_000 };
  const bob = { user: 'bob', email: null, groups: [], createdAt: 1_800_000_000_000, expiresAt: 1_800_043_200_000, touchedAt: 1_800_000_000_000, checkedAt: 1_800_000_300_000, passwordFingerprint: 'AbCdEfGhIjKlMnOpQrStUv' };
  t.same(decodeRecord(plain), alice);
  t.same(decodeRecord(rechecked), bob);
  // GATEWAY_SESSION_COMPACT_RECORDS=false: byte for byte what the previous release writes, and only
  // the six fields it reads (it refuses any other length), whatever the record holds.
  t.equal(encodeRecord(alice, { compact: false }), plain);
  t.equal(encodeRecord({ ...bob, client: 'Firefox on Linux' }, { compact: false }), '["bob",null,[],1800000000000,43200000,0]');
});

t.test('the compact form: shorter, exact, and JSON where it cannot hold a record', async (t) => {
  const record = { user: 'user123456@corp', email: 'user123456@example.com', groups: ['staff', 'engineering', 'vpn-users'], createdAt: 1_800_000_000_123, expiresAt: 1_800_043_200_123, touchedAt: 1_800_000_061_123, checkedAt: 1_800_000_005_123, passwordFingerprint: 'AbCdEfGhIjK' };
  const compact = encodeRecord(record);
  t.ok(compact.startsWith('4user123456@corp\x1f@example.com\x1f'), 'the e-mail from its @ on: it starts with the name\'s local part');
  // The JSON form of the same record (form 1, what records with these fields were before).
  const json = JSON.stringify([record.user, record.email, record.groups, record.createdAt, record.expiresAt - record.createdAt, record.touchedAt - record.createdAt, 0, record.passwordFingerprint]);
  t.ok(compact.length <= json.length - 20, `${compact.length} bytes against ${json.length}`);
  t.same(decodeRecord(compact), record);
  // The client description is the ninth field, the sign-in methods (amr) the tenth; fields a later version appends after them are
  // ignored; empty optional fields are absent.
  t.same(decodeRecord(`${compact}\x1fFirefox on Linux\x1f\x1fa later field`), { ...record, client: 'Firefox on Linux' });
  const { checkedAt: _c, passwordFingerprint: _f, ...plain } = record;
  t.same(decodeRecord(`${encodeRecord(plain)}\x1f\x1f\x1fcurl`), { ...plain, client: 'curl' });
  t.same(decodeRecord(encodeRecord({ ...plain, client: 'curl' })), { ...plain, client: 'curl' });
  t.ok(encodeRecord({ ...plain, client: 'curl' }).startsWith('4'), 'a record with a client is still compact');
  // Values the compact form cannot hold round-trip through JSON.
  for (const odd of [
    { ...plain, user: 'a\x1fb' },
    { ...plain, groups: ['x\x1ey'] },
    { ...plain, groups: [''] },
    { ...plain, email: '' },
    { ...plain, user: '', groups: [] },
    { ...plain, touchedAt: plain.createdAt + 0.5 },
    { ...plain, email: '@example.com' },
  ]) {
    t.same(decodeRecord(encodeRecord(odd)), odd, JSON.stringify(odd));
  }
  for (const bad of ['3', '3u\x1f\x1f\x1f1\x1f2', '3u\x1f\x1f\x1f1\x1f\x1fZ', '3u\x1f\x1f\x1f1\x1f2\x1f3\x1f!', '3u\x1f\x1f\x1f1.5\x1f2\x1f3', '4\x1fu\x1f\x1f\x1f1\x1f2\x1f3']) {
    t.equal(decodeRecord(bad), null, JSON.stringify(bad));
  }
});

t.test('form 4 stores an e-mail that repeats the user name\'s local part from its @ on, and reads it back whole', async (t) => {
  const base = { groups: [], createdAt: 1_800_000_000_000, expiresAt: 1_800_043_200_000, touchedAt: 1_800_000_000_000 };
  const cases: Array<[user: string, email: string, stored: string]> = [
    ['jdoe', 'jdoe@example.com', '@example.com'],
    ['jdoe@corp', 'jdoe@example.com', '@example.com'],
    ['jdoe@example.com', 'jdoe@example.com', '@example.com'],
    ['JDoe', 'jdoe@example.com', 'jdoe@example.com'],
    ['jdoe', 'jdoe.smith@example.com', 'jdoe.smith@example.com'],
    ['jd', 'jdoe@example.com', 'jdoe@example.com'],
    ['@corp', 'x@example.com', 'x@example.com'],
    ['zoë', 'zoë@example.com', '@example.com'],
  ];
  for (const [user, email, stored] of cases) {
    const record = { ...base, user, email };
    const encoded = encodeRecord(record);
    t.equal(encoded.split('\x1f')[1], stored, `${user} with ${email}`);
    t.same(decodeRecord(encoded), record, `${user} with ${email} reads back`);
  }
});

// Form 3, the previous release's (verbatim): the e-mail is whole, even one starting with `@`.
t.test('records of form 3 are still read, the e-mail as written', async (t) => {
  const written = '3user123456@corp\x1fuser123456@example.com\x1fstaff\x1fmywpiwzf\x1fjcw\x1f1p\x1f5\x1fAbCdEfGhIjK';
  t.same(decodeRecord(written), { user: 'user123456@corp', email: 'user123456@example.com', groups: ['staff'], createdAt: 1_800_000_000_123, expiresAt: 1_800_000_000_123 + 25_088_000, touchedAt: 1_800_000_061_123, checkedAt: 1_800_000_005_123, passwordFingerprint: 'AbCdEfGhIjK' });
  t.equal(decodeRecord('3ann\x1f@example.com\x1f\x1fmywpiwzf\x1fjcw\x1f')?.email, '@example.com');
});

// Form 2, an earlier release's compact form (verbatim): every time in milliseconds, an empty
// recheck time unset. A rolling upgrade signs nobody out.
t.test('records of the previous compact form are still read, to the millisecond', async (t) => {
  const written = '2\x1fuser123456@corp\x1fuser123456@example.com\x1fstaff\x1eengineering\x1evpn-users\x1fmywpiwzf\x1fppxc0\x1f1bbp\x1f0\x1fAbCdEfGhIjKlMnOpQrStUv\x1fcurl';
  t.same(decodeRecord(written), {
    user: 'user123456@corp',
    email: 'user123456@example.com',
    groups: ['staff', 'engineering', 'vpn-users'],
    createdAt: 1_800_000_000_123,
    expiresAt: 1_800_043_200_123,
    touchedAt: 1_800_000_061_456,
    checkedAt: 1_800_000_000_123,
    passwordFingerprint: 'AbCdEfGhIjKlMnOpQrStUv',
    client: 'curl',
  });
  t.same(decodeRecord('2\x1fann\x1f\x1f\x1fmywpiwzf\x1fppxc0\x1f0\x1f\x1f\x1fcurl'), { user: 'ann', email: null, groups: [], createdAt: 1_800_000_000_123, expiresAt: 1_800_043_200_123, touchedAt: 1_800_000_000_123, client: 'curl' }, 'an empty recheck time is unset');
  for (const bad of ['2', '2\x1fu\x1f\x1f\x1f1\x1f2', '2\x1fu\x1f\x1f\x1f1\x1f2\x1f', '2\x1fu\x1f\x1f\x1f1\x1f2\x1fZ', '2\x1fu\x1f\x1f\x1f1\x1f2\x1f3\x1f!', '2\x1fu\x1f\x1f\x1f1.5\x1f2\x1f3']) {
    t.equal(decodeRecord(bad), null, JSON.stringify(bad));
  }
});

// Form 3 keeps the sign-in time to the millisecond and the rest in whole seconds after it.
t.test('later times are whole seconds, rounded down: a deadline read back is never later', async (t) => {
  const record = { user: 'ann', email: null, groups: [], createdAt: 1_800_000_000_123, expiresAt: 1_800_000_001_999, touchedAt: 1_800_000_000_999, checkedAt: 1_800_000_002_122, passwordFingerprint: 'AbCdEfGhIjK' };
  const read = decodeRecord(encodeRecord(record));
  t.same(read, { ...record, expiresAt: 1_800_000_001_123, touchedAt: 1_800_000_000_123, checkedAt: 1_800_000_001_123 });
  // A session touched and rechecked eleven hours after its sign-in is as short as a new one.
  const fresh = { user: 'u', email: null, groups: [], createdAt: 1_800_000_000_000, expiresAt: 1_800_043_200_000, touchedAt: 1_800_000_000_000, checkedAt: 1_800_000_000_000, passwordFingerprint: 'AbCdEfGhIjK' };
  const late = { ...fresh, touchedAt: fresh.createdAt + 39_600_000, checkedAt: fresh.createdAt + 39_000_000 };
  t.equal(encodeRecord(fresh).length, 31, 'a fresh record of a 12 h lifetime: 30 bytes and the user (u)');
  t.equal(encodeRecord(late).length, encodeRecord(fresh).length + 6);
  t.same(decodeRecord(encodeRecord(late)), late);
});

t.test('ids: 256 random bits; store keys are a hash; cookies are signed', async (t) => {
  const id = newSessionId();
  t.match(id, /^[A-Za-z0-9_-]{43}$/);
  t.equal(Buffer.from(id, 'base64url').length, 32);
  t.not(newSessionId(), id);
  const hash = hashSessionId(id);
  t.match(hash, /^[A-Za-z0-9_-]{22}$/);
  t.notOk(id.includes(hash) || hash.includes(id.slice(0, 10)));
  const signer = createCookieSigner(['s'.repeat(32)]);
  const cookie = signer.sign(id);
  t.same(signer.unsign(cookie), { id, signedWithOldSecret: false });
  t.equal(signer.unsign(`${id}.${'A'.repeat(43)}`), null, 'a forged signature');
  t.equal(signer.unsign(signer.sign('short')), null, 'a signed value that is not a session id');
  t.equal(signer.unsign('x'.repeat(5_000)), null, 'an oversized value');
});
