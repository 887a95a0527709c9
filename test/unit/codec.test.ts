import t from 'tap';
import { decodeRecord, encodeRecord } from '../../src/session/codec.js';
import { hashSessionId, newSessionId, createCookieSigner } from '../../src/session/id.js';

t.test('a record survives encoding; malformed values decode to null', async (t) => {
  const record = { user: 'zoë', email: null, groups: ['a,b', 'c'], createdAt: 1_800_000_000_000, expiresAt: 1_800_043_200_000, touchedAt: 1_800_000_123_456 };
  t.same(decodeRecord(encodeRecord(record)), record);
  for (const bad of ['', 'not json', '{}', '[1,2,3]', '["u",null,"g",1,2,3]', '["u",null,[1],1,2,3]', '[1,null,[],1,2,3]']) {
    t.equal(decodeRecord(bad), null, JSON.stringify(bad));
  }
});

t.test('the user recheck fields survive encoding; a record without them keeps the six-field form', async (t) => {
  const base = { user: 'ann', email: 'a@example.com', groups: [], createdAt: 1_800_000_000_000, expiresAt: 1_800_043_200_000, touchedAt: 1_800_000_000_000 };
  t.equal((JSON.parse(encodeRecord(base)) as unknown[]).length, 6);
  const checked = { ...base, checkedAt: 1_800_000_300_000, passwordFingerprint: 'AbCdEfGhIjKlMnOpQrStUv' };
  t.same(decodeRecord(encodeRecord(checked)), checked);
  const noFingerprint = { ...base, checkedAt: 1_800_000_300_000 };
  t.same(decodeRecord(encodeRecord(noFingerprint)), noFingerprint);
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
