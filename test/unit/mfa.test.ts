// The second factor's parts on their own (SPEC section 9): TOTP with one step of drift, encryption
// at rest with key rotation, recovery codes, the QR code as SVG, the rules of the service (replay,
// single use, which step a mode asks for) over the in-memory store, the session record's amr, and
// the configuration's one-line problems.
import t from 'tap';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { createMfaSecrets, looksLikeRecoveryCode, newRecoveryCodes, normaliseRecoveryCode } from '../../src/mfa/secrets.js';
import { createMfaService } from '../../src/mfa/service.js';
import { createMemoryMfaStore } from '../../src/mfa/store.js';
import { createMemoryPasskeyStore } from '../../src/mfa/webauthn-store.js';
import { groupedKey, matchTotp, newTotpSecret, otpauthUri, timeStep, totpCode } from '../../src/mfa/totp.js';
import { qrSvg } from '../../src/mfa/qr.js';
import { decodeRecord, encodeRecord } from '../../src/session/codec.js';

const KEY_A = 'key-a-0123456789-abcdefghijklmnopqrstuvwxyz';
const KEY_B = 'key-b-0123456789-abcdefghijklmnopqrstuvwxyz';

t.test('TOTP: RFC 6238 test vector, one step of drift, nothing beyond', async (t) => {
  // RFC 6238 appendix B, SHA-1 seed "12345678901234567890" (base32 below), T = 59 s → 94287082 (8 digits): 287082.
  const rfcSecret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
  t.equal(totpCode(rfcSecret, 59_000), '287082');
  t.equal(totpCode(rfcSecret, 1_111_111_109_000), '081804');
  const secret = newTotpSecret();
  t.match(secret, /^[A-Z2-7]{32}$/);
  const now = 1_800_000_015_000;
  const step = timeStep(now);
  t.equal(matchTotp(secret, totpCode(secret, now), now), step);
  t.equal(matchTotp(secret, totpCode(secret, now - 30_000), now), step - 1, 'one step behind');
  t.equal(matchTotp(secret, totpCode(secret, now + 30_000), now), step + 1, 'one step ahead');
  t.equal(matchTotp(secret, totpCode(secret, now + 60_000), now), null, 'two steps ahead: refused');
  t.equal(matchTotp(secret, totpCode(secret, now - 60_000), now), null, 'two steps behind: refused');
  t.equal(matchTotp(secret, 'abcdef', now), null);
  t.equal(matchTotp(secret, '1234567', now), null);
  t.equal(groupedKey('ABCDEFGHIJ'), 'ABCD EFGH IJ');
  const uri = new URL(otpauthUri(secret, 'zoë', 'app.example.com'));
  t.equal(uri.protocol, 'otpauth:');
  t.same(Object.fromEntries(uri.searchParams), { issuer: 'app.example.com', secret, algorithm: 'SHA1', digits: '6', period: '30' });
});

t.test('secrets at rest: AES-256-GCM bound to the user; rotation; recovery hashes', async (t) => {
  const old = createMfaSecrets([KEY_A]);
  const stored = old.encrypt('JBSWY3DPEHPK3PXP', 'alice');
  t.notMatch(stored, /JBSWY3DP/);
  t.equal(old.decrypt(stored, 'alice'), 'JBSWY3DPEHPK3PXP');
  t.equal(old.decrypt(stored, 'mallory'), null, 'a row copied to another user does not decrypt');
  const parts = stored.split('.');
  const flipped = [...parts.slice(0, 3), `${parts[3]?.startsWith('A') ? 'B' : 'A'}${parts[3]?.slice(1)}`, parts[4]].join('.');
  t.equal(old.decrypt(flipped, 'alice'), null, 'tampered ciphertext is refused');
  t.not(old.encrypt('same', 'alice'), old.encrypt('same', 'alice'), 'a fresh IV each time');

  const rotated = createMfaSecrets([KEY_B, KEY_A]);
  t.equal(rotated.decrypt(stored, 'alice'), 'JBSWY3DPEHPK3PXP', 'an old key still decrypts');
  t.ok(rotated.isStale(stored));
  t.notOk(rotated.isStale(rotated.encrypt('x', 'alice')));
  t.equal(createMfaSecrets([KEY_B]).decrypt(stored, 'alice'), null, 'without its key: null, not a throw');

  const codes = newRecoveryCodes();
  t.equal(codes.length, 10);
  for (const code of codes) t.ok(looksLikeRecoveryCode(code), code);
  t.equal(normaliseRecoveryCode(' AbCd-EFGH jkmn '), 'abcdefghjkmn');
  const code = codes[0] ?? '';
  t.ok(rotated.recoveryHashes(code).includes(old.recoveryHash(code)), 'a code hashed before the rotation still matches');
  t.equal(old.recoveryHash(code.toUpperCase()), old.recoveryHash(code), 'case does not matter');
  t.notMatch(old.recoveryHash(code), normaliseRecoveryCode(code));
});

