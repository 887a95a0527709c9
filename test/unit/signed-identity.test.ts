// The identity token as an app sees it: verified with jose (an independent library; the gateway
// signs with node:crypto) against the published JWKS or the shared secret, claims, kid as the
// RFC 7638 thumbprint, caching until half of the lifetime is left, and key parsing.
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { calculateJwkThumbprint, createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import t from 'tap';
import { exportPrivateKeyPem, generateSigningKey, parseSigningKey, type SigningKey } from '../../src/identity/keys.js';
import { createIdentityTokens, type IdentityTokenOptions } from '../../src/identity/signed-identity.js';

const T0 = Date.UTC(2030, 0, 1, 12, 0, 0);
const alice = { idHash: 'hash-a', record: { user: 'alice', email: 'alice@example.com', groups: ['staff', 'ops'] } };
const zoe = { idHash: 'hash-z', record: { user: 'zoë', email: null, groups: ['r,d', 'café'] } };

function tokens(overrides: Partial<IdentityTokenOptions> & { clock?: { now: number } } = {}) {
  const clock = overrides.clock ?? { now: T0 };
  const issuer = createIdentityTokens({
    alg: 'EdDSA',
    keys: [generateSigningKey('EdDSA')],
    hmacSecret: null,
    issuer: 'https://app.example.com',
    audience: 'http://127.0.0.1:8080',
    lifetimeMs: 60_000,
    now: () => clock.now,
    ...overrides,
  });
  return { issuer, clock };
}

const verifyOptions = { issuer: 'https://app.example.com', audience: 'http://127.0.0.1:8080', currentDate: new Date(T0) };

t.test('EdDSA: jose verifies the token against the published JWKS; claims and header', async (t) => {
  const { issuer } = tokens();
  t.equal(issuer.alg, 'EdDSA');
  const jwks = JSON.parse(issuer.jwksJson ?? 'null') as JSONWebKeySet;
  const token = issuer.tokenFor(alice);
  const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks), verifyOptions);
  t.same(protectedHeader, { alg: 'EdDSA', typ: 'JWT', kid: jwks.keys[0]?.kid });
  t.match(payload, { iss: 'https://app.example.com', aud: 'http://127.0.0.1:8080', sub: 'alice', email: 'alice@example.com', groups: ['staff', 'ops'] });
  t.equal(payload.iat, T0 / 1_000);
  t.equal(payload.exp, T0 / 1_000 + 60);
  t.match(payload.jti, /^[A-Za-z0-9_-]{22}$/, '128 random bits');
});

