// How createRedisClient hands the managed-Redis settings (SPEC section 2: REDIS_USERNAME/PASSWORD,
// REDIS_SENTINEL_*, REDIS_TLS, REDIS_CA_FILE) to ioredis 5, per mode. The clients are built lazily
// and never connect here; the integration tests (redis-credentials.test.ts) sign in for real.
import t from 'tap';
import { Cluster, Redis } from 'ioredis';
import { createRedisClient } from '../../src/redis-client.js';
import { DEFAULT_REDIS_COMMAND_TIMEOUT_MS, DEFAULT_REDIS_CONNECT_TIMEOUT_MS } from '../../src/config/config.js';

const CA = '-----BEGIN CERTIFICATE-----\n';
const timeouts = { commandTimeoutMs: DEFAULT_REDIS_COMMAND_TIMEOUT_MS, connectTimeoutMs: DEFAULT_REDIS_CONNECT_TIMEOUT_MS };
const sentinels = [{ host: '127.0.0.1', port: 26379 }];
const nodes = [{ host: 'cache.internal', port: 6379 }];

t.test('standalone: REDIS_USERNAME/REDIS_PASSWORD, else the URL', async (t) => {
  const withVars = createRedisClient({ mode: 'standalone', url: 'redis://127.0.0.1:6379', username: 'gateway', password: 'pw' }, timeouts) as Redis;
  t.match(withVars.options, { username: 'gateway', password: 'pw' });
  const fromUrl = createRedisClient({ mode: 'standalone', url: 'redis://gw:url-pw@127.0.0.1:6379' }, timeouts) as Redis;
  t.match(fromUrl.options, { username: 'gw', password: 'url-pw' });
});

t.test('Sentinel: data-node and Sentinel credentials apart; REDIS_TLS reaches the master too', async (t) => {
  const plain = createRedisClient({ mode: 'sentinel', sentinels, name: 'm', password: 'data', sentinelUsername: 'watch', sentinelPassword: 'sent' }, timeouts) as Redis;
  t.match(plain.options, { password: 'data', sentinelUsername: 'watch', sentinelPassword: 'sent' });
  t.notOk(plain.options.tls, 'no TLS unless asked');
  const tls = createRedisClient({ mode: 'sentinel', sentinels, name: 'm', tls: true }, { tlsCa: CA, ...timeouts }) as Redis;
  // Without enableTLSForSentinelMode ioredis would talk plain TCP to the master despite `tls`.
  t.match(tls.options, { enableTLSForSentinelMode: true, tls: { ca: CA }, sentinelTLS: { ca: CA } });
});

t.test('Cluster: credentials and TLS on every node connection; names kept for the certificate check', async (t) => {
  const cluster = createRedisClient({ mode: 'cluster', nodes, password: 'pw', tls: true }, timeouts) as Cluster;
  t.match(cluster.options.redisOptions, { password: 'pw', tls: {} });
  const lookup = cluster.options.dnsLookup;
  t.ok(lookup, 'a dnsLookup of our own');
  const seen = lookup ? await new Promise<string>((resolve) => lookup('cache.internal', (_err, address) => resolve(address))) : null;
  t.equal(seen, 'cache.internal', 'no resolution to an address the certificate does not name');
  const caOnly = createRedisClient({ mode: 'cluster', nodes }, { tlsCa: CA, ...timeouts }) as Cluster;
  t.match(caOnly.options.redisOptions, { tls: { ca: CA } }, 'a private CA alone still turns TLS on (as before)');
  const none = createRedisClient({ mode: 'cluster', nodes }, timeouts) as Cluster;
  t.notOk(none.options.redisOptions?.tls, 'no TLS unless asked');
});
