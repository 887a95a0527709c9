// Sessions in Redis. Keys hold a hash of the session id (never the id), carry a TTL matching the
// session's idle/max deadlines, and every command touches one key, so the layout works
// unchanged on Redis Cluster. Invalidations travel on one pub/sub channel to every replica.
import { Cluster, Redis } from 'ioredis';
import { reconnectDelay, type RedisClient } from '../redis-client.js';
import { decodeRecord, encodeRecord } from './codec.js';
import { redisCall } from '../tracing/index.js';
import type { InvalidationListener, SessionStore, StoredSession } from './types.js';

export interface RedisStoreOptions {
  prefix: string;
  /** Called on every Redis failure so it can be counted and logged once, centrally. */
  onError?: (err: Error) => void;
  now?: () => number;
  /** false: write records in the previous version's form, which it can read (rolling upgrade). Default true. */
  compactRecords?: boolean;
}

/**
 * KEYS[1]: a user's index (score: the session's max-lifetime end, so the lowest is the oldest
 * sign-in). ARGV[1]: now (ms); ARGV[2]: how many to keep; ARGV[3..]: entries whose session is gone.
 * Removes the expired and gone entries, then the oldest beyond the cap, and returns those. Only
 * commands of the documented least-privilege ACL line are called (scripts are checked against it).
 */
const END_OLDEST_SCRIPT = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for i = 3, #ARGV do redis.call('ZREM', KEYS[1], ARGV[i]) end
local all = redis.call('ZRANGE', KEYS[1], 0, -1)
local excess = #all - tonumber(ARGV[2])
if excess <= 0 then return {} end
local oldest = {}
for i = 1, excess do
  oldest[i] = all[i]
  redis.call('ZREM', KEYS[1], all[i])