t.test('the JWKS holds public keys only, kid = RFC 7638 thumbprint (computed by jose)', async (t) => {
  const keys = [generateSigningKey('EdDSA'), generateSigningKey('ES256')];
  const { issuer } = tokens({ keys });
  const jwks = JSON.parse(issuer.jwksJson ?? 'null') as JSONWebKeySet;
  t.equal(jwks.keys.length, 2, 'every configured key is published');
  for (const jwk of jwks.keys) {
    t.notOk('d' in jwk, 'no private part');
    t.equal(jwk.kid, await calculateJwkThumbprint(jwk), `${jwk.alg}: kid is the thumbprint`);
    t.equal(jwk.use, 'sig');
  }
  t.match(jwks.keys, [{ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA' }, { kty: 'EC', crv: 'P-256', alg: 'ES256' }]);
});

t.test('ES256: raw r||s signatures that jose accepts', async (t) => {
  const { issuer } = tokens({ alg: 'ES256', keys: [generateSigningKey('ES256')] });
  const jwks = JSON.parse(issuer.jwksJson ?? 'null') as JSONWebKeySet;
  for (let i = 0; i < 5; i++) {
    // OpenSSL's default is DER (70-72 bytes); JWS wants the 64-byte r||s. ECDSA signatures are
    // randomised, so check a few.
    const { protectedHeader } = await jwtVerify(issuer.tokenFor({ ...alice, idHash: `h${i}` }), createLocalJWKSet(jwks), verifyOptions);
    t.equal(protectedHeader.alg, 'ES256');
  }
});

t.test('HS256: jose verifies with the shared secret, and so does HMAC-SHA256 by hand', async (t) => {
  const secret = 'shared-secret-0123456789-abcdefghijklmnop';
  const { issuer } = tokens({ alg: 'HS256', keys: [], hmacSecret: secret });
  t.equal(issuer.jwksJson, null, 'nothing to publish');
  const token = issuer.tokenFor(alice);
  const { payload, protectedHeader } = await jwtVerify(token, new TextEncoder().encode(secret), verifyOptions);
  t.same(protectedHeader, { alg: 'HS256', typ: 'JWT' });
  t.equal(payload.sub, 'alice');
  const [header, body, signature] = token.split('.');
  t.equal(createHmac('sha256', secret).update(`${header}.${body}`).digest('base64url'), signature, 'a legacy app can check it in one line');
  await t.rejects(jwtVerify(token, new TextEncoder().encode(`${secret}x`), verifyOptions), 'another secret does not verify');
});

t.test('Unicode identity travels as JSON, email absent when the user has none', async (t) => {
  const { issuer } = tokens();
  const jwks = createLocalJWKSet(JSON.parse(issuer.jwksJson ?? 'null') as JSONWebKeySet);
  const { payload } = await jwtVerify(issuer.tokenFor(zoe), jwks, verifyOptions);
  t.equal(payload.sub, 'zoë');
  t.same(payload.groups, ['r,d', 'café']);
  t.notOk('email' in payload);
});

t.test('cached per session until less than half of the lifetime is left, then re-signed', async (t) => {
  const { issuer, clock } = tokens();
  const first = issuer.tokenFor(alice);
  t.not(issuer.tokenFor(zoe), first, 'another session has its own token');
  clock.now = T0 + 29_999;
  t.equal(issuer.tokenFor(alice), first, 'the same token (and jti) while more than half is left');
  clock.now = T0 + 30_000;
  const second = issuer.tokenFor(alice);
  t.not(second, first, 're-signed at half-life');
  const jwks = createLocalJWKSet(JSON.parse(issuer.jwksJson ?? 'null') as JSONWebKeySet);
  const { payload } = await jwtVerify(second, jwks, { ...verifyOptions, currentDate: new Date(clock.now) });
  t.equal(payload.iat, (T0 + 30_000) / 1_000);
  t.not(payload.jti, (await jwtVerify(first, jwks, verifyOptions)).payload.jti, 'a new jti');
});

t.test('a session whose e-mail or groups changed (user recheck) gets a new token at once', async (t) => {
  const { issuer } = tokens();
  const first = issuer.tokenFor(alice);
  t.equal(issuer.tokenFor({ ...alice, record: { ...alice.record, groups: ['staff', 'ops'] } }), first, 'same identity, same token');
  const regrouped = issuer.tokenFor({ ...alice, record: { ...alice.record, groups: ['staff'] } });
  t.not(regrouped, first);
  t.same(decodePayload(regrouped).groups, ['staff']);
  const remailed = issuer.tokenFor({ ...alice, record: { ...alice.record, groups: ['staff'], email: 'alice@new.example' } });
  t.equal(decodePayload(remailed).email, 'alice@new.example');
});

t.test('every token served has more than half of its lifetime left, whatever the sub-second phase', async (t) => {
  const { issuer, clock } = tokens({ clock: { now: T0 + 999 } });
  for (let step = 0; step < 200; step++) {
    clock.now += 777;
    const exp = (decodePayload(issuer.tokenFor(alice)).exp as number) * 1_000;
    if (exp - clock.now <= 30_000) t.fail(`only ${exp - clock.now} ms left at step ${step}`);
  }
  t.pass('checked 200 requests over 155 s');
});

t.test('the first key signs: the kid in the header names it, whatever the order of the rest', async (t) => {
  const a = generateSigningKey('EdDSA');
  const b = generateSigningKey('EdDSA');
  const before = tokens({ keys: [a, b] }).issuer;
  const after = tokens({ keys: [b, a] }).issuer;
  t.equal(decodeProtectedHeader(before.tokenFor(alice)).kid, a.kid);
  t.equal(decodeProtectedHeader(after.tokenFor(alice)).kid, b.kid);
  // An app still holding the JWKS published before the swap verifies tokens signed after it.
  const oldJwks = createLocalJWKSet(JSON.parse(before.jwksJson ?? 'null') as JSONWebKeySet);
  t.equal((await jwtVerify(after.tokenFor(alice), oldJwks, verifyOptions)).payload.sub, 'alice');
});

t.test('parseSigningKey: Ed25519 and P-256 PEMs (PKCS#8 and SEC1); anything else is refused with a reason', async (t) => {
  const ed = parseSigningKey(exportPrivateKeyPem(generateSigningKey('EdDSA')));
  t.ok(ed.ok && ed.key.alg === 'EdDSA');
  const ec = parseSigningKey(exportPrivateKeyPem(generateSigningKey('ES256')));
  t.ok(ec.ok && ec.key.alg === 'ES256');
  const sec1 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'sec1', format: 'pem' }).toString();
  const fromSec1 = parseSigningKey(sec1);
  t.ok(fromSec1.ok && fromSec1.key.alg === 'ES256', 'openssl ecparam -genkey output works too');
  const same = parseSigningKey(exportPrivateKeyPem((ed as { key: SigningKey }).key));
  t.equal(same.ok && same.key.kid, ed.ok && ed.key.kid, 'the same key always gets the same kid');

  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  t.same(parseSigningKey(rsa), { ok: false, reason: 'holds an rsa key; use Ed25519 (EdDSA) or EC P-256 (ES256)' });
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  t.match(parseSigningKey(p384), { ok: false, reason: /holds an ec secp384r1 key/ });
  const publicOnly = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
  t.same(parseSigningKey(publicOnly), { ok: false, reason: 'is not an unencrypted PEM private key' });
  const encrypted = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' }).toString();
  t.same(parseSigningKey(encrypted), { ok: false, reason: 'is not an unencrypted PEM private key' });
  t.same(parseSigningKey('not a key'), { ok: false, reason: 'is not an unencrypted PEM private key' });
});

function decodePayload(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}
