// The operator's side of signed identity, through the real bin (node dist/cli.js): `keys generate`
// makes a key the gateway accepts, and a broken GATEWAY_IDENTITY_* setup stops `serve` with one
// clear line per problem (exit 1) before anything listens.
import { createPrivateKey } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../../src/config/config.js';
import { ensureBuilt, runCli, type CliResult } from '../helpers/cli.js';

await ensureBuilt();
const dir = mkdtempSync(join(tmpdir(), 'sgw-keys-cli-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const describe = (r: CliResult) => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
const SECRET = 'cli-test-secret-0123456789-abcdefghijklmn';

t.test('keys generate prints an Ed25519 PKCS#8 PEM that GATEWAY_IDENTITY_JWT_KEY_FILES accepts', async (t) => {
  const r = await runCli(['keys', 'generate'], { env: {} });
  t.equal(r.code, 0, describe(r));
  t.match(r.stdout, /^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n$/);
  t.equal(createPrivateKey(r.stdout).asymmetricKeyType, 'ed25519');
  const path = join(dir, 'generated.pem');
  writeFileSync(path, r.stdout);
  const config = loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', GATEWAY_SESSION_SECRET: SECRET, GATEWAY_IDENTITY_JWT: 'true', GATEWAY_IDENTITY_JWT_KEY_FILES: path });
  t.equal(config.identityToken?.keys.length, 1);
  const again = await runCli(['keys', 'generate'], { env: {} });
  t.not(again.stdout, r.stdout, 'a new key each time');
});

t.test('keys generate --alg ES256 prints an EC P-256 key', async (t) => {
  const r = await runCli(['keys', 'generate', '--alg', 'ES256'], { env: {} });
  t.equal(r.code, 0, describe(r));
  const key = createPrivateKey(r.stdout);
  t.equal(key.asymmetricKeyType, 'ec');
  t.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1');
});

t.test('keys usage errors exit 2 with the reason', async (t) => {
  const badAlg = await runCli(['keys', 'generate', '--alg', 'RS256'], { env: {} });
  t.equal(badAlg.code, 2, describe(badAlg));
  t.match(badAlg.err[0], /--alg must be EdDSA or ES256 \(got "RS256"\)/);
  t.equal(badAlg.stdout, '', 'no key printed');
  const noAction = await runCli(['keys'], { env: {} });
  t.equal(noAction.code, 2, describe(noAction));
  t.match(noAction.err[0], /keys needs exactly one action: generate/);
});

t.test('serve refuses a broken identity-token setup: one line per problem, exit 1', async (t) => {
  const garbage = join(dir, 'garbage.pem');
  writeFileSync(garbage, 'not a key\n');
  const withRedis = { REDIS_URL: 'redis://127.0.0.1:1', GATEWAY_SESSION_SECRET: SECRET, GATEWAY_HOST: '127.0.0.1', GATEWAY_ADMIN_HOST: '127.0.0.1', GATEWAY_IDENTITY_JWT: 'true' };

  const noKeys = await runCli(['serve'], { env: { ...withRedis, GATEWAY_IDENTITY_JWT_LIFETIME: '10m' } });
  t.equal(noKeys.code, 1, describe(noKeys));
  t.same(noKeys.out, [], 'nothing started');
  t.equal(noKeys.err.length, 2, describe(noKeys));
  t.match(noKeys.err[0], /^config error: GATEWAY_IDENTITY_JWT_LIFETIME must be at most 5m/);
  t.match(noKeys.err[1], /^config error: GATEWAY_IDENTITY_JWT_KEY_FILES is required when Redis is configured and GATEWAY_IDENTITY_JWT=true/);

  const badFile = await runCli(['serve'], { env: { ...withRedis, GATEWAY_IDENTITY_JWT_KEY_FILES: garbage } });
  t.equal(badFile.code, 1, describe(badFile));
  t.same(badFile.err, [`config error: GATEWAY_IDENTITY_JWT_KEY_FILES: ${garbage} is not an unencrypted PEM private key`]);
});
