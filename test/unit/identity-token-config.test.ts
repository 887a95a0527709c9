// Configuration of the signed identity token (GATEWAY_IDENTITY_*): defaults, key files, the HMAC
// mode and its _FILE form, and one clear line naming the variable for every mistake.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { exportPrivateKeyPem, generateSigningKey } from '../../src/identity/keys.js';

const SESSION_SECRET = 's'.repeat(32);
const HMAC_SECRET = 'h'.repeat(32);
const REDIS = { REDIS_URL: 'redis://127.0.0.1:6379', GATEWAY_SESSION_SECRET: SESSION_SECRET };
const ON = { GATEWAY_IDENTITY_JWT: 'true' };

const dir = mkdtempSync(join(tmpdir(), 'sgw-identity-config-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, content: string) => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};
const ed1 = generateSigningKey('EdDSA');
const ed2 = generateSigningKey('EdDSA');
const p256 = generateSigningKey('ES256');
const ed1File = file('ed1.pem', exportPrivateKeyPem(ed1));
const ed1Copy = file('ed1-copy.pem', exportPrivateKeyPem(ed1));
const ed2File = file('ed2.pem', exportPrivateKeyPem(ed2));
const p256File = file('p256.pem', exportPrivateKeyPem(p256));
const rsaFile = file('rsa.pem', generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
const garbageFile = file('garbage.pem', 'hello\n');

/** The one problem line naming GATEWAY_IDENTITY_*; fails unless exactly one problem is reported. */
function onlyProblem(t: Tap, env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (err) {
    t.type(err, ConfigError);
    const problems = (err as ConfigError).problems;
    t.equal(problems.length, 1, `one problem: ${JSON.stringify(problems)}`);
    t.notMatch(problems[0] ?? '', /\n/, 'one line');
    return problems[0] ?? '';
  }
  t.fail(`expected a ConfigError for ${JSON.stringify(env)}`);
  return '';
}
type Tap = Pick<typeof t, 'type' | 'fail' | 'equal' | 'notMatch'>;

t.test('off by default; the other variables are ignored while it is off', async (t) => {
  t.equal(loadConfig({}).identityToken, null);
  t.equal(loadConfig({ GATEWAY_IDENTITY_JWT_LIFETIME: '1h', GATEWAY_IDENTITY_JWT_KEY_FILES: '/nonexistent' }).identityToken, null);
});

t.test('defaults when on: EdDSA, 60 s, issuer and audience resolved at start-up, key generated per process', async (t) => {
  t.same(loadConfig(ON).identityToken, { alg: 'EdDSA', keys: [], hmacSecret: null, issuer: null, audience: null, lifetimeMs: 60_000 });
});

t.test('key files, lifetime, issuer, audience are read', async (t) => {
  const c = loadConfig({
    ...REDIS,
    ...ON,
    GATEWAY_IDENTITY_JWT_KEY_FILES: ` ${ed1File} , ${p256File} `,
    GATEWAY_IDENTITY_JWT_LIFETIME: '5m',
    GATEWAY_IDENTITY_JWT_ISSUER: 'https://login.example.com',
    GATEWAY_IDENTITY_JWT_AUDIENCE: 'legacy-app',
  }).identityToken;
  t.equal(c?.alg, 'EdDSA');
  t.same(c?.keys.map((k) => k.kid), [ed1.kid, p256.kid], 'in order: the first signs, all are published');
  t.equal(c?.lifetimeMs, 300_000);
  t.equal(c?.issuer, 'https://login.example.com');
  t.equal(c?.audience, 'legacy-app');
  const es = loadConfig({ ...ON, GATEWAY_IDENTITY_JWT_ALG: 'ES256', GATEWAY_IDENTITY_JWT_KEY_FILES: `${p256File},${ed1File}` }).identityToken;
  t.equal(es?.alg, 'ES256');
  t.same(es?.keys.map((k) => k.alg), ['ES256', 'EdDSA']);
});

t.test('HMAC mode: the secret selects HS256; the _FILE form works', async (t) => {
  t.match(loadConfig({ ...ON, GATEWAY_IDENTITY_HMAC_SECRET: HMAC_SECRET }).identityToken, { alg: 'HS256', hmacSecret: HMAC_SECRET, keys: [] });
  const secretFile = file('hmac', `${HMAC_SECRET}\n`);
  t.match(loadConfig({ ...REDIS, ...ON, GATEWAY_IDENTITY_HMAC_SECRET_FILE: secretFile }).identityToken, { alg: 'HS256', hmacSecret: HMAC_SECRET }, 'no key files needed with Redis');
});

t.test('mistakes give one clear line naming the variable', async (t) => {
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['lifetime above 5 minutes', { ...ON, GATEWAY_IDENTITY_JWT_LIFETIME: '6m' }, /^GATEWAY_IDENTITY_JWT_LIFETIME must be at most 5m.*\(got "6m"\)$/],
    ['lifetime below 10 seconds', { ...ON, GATEWAY_IDENTITY_JWT_LIFETIME: '5s' }, /^GATEWAY_IDENTITY_JWT_LIFETIME must be at least 10000 ms/],
    ['Redis without key files', { ...REDIS, ...ON }, /^GATEWAY_IDENTITY_JWT_KEY_FILES is required when Redis is configured and GATEWAY_IDENTITY_JWT=true .*keys generate/],
    ['missing key file', { ...ON, GATEWAY_IDENTITY_JWT_KEY_FILES: join(dir, 'nope.pem') }, /^GATEWAY_IDENTITY_JWT_KEY_FILES: cannot read .*nope\.pem \(ENOENT\)$/],
    ['not a key', { ...ON, GATEWAY_IDENTITY_JWT_KEY_FILES: garbageFile }, /^GATEWAY_IDENTITY_JWT_KEY_FILES: .*garbage\.pem is not an unencrypted PEM private key$/],
    ['RSA key', { ...ON, GATEWAY_IDENTITY_JWT_KEY_FILES: `${ed1File},${rsaFile}` }, /^GATEWAY_IDENTITY_JWT_KEY_FILES: .*rsa\.pem holds an rsa key; use Ed25519 \(EdDSA\) or EC P-256 \(ES256\)$/],
    ['same key twice', { ...ON, GATEWAY_IDENTITY_JWT_KEY_FILES: `${ed1File},${ed1Copy}` }, /ed1-copy\.pem holds the same key as an earlier file$/],
    ['first key of the wrong type', { ...ON, GATEWAY_IDENTITY_JWT_KEY_FILES: `${p256File},${ed2File}` }, /first key signs, so it must be an Ed25519 key for GATEWAY_IDENTITY_JWT_ALG=EdDSA \(.*p256\.pem holds an EC P-256 key\)$/],
    ['unknown algorithm', { ...ON, GATEWAY_IDENTITY_JWT_ALG: 'RS256' }, /^GATEWAY_IDENTITY_JWT_ALG must be one of EdDSA, ES256, HS256 \(got "RS256"\)$/],
    ['short HMAC secret', { ...ON, GATEWAY_IDENTITY_HMAC_SECRET: 'short' }, /^GATEWAY_IDENTITY_HMAC_SECRET is shorter than 32 characters$/],
    ['HMAC secret reused as a session secret', { ...ON, GATEWAY_SESSION_SECRET: `${'o'.repeat(32)},${HMAC_SECRET}`, GATEWAY_IDENTITY_HMAC_SECRET: HMAC_SECRET }, /^GATEWAY_IDENTITY_HMAC_SECRET must differ from every GATEWAY_SESSION_SECRET/],
    ['HS256 without a secret', { ...ON, GATEWAY_IDENTITY_JWT_ALG: 'HS256' }, /^GATEWAY_IDENTITY_JWT_ALG=HS256 needs GATEWAY_IDENTITY_HMAC_SECRET/],
    ['HMAC secret and key files', { ...ON, GATEWAY_IDENTITY_HMAC_SECRET: HMAC_SECRET, GATEWAY_IDENTITY_JWT_KEY_FILES: ed1File }, /are alternatives .*: set only one$/],
    ['HMAC secret with an asymmetric algorithm', { ...ON, GATEWAY_IDENTITY_HMAC_SECRET: HMAC_SECRET, GATEWAY_IDENTITY_JWT_ALG: 'EdDSA' }, /^GATEWAY_IDENTITY_HMAC_SECRET means HS256 tokens, but GATEWAY_IDENTITY_JWT_ALG is EdDSA: unset one$/],
    ['HMAC secret in both forms', { ...ON, GATEWAY_IDENTITY_HMAC_SECRET: HMAC_SECRET, GATEWAY_IDENTITY_HMAC_SECRET_FILE: join(dir, 'hmac') }, /^GATEWAY_IDENTITY_HMAC_SECRET and GATEWAY_IDENTITY_HMAC_SECRET_FILE are both set/],
    ['not a boolean', { GATEWAY_IDENTITY_JWT: 'maybe' }, /^GATEWAY_IDENTITY_JWT must be true or false/],
  ];
  for (const [name, env, pattern] of cases) {
    t.test(name, async (t) => {
      t.match(onlyProblem(t, env), pattern);
    });
  }
});

t.test('the key never appears in a problem line', async (t) => {
  const line = onlyProblem(t, { ...ON, GATEWAY_IDENTITY_JWT_KEY_FILES: `${p256File}` });
  t.notMatch(line, /PRIVATE KEY|MIG/);
  const secretLine = onlyProblem(t, { ...ON, GATEWAY_IDENTITY_HMAC_SECRET: 'short-but-secret' });
  t.notMatch(secretLine, /short-but-secret/);
});