t.test('the QR code is one inline SVG path, dark on white', async (t) => {
  const svg = qrSvg('otpauth://totp/x:y?secret=ABC', 'QR <code>');
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" class="qr" role="img" aria-label="QR &lt;code&gt;" width="232" height="232" viewBox="0 0 (\d+) \1"/);
  t.match(svg, /<path fill="#000000" d="(M\d+ \d+h1v1h-1z)+"\/><\/svg>$/);
  t.notMatch(svg, /style=|<script|href/, 'no style attribute, script or link');
});

t.test('service: a passkey is a factor; its first one brings recovery codes; TOTP can join it; reset removes both', async (t) => {
  let now = 1_800_000_000_000;
  const store = createMemoryMfaStore();
  const passkeys = createMemoryPasskeyStore();
  const mfa = createMfaService({ mode: 'optional', store, passkeys, keys: [KEY_A], now: () => now });
  t.ok(await passkeys.add({ id: 'cred-1', user: 'pat', publicKey: new Uint8Array([1, 2, 3]), counter: 0, transports: ['usb'], name: 'Key' }));
  t.notOk(await passkeys.add({ id: 'cred-1', user: 'pat', publicKey: new Uint8Array([4]), counter: 0, transports: [], name: 'Again' }), 'a credential id is stored once');
  t.equal(await mfa.nextStep('pat'), 'verify', 'a passkey alone: the second step');
  t.equal(await createMfaService({ mode: 'required', store, passkeys, keys: [KEY_A] }).nextStep('pat'), 'verify', 'and required is satisfied');
  const codes = await mfa.recoveryCodesForPasskey('pat');
  t.equal(codes?.length, 10, 'the first factor: ten recovery codes');
  t.equal(await mfa.recoveryCodesForPasskey('pat'), null, 'a second passkey: the codes stay');
  t.match(await mfa.status('pat'), { totp: 'none', passkeys: 1, recoveryCodesLeft: 10 });
  t.same(await mfa.verify('pat', codes?.[0] ?? ''), { ok: true, method: 'recovery' }, 'a recovery code without TOTP');
  t.same(await mfa.verify('pat', '123456'), { ok: false, method: 'totp', reason: 'not_enrolled' });

  // The counter: forward only; an authenticator without one (0 and 0) is accepted.
  t.ok(await passkeys.use('pat', 'cred-1', 0), 'no counter kept: accepted');
  t.ok(await passkeys.use('pat', 'cred-1', 5));
  t.notOk(await passkeys.use('pat', 'cred-1', 5), 'the same counter again: refused');
  t.notOk(await passkeys.use('pat', 'cred-1', 3), 'backwards: refused');
  t.notOk(await passkeys.use('sue', 'cred-1', 9), "another user's credential: refused");
  t.equal(await passkeys.find('sue', 'cred-1'), null);

  // TOTP beside the passkey: the row that held only recovery codes gets a secret.
  const enrolment = await mfa.enrolment('pat', 'example.com');
  if (enrolment.enrolled) throw new Error('unexpected');
  const confirmed = await mfa.confirm('pat', totpCode(enrolment.secret, now));
  t.ok(confirmed.ok);
  now += 30_000;
  t.match(await mfa.status('pat'), { totp: 'enrolled', passkeys: 1, recoveryCodesLeft: 10 });
  t.equal(await mfa.reset('pat'), true);
  t.match(await mfa.status('pat'), { totp: 'none', passkeys: 0, recoveryCodesLeft: 0 });
  t.equal(await mfa.nextStep('pat'), null);
});

