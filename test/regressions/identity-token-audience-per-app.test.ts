// Attack: several apps behind one forward-auth gateway (no GATEWAY_UPSTREAM) all received identity
// tokens with the same `aud` (`session-gateway`, equal to `iss`). A token that app A receives (or
// logs, or leaks) was accepted by app B, which checks `aud` exactly as told: B could be called
// as the user by anyone holding A's traffic, for the token's lifetime.
// Defence: src/identity/signed-identity.ts audienceForHost, used by the verify route and its fast path
// (src/forward-auth/verify.ts allowHeaders): in forward-auth mode the audience is `https://<host>` of the
// original request (a trusted proxy's X-Forwarded-Host, checked by hostRefusal and
// GATEWAY_ALLOWED_HOSTS), so each app verifies its own name.
import t from 'tap';
import { jwtVerify } from 'jose';
import { login, seedUsers, startTestGateway, uniquePrefix, withSession, type TestGateway } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import { services } from '../helpers/services.js';

const SECRET = 'audience-test-hmac-secret-0123456789abcdef';
const key = new TextEncoder().encode(SECRET);
const { redis, pg } = await services(t);
await seedUsers(t, pg.url, [{ username: 'alice', password: 'alice-Pw-0035' }]);
const env = {
  REDIS_URL: redis.url,
  DATABASE_URL: pg.url,
  GATEWAY_REDIS_PREFIX: uniquePrefix(),
  GATEWAY_TRUSTED_PROXIES: '127.0.0.1',
  GATEWAY_IDENTITY_JWT: 'true',
  GATEWAY_IDENTITY_HMAC_SECRET: SECRET,
};
const gw = await startTestGateway(t, env);
const cookie = await login(gw, 'alice', 'alice-Pw-0035');

/** The token a proxy in front of `host` receives on 204; `named`: with the original request (fast path). */
async function tokenFor(gateway: TestGateway, host: string, named: boolean): Promise<string> {
  const res = await send(`${gateway.url}/_auth/verify`, {
    headers: withSession(gateway, cookie, { 'x-forwarded-host': host, 'x-forwarded-proto': 'https', ...(named ? { 'x-forwarded-uri': '/page', 'x-forwarded-method': 'GET' } : {}) }),
  });
  if (res.status !== 204) throw new Error(`verify for ${host}: ${res.status}`);
  return String(res.headers['x-gateway-identity']);
}

t.test('a token app A receives is refused by app B, and accepted by A', async (t) => {
  for (const named of [false, true]) {
    const forA = await tokenFor(gw, 'app-a.example', named);
    const { payload } = await jwtVerify(forA, key, { audience: 'https://app-a.example', algorithms: ['HS256'] });
    t.equal(payload.sub, 'alice', `${named ? 'fast path' : 'route'}: A accepts its own token`);
    await t.rejects(jwtVerify(forA, key, { audience: 'https://app-b.example', algorithms: ['HS256'] }), { code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'aud' }, 'B refuses it');
    await t.rejects(jwtVerify(forA, key, { audience: 'session-gateway', algorithms: ['HS256'] }), { code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'aud' }, 'the old shared audience is gone');
    const forB = await tokenFor(gw, 'APP-B.example:8443', named);
    t.equal((await jwtVerify(forB, key, { audience: 'https://app-b.example:8443' })).payload.sub, 'alice', 'B’s own token: host in lower case, port kept');
  }
});

t.test('with GATEWAY_ALLOWED_HOSTS, no token is issued for another host', async (t) => {
  const limited = await startTestGateway(t, { ...env, GATEWAY_ALLOWED_HOSTS: 'app-a.example' });
  t.equal((await jwtVerify(await tokenFor(limited, 'app-a.example', true), key, { audience: 'https://app-a.example' })).payload.sub, 'alice');
  const other = await send(`${limited.url}/_auth/verify`, { headers: withSession(limited, cookie, { 'x-forwarded-host': 'app-c.example', 'x-forwarded-uri': '/page' }) });
  t.equal(other.status, 400);
  t.notOk(other.headers['x-gateway-identity']);
});

t.test('a configured audience still holds for every app', async (t) => {
  const fixed = await startTestGateway(t, { ...env, GATEWAY_IDENTITY_JWT_AUDIENCE: 'legacy-apps' });
  t.equal((await jwtVerify(await tokenFor(fixed, 'app-a.example', true), key, { audience: 'legacy-apps' })).payload.sub, 'alice');
});
