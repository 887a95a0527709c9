// GATEWAY_MFA=off (the default): the passkey and TOTP libraries are never loaded, so a gateway
// without a second factor does not carry their heap (about 6 MiB with what they pull in); nor is
// the YAML parser without a rules file, nor the password dictionary's module. Every module this
// process resolves is recorded (the gateway is imported after the hook is in place); a second
// gateway with a second factor shows that the recorder does see the library when it is loaded.
import { registerHooks } from 'node:module';
import t from 'tap';

const resolved: string[] = [];
registerHooks({
  resolve(specifier, context, nextResolve) {
    const result = nextResolve(specifier, context);
    resolved.push(result.url);
    return result;
  },
});
const webauthnLibrary = () => resolved.filter((url) => url.includes('/@simplewebauthn/'));
const totpLibrary = () => resolved.filter((url) => url.includes('/node_modules/otpauth/'));
// Loaded only when a rules file is read (GATEWAY_ACCESS_RULES, unset here).
const yamlLibrary = () => resolved.filter((url) => url.includes('/node_modules/yaml/'));
// The common-password list is read from its JSON file at start-up; the package's module (all of its
// dictionaries, decompressed) is never imported.
const passwordDictionary = () => resolved.filter((url) => url.includes('/@zxcvbn-ts/'));

const { send } = await import('../helpers/http.js');
const { login, seedUsers, startTestGateway, uniquePrefix, withSession } = await import('../helpers/gateway.js');
const { services } = await import('../helpers/services.js');
const { startEchoUpstream } = await import('../helpers/upstream.js');

const { redis, pg } = await services(t);
await seedUsers(t, pg.url, [{ username: 'alice', password: 'correct horse' }]);
const upstream = await startEchoUpstream();
t.teardown(() => upstream.close());
const env = { REDIS_URL: redis.url, DATABASE_URL: pg.url, GATEWAY_UPSTREAM: upstream.url, GATEWAY_REDIS_PREFIX: uniquePrefix(), GATEWAY_COOKIE_SECURE: 'false' };

t.test('off: sign-in and proxied requests are served, the passkey library is not loaded', async (t) => {
  const gw = await startTestGateway(t, env);
  t.equal(gw.config.mfaMode, 'off');
  const cookie = await login(gw, 'alice', 'correct horse');
  t.equal((await send(`${gw.url}/reports`, { headers: withSession(gw, cookie) })).status, 200);
  await gw.stop();
  t.ok(resolved.some((url) => url.includes('/src/server.ts')), 'the recorder saw the gateway load');
  t.same(webauthnLibrary(), [], 'no @simplewebauthn module resolved');
  t.same(totpLibrary(), [], 'no otpauth module resolved');
  t.same(yamlLibrary(), [], 'no yaml module resolved (no rules file)');
  t.same(passwordDictionary(), [new URL('../../node_modules/@zxcvbn-ts/language-common/src/passwords.json', import.meta.url).href], 'of @zxcvbn-ts only the list is resolved (read as data), no module');
});

t.test('optional (the control): the library is loaded', async (t) => {
  const gw = await startTestGateway(t, { ...env, GATEWAY_MFA: 'optional', GATEWAY_MFA_ENCRYPTION_KEY: 'mfa-off-modules-key-0123456789-abcdefghijklmnop' });
  t.equal(gw.config.mfaMode, 'optional');
  await gw.stop();
  t.ok(webauthnLibrary().some((url) => url.includes('/@simplewebauthn/server/')), '@simplewebauthn/server resolved');
  t.ok(totpLibrary().length > 0, 'otpauth resolved');
});