t.test('service: replay, single-use recovery codes, the step each mode asks for', async (t) => {
  let now = 1_800_000_000_000;
  const store = createMemoryMfaStore();
  const mfa = createMfaService({ mode: 'optional', store, passkeys: createMemoryPasskeyStore(), keys: [KEY_A], now: () => now });
  t.equal(await mfa.nextStep('alice'), null, 'optional, no factor: no second step');
  t.equal(await createMfaService({ mode: 'required', store, passkeys: createMemoryPasskeyStore(), keys: [KEY_A] }).nextStep('alice'), 'setup', 'required, no factor: enrol');
  const enrolment = await mfa.enrolment('alice', 'example.com');
  if (enrolment.enrolled) throw new Error('unexpected');
  const again = await mfa.enrolment('alice', 'example.com');
  t.same(again, enrolment, 'the same secret until it is confirmed');
  t.same(await mfa.confirm('alice', '000000'), { ok: false, reason: 'wrong' });
  const confirmed = await mfa.confirm('alice', totpCode(enrolment.secret, now));
  if (!confirmed.ok) throw new Error(`confirm failed: ${confirmed.reason}`);
  t.same(await mfa.enrolment('alice', 'example.com'), { enrolled: true });
  t.same(await mfa.confirm('alice', totpCode(enrolment.secret, now)), { ok: false, reason: 'enrolled' }, 'no second enrolment over the first');
  t.equal(await mfa.nextStep('alice'), 'verify');

  t.same(await mfa.verify('alice', totpCode(enrolment.secret, now)), { ok: false, method: 'totp', reason: 'replayed' }, 'the enrolment code cannot sign in again');
  now += 30_000;
  const code = totpCode(enrolment.secret, now);
  t.same(await mfa.verify('alice', code), { ok: true, method: 'totp' });
  t.same(await mfa.verify('alice', code), { ok: false, method: 'totp', reason: 'replayed' }, 'the same code twice: refused');
  t.same(await mfa.verify('alice', totpCode(enrolment.secret, now - 30_000)), { ok: false, method: 'totp', reason: 'replayed' }, 'an earlier step: refused');
  t.same(await mfa.verify('alice', '12 34 56'), { ok: false, method: 'totp', reason: 'wrong' });

  const recovery = confirmed.recoveryCodes[0] ?? '';
  t.same(await mfa.verify('alice', recovery), { ok: true, method: 'recovery' });
  t.same(await mfa.verify('alice', recovery), { ok: false, method: 'recovery', reason: 'wrong' }, 'a recovery code works once');
  t.match(await mfa.status('alice'), { totp: 'enrolled', recoveryCodesLeft: 9 });
  t.same(await mfa.verify('bob', '123456'), { ok: false, method: 'totp', reason: 'not_enrolled' });

  t.equal(await mfa.reset('alice'), true);
  t.match(await mfa.status('alice'), { totp: 'none', recoveryCodesLeft: 0 });
  t.same(await mfa.verify('alice', confirmed.recoveryCodes[1] ?? ''), { ok: false, method: 'recovery', reason: 'wrong' }, 'reset removed the recovery codes');
  t.equal(await createMfaService({ mode: 'off', store, passkeys: createMemoryPasskeyStore(), keys: [KEY_A] }).nextStep('alice'), null);
});

