// The admin listener's DELETE /tokens/<user>/<name> (SPEC 6) against real PostgreSQL and Redis:
// behind GATEWAY_ADMIN_TOKEN, audited, and the revoked token leaves every replica's cache at once.
import t from 'tap';
import { migrateTokens } from '../../src/tokens/migrations.js';
import { createToken } from '../../src/tokens/token-admin.js';
import { createPostgresTokenStore } from '../../src/tokens/token-store.js';
import { createPostgresUserStore } from '../../src/users/user-store.js';
import { send } from '../helpers/http.js';
import { testBed } from '../regressions/setup.js';

const ADMIN = 'admin-token-0123456789-abcdefghijklmnop';
const bed = await testBed(t, [{ username: 'alice', password: 'alice-Pw-0115-long' }]);
await migrateTokens(bed.pool);
const [one, two] = await Promise.all([bed.gateway({ GATEWAY_ADMIN_TOKEN: ADMIN }), bed.gateway({ GATEWAY_ADMIN_TOKEN: ADMIN })]);
const users = createPostgresUserStore(bed.pool);
const store = createPostgresTokenStore(bed.pool);
const del = (path: string, authorization?: string) => send(`${one.adminUrl}${path}`, { method: 'DELETE', headers: authorization ? { authorization } : {} });

t.test('DELETE /tokens/<user>/<name>: refused without the admin token, then revoked everywhere', async (t) => {
  const { token } = await createToken(store, (n) => users.find(n), { user: 'alice', name: 'ci', expiresInMs: null });
  t.equal((await send(`${two.url}/x`, { headers: { authorization: `Bearer ${token}` } })).status, 200, 'hot on replica two');

  const refused = await del('/tokens/alice/ci');
  t.equal(refused.status, 401);
  t.equal((await del('/tokens/alice/ci', `Bearer ${ADMIN}x`)).status, 401);
  t.equal((await store.list('alice')).length, 1, 'nothing revoked by a refused call');

  const started = Date.now();
  const ok = await del('/tokens/alice/ci', `Bearer ${ADMIN}`);
  t.equal(ok.status, 200, ok.body);
  t.same(JSON.parse(ok.body), { user: 'alice', token: 'ci', revoked: true });
  let status = 200;
  while (Date.now() - started < 1_000 && status === 200) status = (await send(`${two.url}/x`, { headers: { authorization: `Bearer ${token}` } })).status;
  t.equal(status, 401, `refused on replica two ${Date.now() - started} ms after the call`);
  t.ok(one.logs.some((line) => line.includes('"audit":"revocation"') && line.includes('"token":"ci"') && line.includes('"by":"admin_api"')), 'audited');
  t.notOk(one.logs.join('\n').includes(token.slice(8)), 'the token is in no log line');

  t.equal((await del('/tokens/alice/ci', `Bearer ${ADMIN}`)).status, 404, 'gone');
  t.equal((await del('/tokens/alice/bad%20name', `Bearer ${ADMIN}`)).status, 400);
  t.equal((await del('/tokens/%20alice/ci', `Bearer ${ADMIN}`)).status, 400);
});
