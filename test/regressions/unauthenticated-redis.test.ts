// Attack: the session store is left without a password because the gateway could not send one
// (Sentinel mode had no way to): anyone who reaches Redis on the network reads the user index,
// deletes sessions or writes their own. Operators of managed Redis (ElastiCache, MemoryDB, Azure
// Cache) could not use the gateway in Sentinel mode at all.
// Defence: src/config/config.ts (REDIS_PASSWORD, REDIS_SENTINEL_PASSWORD and their _FILE forms) and
// src/redis-client.ts (credentials in every mode; startup bounded when they are refused).
import t from 'tap';
import { send } from '../helpers/http.js';
import { login, seedUsers, startTestGateway, withSession } from '../helpers/gateway.js';
import { startSentinelSetup } from '../helpers/redis-topologies.js';
import { askRedisOnce, services } from '../helpers/services.js';
import { startEchoUpstream } from '../helpers/upstream.js';

const DATA_PASSWORD = 'Data-Node-Pw-3b7d';
const SENTINEL_PASSWORD = 'Sentinel-Pw-c41e';
const { pg } = await services(t);
await seedUsers(t, pg.url, [{ username: 'alice', password: 'alice-Pw-0099' }]);
const upstream = await startEchoUpstream();
t.teardown(() => upstream.close());
t.test('a password-protected Sentinel deployment: the gateway signs in, strangers do not', async (t) => {
  const sentinel = await startSentinelSetup(t, { password: DATA_PASSWORD, sentinelPassword: SENTINEL_PASSWORD });

  const gw = await startTestGateway(t, {
    DATABASE_URL: pg.url,
    GATEWAY_UPSTREAM: upstream.url,
    REDIS_SENTINELS: sentinel.sentinels,
    REDIS_SENTINEL_NAME: sentinel.name,
    REDIS_PASSWORD: DATA_PASSWORD,
    REDIS_SENTINEL_PASSWORD: SENTINEL_PASSWORD,
  });
  t.equal((await send(`${gw.adminUrl}/readyz`)).status, 200, 'the gateway runs on a password-protected Sentinel deployment');
  const cookie = await login(gw, 'alice', 'alice-Pw-0099');
  t.equal((await send(`${gw.url}/x`, { headers: withSession(gw, cookie) })).status, 200, 'a signed-in request is forwarded');

  // What a stranger on the network gets: nothing, from the master, the replica or the sentinel.
  for (const port of [sentinel.masterPort, sentinel.replicaPort, sentinel.sentinelPort]) {
    t.equal(await askRedisOnce({ port }, 'KEYS', '*'), null, `port ${port} refuses a client without the password`);
  }
  t.notOk(gw.logs.join('\n').includes(DATA_PASSWORD) || gw.logs.join('\n').includes(SENTINEL_PASSWORD), 'no password in the logs');
});