t.test('the session record keeps amr; a password session is stored as before', async (t) => {
  const base = { user: 'alice', email: null, groups: [], createdAt: 1_800_000_000_000, expiresAt: 1_800_043_200_000, touchedAt: 1_800_000_000_000 };
  t.equal(encodeRecord(base, { compact: false }), '["alice",null,[],1800000000000,43200000,0]', 'the previous release\'s form is unchanged');
  t.same(decodeRecord(encodeRecord(base)), base);
  t.equal(encodeRecord({ ...base, amr: ['pwd'] }), encodeRecord(base));
  // After the user recheck's two fields (a sign-in time stands in when they are not set).
  t.same(decodeRecord(encodeRecord({ ...base, amr: ['pwd', 'otp'] })), { ...base, amr: ['pwd', 'otp'] });
  const rechecked = { ...base, checkedAt: base.createdAt + 5_000, passwordFingerprint: 'fp', client: 'Firefox on Linux', amr: ['pwd', 'otp'] };
  t.same(decodeRecord(encodeRecord(rechecked)), rechecked);
  const { amr: _amr, ...passwordOnly } = rechecked;
  t.same(decodeRecord(encodeRecord({ ...rechecked, amr: ['pwd'] })), passwordOnly, 'a password session keeps the recheck form');
  t.equal(decodeRecord('["alice",null,[],1,2,3,0,null,null,[1]]'), null, 'a malformed amr is no session');
});