end
return oldest
`;

export function createRedisSessionStore(redis: RedisClient, options: RedisStoreOptions): SessionStore {
  const { prefix } = options;
  const now = options.now ?? Date.now;
  const encodeOptions = { compact: options.compactRecords !== false };
  const sessionKey = (idHash: string) => `${prefix}s:${idHash}`;
  const userKey = (user: string) => `${prefix}u:${user}`;
  const channel = `${prefix}invalidate`;
  const subscription = subscribeInvalidations(redis, channel, options.onError);

  const publish = async (idHashes: string[]) => {
    await Promise.all(idHashes.map((idHash) => redis.publish(channel, idHash)));
  };

  return {
    kind: 'redis',
    async create(idHash, record, ttlMs) {
      const index = userKey(record.user);
      // The session before its index entry: whoever finds an entry whose session key is missing
      // (endOldest) may then take that session as ended for good.
      await redisCall('create session', 'SET', () => redis.set(sessionKey(idHash), encodeRecord(record, encodeOptions), 'PX', ttlMs));
      await redisCall('index session', 'BATCH', () => Promise.all([
        redis.zadd(index, record.expiresAt, idHash),
        // Entries whose max lifetime has passed leave the index, so it never grows unbounded.
        redis.zremrangebyscore(index, '-inf', now()),
        // The index outlives none of its sessions: the newest one ends at most this late.
        redis.pexpireat(index, record.expiresAt),
      ]));
    },
    async get(idHash) {
      const text = await redisCall('get session', 'GET', () => redis.get(sessionKey(idHash)));
      return text === null ? null : decodeRecord(text);
    },
    async touch(idHash, record, ttlMs) {
      // XX: never resurrect a session that was revoked or expired in the meantime.
      const reply = await redisCall('touch session', 'SET', () => redis.set(sessionKey(idHash), encodeRecord(record, encodeOptions), 'PX', ttlMs, 'XX'));
      return reply === 'OK';
    },
    async delete(idHash, user) {
      const [deleted] = await redisCall('delete session', 'BATCH', () => Promise.all([redis.del(sessionKey(idHash)), redis.zrem(userKey(user), idHash)]));
      await publish([idHash]);
      return deleted > 0;
    },
    async listByUser(user) {
      const idHashes = await redis.zrangebyscore(userKey(user), now(), '+inf');
      const texts = await Promise.all(idHashes.map((idHash) => redis.get(sessionKey(idHash))));
      const result: StoredSession[] = [];
      idHashes.forEach((idHash, i) => {
        const record = texts[i] ? decodeRecord(texts[i]) : null;
        if (record) result.push({ idHash, record });
      });
      return result;
    },
    async deleteByUser(user) {
      const index = userKey(user);
      const idHashes = await redis.zrange(index, 0, -1);
      const deleted = await Promise.all(idHashes.map((idHash) => redis.del(sessionKey(idHash))));
      await redis.zrem(index, ...(idHashes.length > 0 ? idHashes : ['']));
      await publish(idHashes);
      return deleted.reduce((sum, n) => sum + n, 0);
    },
    async endOldest(user, keep) {
      const index = userKey(user);
      // Entries whose session already ended on its idle timeout are not sessions and must not
      // count. Dropping them outside the script is safe: ids are never reused, touch never
      // resurrects, and create writes a session before its entry. Each check is a one-key command
      // (the session keys live in other Cluster slots than the index).
      const members = await redis.zrange(index, 0, -1);
      const present = await Promise.all(members.map((idHash) => redis.exists(sessionKey(idHash))));
      const gone = members.filter((_, i) => present[i] === 0);
      // The choice of whom to end is one script on the index alone, so concurrent sign-ins on
      // several replicas are serialised by Redis and never end more, or other, sessions than the cap says.
      const ended = (await redis.eval(END_OLDEST_SCRIPT, 1, index, String(now()), String(keep), ...gone)) as string[];
      if (ended.length === 0) return [];
      await Promise.all(ended.map((idHash) => redis.del(sessionKey(idHash))));
      await publish(ended);
      return ended;
    },
    async ping() {
      await redis.ping();
    },
    invalidationsLive: () => subscription.live,
    onInvalidation(listener) {
      subscription.listeners.push(listener);
    },
    async close() {
      await subscription.close();
    },
  };
}

interface Subscription {
  live: boolean;
  listeners: InvalidationListener[];
  close(): Promise<void>;
}

/**
 * A dedicated connection listens for invalidations. While it is down the local caches cannot
 * be trusted (a revocation may be missed), so `live` turns false; when it is back, listeners
 * get a `reset` to flush what they hold.
 */
function subscribeInvalidations(redis: RedisClient, channel: string, onError?: (err: Error) => void): Subscription {
  let subscriber: RedisClient | null = null;
  let closed = false;
  const subscription: Subscription = {
    live: false,
    listeners: [],
    async close() {
      closed = true;
      subscription.live = false;
      subscriber?.disconnect();
    },
  };
  const emit = (event: Parameters<InvalidationListener>[0]) => subscription.listeners.forEach((l) => l(event));
  let everSubscribed = false;

  const attach = (connection: RedisClient) => {
    subscriber = connection;
    connection.on('message', (_channel: string, idHash: string) => emit({ kind: 'session', idHash }));
    connection.on('close', () => {
      subscription.live = false;
    });
    connection.on('error', (err: Error) => onError?.(err));
    const subscribe = () => {
      connection.subscribe(channel).then(
        () => {
          if (everSubscribed) emit({ kind: 'reset' });
          everSubscribed = true;
          subscription.live = true;
        },
        (err: Error) => onError?.(err),
      );
    };
    // ioredis re-subscribes by itself after a reconnect, but we subscribe explicitly on every
    // `ready` so we know the exact moment invalidations flow again.
    connection.on('ready', subscribe);
    if (connection.status === 'wait') connection.connect().catch((err: Error) => onError?.(err));
  };

  if (redis instanceof Cluster) {
    // The cluster's nodes are known once it is ready; until then nothing is cached as trusted.
    const start = () => {
      if (closed || subscriber) return;
      const connection = clusterSubscriber(redis);
      if (connection) attach(connection);
    };
    redis.on('ready', start);
    start();
  } else {
    attach(redis.duplicate());
  }
  return subscription;
}

/**
 * On Cluster, a duplicated Cluster would SUBSCRIBE on an internal connection that ioredis
 * replaces silently when it drops: no `close`/`ready` reaches us, so `live` would stay true
 * and no `reset` would follow, while invalidations published meanwhile are lost and the cache
 * keeps trusting revoked sessions (test/integration/redis-topologies.test.ts). Redis Cluster
 * forwards every PUBLISH to all nodes, so a plain connection to any node hears the channel and
 * reports its own drops. Each reconnect attempt moves on to the next node the cluster knows,
 * so the subscriber also survives the loss of its node.
 */
function clusterSubscriber(cluster: Cluster): Redis | null {
  const nodeAt = (i: number) => {
    const nodes = cluster.nodes('all');
    return nodes.length > 0 ? nodes[i % nodes.length] : undefined;
  };
  const first = nodeAt(0);
  if (!first) return null;
  const base = cluster.options.redisOptions ?? {};
  let attempt = 0;
  const subscriber: Redis = new Redis({
    ...base,
    host: first.options.host,
    port: first.options.port,
    lazyConnect: true,
    enableOfflineQueue: false,
    retryStrategy: (times) => {
      const next = nodeAt(++attempt);
      if (next) Object.assign(subscriber.options, { host: next.options.host, port: next.options.port });
      return reconnectDelay(times);
    },
  });
  return subscriber;
}
