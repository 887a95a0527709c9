// Signed identity for apps that verify (GATEWAY_IDENTITY_JWT): real gateways on real Redis and
// PostgreSQL in front of the echo app. What the app receives in X-Gateway-Identity is verified
// with jose (the gateway signs with node:crypto, so the verifier is independent of the signer)
// against the JWKS fetched from /_auth/jwks.json, or against the shared secret in HMAC mode.
import { createHmac, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calculateJwkThumbprint, createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet, type JWK } from 'jose';
import t from 'tap';
import { login, seedUsers, startTestGateway, uniquePrefix, withSession, type TestGateway } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import { services } from '../helpers/services.js';
import { startEchoUpstream, type Echo } from '../helpers/upstream.js';

const ISSUER = 'https://app.example.com';
const HMAC_SECRET = 'identity-hmac-secret-0123456789-abcdefgh';

const { redis, pg } = await services(t);
await seedUsers(t, pg.url, [
  { username: 'alice', password: 'correct horse', email: 'alice@example.com', groups: ['staff', 'ops'] },
  { username: 'zoë', password: 'battery staple', groups: ['café'] },
]);
const upstream = await startEchoUpstream();
t.teardown(() => upstream.close());

// Keys made the way an operator would (PKCS#8 PEM), not by the gateway's own code.
const dir = mkdtempSync(join(tmpdir(), 'sgw-identity-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
function keyFile(name: string, privateKey: KeyObject): { path: string; kid: Promise<string> } {
  const path = join(dir, name);
  writeFileSync(path, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  return { path, kid: calculateJwkThumbprint(createPublicKey(privateKey).export({ format: 'jwk' }) as JWK) };
}
const k1 = keyFile('k1.pem', generateKeyPairSync('ed25519').privateKey);
const k2 = keyFile('k2.pem', generateKeyPairSync('ed25519').privateKey);
const kEc = keyFile('p256.pem', generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);

// Replicas of one deployment: same Redis, prefix and session secret, so one sign-in works on all.
const replica = { REDIS_URL: redis.url, DATABASE_URL: pg.url, GATEWAY_UPSTREAM: upstream.url, GATEWAY_REDIS_PREFIX: uniquePrefix(), GATEWAY_PUBLIC_URL: ISSUER, GATEWAY_PUBLIC_PATHS: '/public' };
const on = { ...replica, GATEWAY_IDENTITY_JWT: 'true' };
const gw = await startTestGateway(t, { ...on, GATEWAY_IDENTITY_JWT_KEY_FILES: `${k1.path},${k2.path}` });
const gwRotated = await startTestGateway(t, { ...on, GATEWAY_IDENTITY_JWT_KEY_FILES: `${k2.path},${k1.path}` });
const gwEc = await startTestGateway(t, { ...on, GATEWAY_IDENTITY_JWT_ALG: 'ES256', GATEWAY_IDENTITY_JWT_KEY_FILES: kEc.path, GATEWAY_IDENTITY_JWT_AUDIENCE: 'legacy-app', GATEWAY_IDENTITY_JWT_LIFETIME: '5m' });
const gwHmac = await startTestGateway(t, { ...on, GATEWAY_IDENTITY_HMAC_SECRET: HMAC_SECRET });
const gwOff = await startTestGateway(t, replica);
// One process without Redis (a single replica): a key is generated for it.
const gwSingle = await startTestGateway(t, { DATABASE_URL: pg.url, GATEWAY_UPSTREAM: upstream.url, GATEWAY_IDENTITY_JWT: 'true' });

const alice = await login(gw, 'alice', 'correct horse');
const aliceSingle = await login(gwSingle, 'alice', 'correct horse');

/** What the app received for one request through `gateway`. */
async function forwarded(gateway: TestGateway, cookie: string | null, path = '/app', headers: Array<[string, string]> = []): Promise<Echo> {
  // A raw header list (to send exact spellings) gets no automatic Host header.
  const host: [string, string] = ['host', new URL(gateway.url).host];
  const res = await send(`${gateway.url}${path}`, { headers: [host, ...(cookie ? Object.entries(withSession(gateway, cookie)) : []), ...headers] });
  if (res.status !== 200) throw new Error(`${path} via ${gateway.url}: ${res.status} ${res.body}`);
  return res.json<Echo>();
}

/** Every value the app received under X-Gateway-Identity, in any case or underscore spelling. */
function identityValues(echo: Echo): string[] {
  const values: string[] = [];
  for (let i = 0; i < echo.rawHeaders.length; i += 2) {
    if ((echo.rawHeaders[i] ?? '').toLowerCase().replaceAll('_', '-') === 'x-gateway-identity') values.push(echo.rawHeaders[i + 1] ?? '');
  }
  return values;
}

function tokenOf(echo: Echo): string {
  const values = identityValues(echo);
  if (values.length !== 1) throw new Error(`expected one X-Gateway-Identity, got ${JSON.stringify(values)}`);
  return values[0] as string;
}

const jwksUrl = (gateway: TestGateway) => new URL(`${gateway.url}${gateway.config.authPrefix}/jwks.json`);

t.test('the app receives a token that jose verifies against the JWKS fetched from the gateway', async (t) => {
  const echo = await forwarded(gw, alice);
  const token = tokenOf(echo);
  const { payload, protectedHeader } = await jwtVerify(token, createRemoteJWKSet(jwksUrl(gw)), { issuer: ISSUER, audience: upstream.url, algorithms: ['EdDSA'] });
  t.same(protectedHeader, { alg: 'EdDSA', typ: 'JWT', kid: await k1.kid }, 'signed by the first key file, named by its thumbprint');
  t.match(payload, { iss: ISSUER, aud: upstream.url, sub: 'alice', email: 'alice@example.com', groups: ['staff', 'ops'] });
  const now = Date.now() / 1_000;
  t.equal((payload.exp ?? 0) - (payload.iat ?? 0), 60, 'the default lifetime: 60 s');
  t.ok((payload.exp ?? 0) > now && (payload.exp ?? 0) <= now + 300, 'unexpired, and valid for at most 5 minutes');
  t.match(payload.jti, /^[A-Za-z0-9_-]{22}$/);
  t.equal(echo.headers['x-forwarded-user'], 'alice', 'the plain identity headers are still sent');
  t.notOk(gw.logs.some((line) => line.includes(token)), 'the token is never logged');
});

t.test('the same token is reused while more than half of its lifetime is left', async (t) => {
  const first = tokenOf(await forwarded(gw, alice, '/one'));
  const second = tokenOf(await forwarded(gw, alice, '/two'));
  t.equal(second, first, 'one signature serves many requests (documented: the jti repeats)');
  const other = tokenOf(await forwarded(gw, await login(gw, 'zoë', 'battery staple')));
  t.not(other, first, 'another session has its own token');
  const { payload } = await jwtVerify(other, createRemoteJWKSet(jwksUrl(gw)), { issuer: ISSUER, audience: upstream.url });
  t.equal(payload.sub, 'zoë', 'Unicode usernames travel as they are inside the JWT');
  t.notOk('email' in payload, 'no email claim for a user without one');
});

t.test('GET /_auth/jwks.json: public, short-lived cache, every key, public parts only', async (t) => {
  const res = await send(jwksUrl(gw).toString());
  t.equal(res.status, 200, 'no session needed');
  t.equal(res.headers['cache-control'], 'public, max-age=300');
  t.match(res.headers['content-type'], /^application\/json/);
  const { keys } = res.json<JSONWebKeySet>();
  t.same(keys.map((k) => k.kid), [await k1.kid, await k2.kid], 'both key files are published, in order');
  for (const key of keys) {
    t.match(key, { kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
    t.notOk('d' in key, 'no private part');
  }
  const head = await send(jwksUrl(gw).toString(), { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(upstream.received.filter((e) => e.url.includes('jwks')).length, 0, 'never forwarded to the app');
});

t.test('rotation: after the key order is swapped, an app holding the old JWKS still verifies', async (t) => {
  const heldByApp = createLocalJWKSet((await send(jwksUrl(gw).toString())).json<JSONWebKeySet>());
  const token = tokenOf(await forwarded(gwRotated, alice));
  t.equal(decodeProtectedHeader(token).kid, await k2.kid, 'now signed by the new first key');
  const { payload } = await jwtVerify(token, heldByApp, { issuer: ISSUER, audience: upstream.url });
  t.equal(payload.sub, 'alice');
  const rotated = (await send(jwksUrl(gwRotated).toString())).json<JSONWebKeySet>();
  t.same(rotated.keys.map((k) => k.kid), [await k2.kid, await k1.kid], 'the rotated replica publishes both as well');
  // Tokens still signed by the old first key (other replicas mid-rollout) verify against the new JWKS.
  await jwtVerify(tokenOf(await forwarded(gw, alice)), createLocalJWKSet(rotated), { issuer: ISSUER, audience: upstream.url });
});

t.test('ES256 with a configured audience and a 5-minute lifetime', async (t) => {
  const token = tokenOf(await forwarded(gwEc, alice));
  const { payload, protectedHeader } = await jwtVerify(token, createRemoteJWKSet(jwksUrl(gwEc)), { issuer: ISSUER, audience: 'legacy-app', algorithms: ['ES256'] });
  t.same(protectedHeader, { alg: 'ES256', typ: 'JWT', kid: await kEc.kid });
  t.equal((payload.exp ?? 0) - (payload.iat ?? 0), 300);
  t.equal(payload.sub, 'alice');
});

t.test('HMAC mode: an HS256 token verified with the shared secret, by jose or by hand; no JWKS', async (t) => {
  const token = tokenOf(await forwarded(gwHmac, alice));
  const { payload, protectedHeader } = await jwtVerify(token, new TextEncoder().encode(HMAC_SECRET), { issuer: ISSUER, audience: upstream.url, algorithms: ['HS256'] });
  t.same(protectedHeader, { alg: 'HS256', typ: 'JWT' });
  t.match(payload, { sub: 'alice', email: 'alice@example.com', groups: ['staff', 'ops'] });
  const [header, body, signature] = token.split('.');
  t.equal(createHmac('sha256', HMAC_SECRET).update(`${header}.${body}`).digest('base64url'), signature, 'HMAC-SHA256 over header.payload');
  t.equal((await send(jwksUrl(gwHmac).toString())).status, 404, 'nothing public to publish');
});

t.test('a client-sent X-Gateway-Identity never reaches the app, in any spelling, feature on or off', async (t) => {
  const spoofs: Array<[string, string]> = [
    ['X-Gateway-Identity', 'forged'],
    ['x_gateway_identity', 'forged2'],
    ['X-GATEWAY-IDENTITY', 'forged3'],
  ];
  const withToken = identityValues(await forwarded(gw, alice, '/app', spoofs));
  t.equal(withToken.length, 1, 'exactly one, the gateway’s own');
  await jwtVerify(withToken[0] ?? '', createRemoteJWKSet(jwksUrl(gw)), { issuer: ISSUER, audience: upstream.url });
  t.same(identityValues(await forwarded(gwOff, alice, '/app', spoofs)), [], 'feature off: stripped, nothing added');
  t.same(identityValues(await forwarded(gw, null, '/public/page', spoofs)), [], 'public path without a session: stripped, nothing added');
  t.same(identityValues(await forwarded(gw, alice, '/public/page', spoofs)), [], 'public paths carry no identity at all');
});

t.test('GET /_auth/verify returns the token with the identity headers on 204', async (t) => {
  const res = await send(`${gw.url}/_auth/verify`, { headers: withSession(gw, alice) });
  t.equal(res.status, 204);
  t.equal(res.headers['x-forwarded-user'], 'alice');
  const { payload } = await jwtVerify(String(res.headers['x-gateway-identity']), createRemoteJWKSet(jwksUrl(gw)), { issuer: ISSUER, audience: upstream.url });
  t.equal(payload.sub, 'alice');
  const off = await send(`${gwOff.url}/_auth/verify`, { headers: withSession(gwOff, alice) });
  t.equal(off.status, 204);
  t.notOk('x-gateway-identity' in off.headers, 'feature off: no token');
  t.equal((await send(`${gw.url}/_auth/verify`)).status, 401);
});

t.test('a single process without Redis and without key files generates its key and says so', async (t) => {
  const token = tokenOf(await forwarded(gwSingle, aliceSingle));
  const { payload } = await jwtVerify(token, createRemoteJWKSet(jwksUrl(gwSingle)), { issuer: 'session-gateway', audience: upstream.url, algorithms: ['EdDSA'] });
  t.equal(payload.sub, 'alice', 'default issuer without GATEWAY_PUBLIC_URL: session-gateway');
  t.ok(gwSingle.logs.some((line) => line.includes('an identity-token key was generated for this process')), 'warned');
  t.notOk(gw.logs.some((line) => line.includes('was generated')), 'no such warning with key files');
});