t.test('configuration: GATEWAY_MFA and GATEWAY_MFA_ENCRYPTION_KEY', async (t) => {
  const problems = (env: Record<string, string>) => {
    try {
      loadConfig(env);
      return [];
    } catch (err) {
      return (err as ConfigError).problems;
    }
  };
  t.match(loadConfig({}), { mfaMode: 'off', mfaKeys: [] });
  t.match(loadConfig({ GATEWAY_MFA: 'required', GATEWAY_MFA_ENCRYPTION_KEY: `${KEY_B}, ${KEY_A}` }), { mfaMode: 'required', mfaKeys: [KEY_B, KEY_A] });
  t.match(problems({ GATEWAY_MFA: 'optional' }), [/^GATEWAY_MFA_ENCRYPTION_KEY is required when GATEWAY_MFA=optional/]);
  t.match(problems({ GATEWAY_MFA: 'yes' }), [/^GATEWAY_MFA must be one of off, optional, required/]);
  t.match(problems({ GATEWAY_MFA: 'optional', GATEWAY_MFA_ENCRYPTION_KEY: 'short' }), [/^GATEWAY_MFA_ENCRYPTION_KEY: key #1 is shorter than 32 characters$/]);
  t.match(problems({ GATEWAY_MFA: 'optional', GATEWAY_MFA_ENCRYPTION_KEY: KEY_A, GATEWAY_SESSION_SECRET: KEY_A }), [/^GATEWAY_MFA_ENCRYPTION_KEY: key #1 is also a GATEWAY_SESSION_SECRET/]);
  t.match(problems({ GATEWAY_MFA: 'optional', GATEWAY_MFA_ENCRYPTION_KEY: KEY_A, GATEWAY_MFA_ENCRYPTION_KEY_FILE: '/nonexistent' }), [/^GATEWAY_MFA_ENCRYPTION_KEY and GATEWAY_MFA_ENCRYPTION_KEY_FILE are both set/]);
});

t.test('the signed identity token carries amr', async (t) => {
  const { createIdentityTokens } = await import('../../src/identity/signed-identity.js');
  const tokens = createIdentityTokens({ alg: 'HS256', keys: [], hmacSecret: 'h'.repeat(40), issuer: 'gw', audience: 'app', lifetimeMs: 60_000 });
  const claims = (token: string) => JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as { amr: string[] };
  const identity = { user: 'alice', email: null, groups: [] };
  t.same(claims(tokens.tokenFor({ idHash: 'a', record: identity })).amr, ['pwd'], 'a password session');
  t.same(claims(tokens.tokenFor({ idHash: 'b', record: { ...identity, amr: ['pwd', 'otp'] } })).amr, ['pwd', 'otp'], 'after the second step');
});

t.test('after a key rotation, a sign-in moves the secret to the new key', async (t) => {
  let now = 1_800_000_000_000;
  const store = createMemoryMfaStore();
  const before = createMfaService({ mode: 'optional', store, passkeys: createMemoryPasskeyStore(), keys: [KEY_A], now: () => now });
  const enrolment = await before.enrolment('alice', 'example.com');
  if (enrolment.enrolled) throw new Error('unexpected');
  t.ok((await before.confirm('alice', totpCode(enrolment.secret, now))).ok);
  const rotated = createMfaService({ mode: 'optional', store, passkeys: createMemoryPasskeyStore(), keys: [KEY_B, KEY_A], now: () => now });
  now += 30_000;
  t.same(await rotated.verify('alice', totpCode(enrolment.secret, now)), { ok: true, method: 'totp' }, 'the old key still opens it');
  const onlyNew = createMfaService({ mode: 'optional', store, passkeys: createMemoryPasskeyStore(), keys: [KEY_B], now: () => now });
  now += 30_000;
  t.same(await onlyNew.verify('alice', totpCode(enrolment.secret, now)), { ok: true, method: 'totp' }, 'and now it is under the new key alone');
});

t.test('step-up rules: parsed, combined, refused without GATEWAY_MFA, decided by the gate', async (t) => {
  const { parseAccessRules, createAccessRules } = await import('../../src/access/rules.js');
  const { createGate } = await import('../../src/access/gate.js');
  const parsed = parseAccessRules('[{ "path": "/admin", "policy": "authenticated", "mfa": true }, { "path": "/ops", "policy": { "groups": ["ops"] } }]');
  t.same(parsed.problems, []);
  t.equal(parsed.rules[0]?.mfa, true);
  t.equal(parsed.rules[1]?.mfa, undefined, 'absent: no second factor needed');
  t.same(parseAccessRules('[{ "path": "/a", "policy": "authenticated", "mfa": "yes" }]').problems, ['rule #1: `mfa` must be true or false']);
  t.same(parseAccessRules('[{ "path": "/a", "policy": "public", "mfa": true }]').problems, ['rule #1: `mfa` needs a rule that signs in (authenticated or groups), not public']);
  // Two readings of a path (path parameters): if either rule asks for a second factor, so does the request.
  const rules = createAccessRules([], parsed.rules);
  t.equal(rules.match('/admin/x', 'GET').mfa, true);
  t.equal(rules.match('/admin;x=1/y', 'GET').mfa, true, 'the Servlet reading of the path is covered');
  t.equal(rules.match('/other', 'GET').mfa, false);

  const dir = (await import('node:fs')).mkdtempSync(`${(await import('node:os')).tmpdir()}/sgw-mfa-rules-`);
  const file = `${dir}/rules.json`;
  (await import('node:fs')).writeFileSync(file, JSON.stringify([{ path: '/admin', policy: 'authenticated', mfa: true }]));
  t.teardown(() => (import('node:fs').then((fs) => fs.rmSync(dir, { recursive: true, force: true }))));
  try {
    loadConfig({ GATEWAY_ACCESS_RULES: file });
    t.fail('expected a configuration error');
  } catch (err) {
    t.match((err as ConfigError).problems, [/^GATEWAY_ACCESS_RULES: a rule with "mfa": true needs GATEWAY_MFA=optional or required/]);
  }

  const principal = (secondFactor: boolean) => ({ kind: 'session', idHash: 'h', record: { user: 'ann', email: null, groups: [] }, session: null, ambient: true, secondFactor });
  let who = principal(false);
  const gate = createGate({
    publicPaths: [],
    rules: parsed.rules,
    logoutPaths: [],
    authenticators: [{ kind: 'session', presented: () => true, authenticate: async () => ({ outcome: 'valid', principal: who }) }],
  });
  const credentials = { cookies: {}, headers: {} };
  t.match(await gate.decide({ path: '/admin', method: 'GET', credentials }), { kind: 'second-factor', principal: { secondFactor: false } }, 'password only: step-up');
  t.match(await gate.decide({ path: '/other', method: 'GET', credentials }), { kind: 'allow' }, 'elsewhere: allowed');
  t.match(await gate.decide({ path: null, method: 'GET', credentials }), { kind: 'undecidable' }, 'an unknown path cannot be allowed when a rule asks for a second factor');
  who = principal(true);
  t.match(await gate.decide({ path: '/admin', method: 'GET', credentials }), { kind: 'allow' }, 'with a second factor: allowed');
});
