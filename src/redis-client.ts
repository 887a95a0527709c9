// Builds the ioredis client for the three deployment shapes SPEC section 2 names. The options
// make a Redis outage fail fast (so protected requests answer 503 promptly, SPEC section 7)
// while the client keeps reconnecting by itself with a bounded backoff.
import { Cluster, Redis, type RedisOptions } from 'ioredis';

export type RedisClient = Redis | Cluster;

/** Where Redis is (SPEC section 2: one of three shapes) and how to sign in; config.ts reads it from the environment. */
export type RedisConfig = (
  | { mode: 'standalone'; url: string }
  | { mode: 'sentinel'; sentinels: HostPort[]; name: string }
  | { mode: 'cluster'; nodes: HostPort[] }
) &
  RedisCredentials;

/** Managed Redis (SPEC section 2): each field is present only when set, so it is never guessed. */
export interface RedisCredentials {
  /** REDIS_USERNAME / REDIS_PASSWORD: the data nodes' ACL user (standalone: else the URL's userinfo). */
  username?: string;
  password?: string;
  /** REDIS_SENTINEL_USERNAME / REDIS_SENTINEL_PASSWORD: the Sentinels' own credentials. */
  sentinelUsername?: string;
  sentinelPassword?: string;
  /** REDIS_TLS=true (Sentinel and Cluster; standalone says rediss:// instead). */
  tls?: true;
}

export interface HostPort {
  host: string;
  port: number;
}

const MAX_RECONNECT_DELAY_MS = 2_000;

export function reconnectDelay(attempt: number): number {
  return Math.min(50 * 2 ** Math.min(attempt, 10), MAX_RECONNECT_DELAY_MS);
}

const baseOptions: RedisOptions = {
  // A command issued while disconnected fails at once instead of waiting in a queue: the
  // request it serves answers 503 now rather than hanging until the client gives up.
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  enableAutoPipelining: true,
  retryStrategy: reconnectDelay,
  lazyConnect: true,
};

export interface RedisClientOptions {
  /** A PEM CA bundle for rediss:// (managed Redis with a private CA); TLS itself comes from the URL. */
  tlsCa?: string | null;
  /** GATEWAY_REDIS_COMMAND_TIMEOUT: a command unanswered this long fails. */
  commandTimeoutMs: number;
  /** GATEWAY_REDIS_CONNECT_TIMEOUT: a connection attempt this long is retried. */
  connectTimeoutMs: number;
}

export function createRedisClient(config: RedisConfig, options: RedisClientOptions): RedisClient {
  const { tlsCa = null } = options;
  const tlsOptions: RedisOptions = tlsCa ? { tls: { ca: tlsCa } } : {};
  const commonOptions: RedisOptions = {
    ...baseOptions,
    ...credentialOptions(config),
    commandTimeout: options.commandTimeoutMs,
    connectTimeout: options.connectTimeoutMs,
  };
  // Sentinel and Cluster have no URL to say rediss://: REDIS_TLS=true, or a private CA, turns TLS on.
  const tls = config.tls === true || tlsCa !== null ? { ca: tlsCa ?? undefined } : null;
  switch (config.mode) {
    case 'standalone':
      // ioredis turns rediss:// into `tls: {}`; a CA, when given, must replace that object.
      return new Redis(config.url, { ...commonOptions, ...(config.url.startsWith('rediss:') ? tlsOptions : {}) });
    case 'sentinel':
      return new Redis({
        ...commonOptions,
        sentinels: config.sentinels,
        name: config.name,
        // The Sentinels' own ACL (requirepass / user in sentinel.conf), not the data nodes'.
        sentinelUsername: config.sentinelUsername,
        sentinelPassword: config.sentinelPassword,
        // ioredis ignores `tls` for the master unless enableTLSForSentinelMode is set; a managed
        // deployment with TLS serves it on the Sentinels too.
        ...(tls && { tls, sentinelTLS: tls, enableTLSForSentinelMode: true }),
      });
    case 'cluster':
      return new Cluster(config.nodes, {
        redisOptions: { ...commonOptions, ...(tls && { tls }) },
        // With TLS, connect by the name given so the certificate is checked against it, not
        // against the address it resolves to (ioredis README, "Special note: AWS ElastiCache Clusters with TLS").
        ...(tls && { dnsLookup: (address: string, callback: (err: null, address: string) => void) => callback(null, address) }),
        enableOfflineQueue: false,
        enableAutoPipelining: true,
        clusterRetryStrategy: reconnectDelay,
        lazyConnect: true,
      });
  }
}

/** REDIS_USERNAME / REDIS_PASSWORD; for standalone, unset leaves the URL's userinfo in charge. */
function credentialOptions(config: RedisConfig): RedisOptions {
  return {
    ...(config.username !== undefined && { username: config.username }),
    ...(config.password !== undefined && { password: config.password }),
  };
}

/** Connects, retrying until Redis answers or the deadline passes. */
export async function connectRedis(client: RedisClient, deadlineMs: number): Promise<void> {
  const giveUpAt = Date.now() + deadlineMs;
  for (;;) {
    try {
      // ioredis's connect() can stay pending for good (Sentinel refusing our credentials is
      // retried inside it), so the deadline bounds the attempt, not only its failures.
      await withinDeadline(connectOnce(client, giveUpAt), giveUpAt);
      return;
    } catch (err) {
      if (Date.now() >= giveUpAt) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

async function connectOnce(client: RedisClient, giveUpAt: number): Promise<void> {
  if (client.status === 'wait' || client.status === 'end') await client.connect();
  if (client.status !== 'ready') await onceReady(client, Math.max(0, giveUpAt - Date.now()));
  await client.ping();
}

function withinDeadline(attempt: Promise<void>, giveUpAt: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('Redis did not become ready in time')), Math.max(0, giveUpAt - Date.now()));
  });
  attempt.catch(() => undefined); // a late failure after the deadline is not unhandled
  return Promise.race([attempt, expired]).finally(() => clearTimeout(timer));
}

function onceReady(client: RedisClient, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(new Error('Redis did not become ready in time'));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    client.once('ready', onReady);
  });
}
