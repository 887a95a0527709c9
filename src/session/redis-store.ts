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
  /** false: write records and index entries in the previous version's form, which it can read (rolling upgrade). Default true. */
  compactRecords?: boolean;
}

/**
 * A user's index entry for one session. Compact (written today): the id hash's 16 raw bytes, scored
 * by the session's max-lifetime end in whole seconds; the listpack of a one-session index is then 31
 * bytes, in jemalloc's 32-byte class instead of the 48 the previous form (the 22-character text,
 * scored in milliseconds) needed: 16 bytes less per session (until 2038, when seconds outgrow the
 * listpack's 32-bit integers and the entry its class again). Both forms are read, so an upgrade
 * loses no entry; the previous form is written with `compactRecords: false` (old replicas prune
 * entries scored in seconds as expired and cannot read raw bytes).
 */
const ID_HASH = /^[A-Za-z0-9_-]{21}[AQgw]$/;
const RAW_ID_HASH_BYTES = 16;
/** Scores at or above this are milliseconds (the previous form); below, seconds (year 5138). */
const MS_SCORES_FROM = 1e11;

/** The member for an id hash: raw bytes when it is one of ours (22 canonical base64url characters). */
function compactMember(idHash: string): Buffer | string {
  if (ID_HASH.test(idHash)) return Buffer.from(idHash, 'base64url');
  // Anything else (a test's short name) stays text; 16 bytes of text would read back as raw bytes.
  if (Buffer.byteLength(idHash) === RAW_ID_HASH_BYTES) throw new Error('an index member of 16 bytes must be an id hash');
  return idHash;
}

/** The id hash an index member stands for, in either form. */
function idHashOf(member: Buffer): string {
  return member.length === RAW_ID_HASH_BYTES ? member.toString('base64url') : member.toString();
}

/**
 * ioredis gives every command a Buffer-replying form, EVAL's included, but its types leave
 * `evalBuffer` out (and `callBuffer('EVAL', …)` drops the command name under auto-pipelining).
 */
type EvalBuffer = { evalBuffer(script: string, numkeys: number, ...args: Array<string | Buffer>): Promise<Buffer[]> };

/** An entry's score as epoch milliseconds, in either form. */
const scoreMs = (score: number) => (score >= MS_SCORES_FROM ? score : score * 1_000);

/**
 * KEYS[1]: a user's index (score: the session's max-lifetime end, in seconds or, in the previous
 * form, milliseconds; the lowest is the oldest sign-in). ARGV[1]: now (ms); ARGV[2]: how many to
 * keep; ARGV[3]: how many entries follow whose session is gone; then those entries; then pairs of
 * (entry, sign-in time in ms) read from the sessions. Removes the expired and gone entries, then
 * the oldest beyond the cap, and returns those. Sign-ins within one second share a score in the
 * compact form: their sign-in times order them, and an entry without one (newer than the caller's
 * read) counts as the newest. Only commands of the documented least-privilege ACL line are called
 * (scripts are checked against it).
 */
const END_OLDEST_SCRIPT = `
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', math.floor(now / 1000))
redis.call('ZREMRANGEBYSCORE', KEYS[1], ${MS_SCORES_FROM}, now)
local gone = tonumber(ARGV[3])
for i = 4, 3 + gone do redis.call('ZREM', KEYS[1], ARGV[i]) end
local signedInAt = {}
for i = 4 + gone, #ARGV - 1, 2 do signedInAt[ARGV[i]] = tonumber(ARGV[i + 1]) end
local flat = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local excess = #flat / 2 - tonumber(ARGV[2])
if excess <= 0 then return {} end
local all = {}
for i = 1, #flat, 2 do
  local score = tonumber(flat[i + 1])
  if score < ${MS_SCORES_FROM} then score = score * 1000 end
  all[#all + 1] = { member = flat[i], ends = score, signedIn = signedInAt[flat[i]] or math.huge }
end
table.sort(all, function(a, b)
  if a.ends ~= b.ends then return a.ends < b.ends end
  if a.signedIn ~= b.signedIn then return a.signedIn < b.signedIn end
  return a.member < b.member
end)
local oldest = {}
for i = 1, excess do
  oldest[i] = all[i].member
  redis.call('ZREM', KEYS[1], all[i].member)
end
return oldest
`;

export function createRedisSessionStore(redis: RedisClient, options: RedisStoreOptions): SessionStore {
  const { prefix } = options;
  const now = options.now ?? Date.now;
  const compact = options.compactRecords !== false;
  const encodeOptions = { compact };
  const member = (idHash: string): Buffer | string => (compact ? compactMember(idHash) : idHash);
  const score = (expiresAt: number) => (compact ? Math.ceil(expiresAt / 1_000) : expiresAt);
  /** Removes a user's expired entries of both forms. */
  const pruneExpired = (index: string) => {
    const at = now();
    return [redis.zremrangebyscore(index, '-inf', Math.floor(at / 1_000)), redis.zremrangebyscore(index, MS_SCORES_FROM, at)];
  };
  /** A user's entries as id hashes with their ends in ms, whichever form wrote them. */
  const entries = async (index: string) => {
    const flat = await redis.zrangeBuffer(index, 0, -1, 'WITHSCORES');
    const found: Array<{ idHash: string; member: Buffer; endsAt: number }> = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const raw = flat[i] as Buffer;
      found.push({ idHash: idHashOf(raw), member: raw, endsAt: scoreMs(Number((flat[i + 1] as Buffer).toString())) });
    }
    return found;
  };
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
        redis.zadd(index, score(record.expiresAt), member(idHash)),
        // Entries whose max lifetime has passed leave the index, so it never grows unbounded.
        ...pruneExpired(index),
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
      // Its entry in whichever form wrote it.
      const members = ID_HASH.test(idHash) ? [Buffer.from(idHash, 'base64url'), idHash] : [idHash];
      const [deleted] = await redisCall('delete session', 'BATCH', () => Promise.all([redis.del(sessionKey(idHash)), redis.zrem(userKey(user), ...members)]));
      await publish([idHash]);
      return deleted > 0;
    },
    async listByUser(user) {
      const at = now();
      const idHashes = (await entries(userKey(user))).filter((entry) => entry.endsAt > at).map((entry) => entry.idHash);
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
      const found = await entries(index);
      const idHashes = found.map((entry) => entry.idHash);
      const deleted = await Promise.all(idHashes.map((idHash) => redis.del(sessionKey(idHash))));
      if (found.length > 0) await redis.zrem(index, ...found.map((entry) => entry.member));
      await publish(idHashes);
      return deleted.reduce((sum, n) => sum + n, 0);
    },
    async endOldest(user, keep) {
      const index = userKey(user);
      // Entries whose session already ended on its idle timeout are not sessions and must not
      // count. Dropping them outside the script is safe: ids are never reused, touch never
      // resurrects, and create writes a session before its entry. Each check is a one-key command
      // (the session keys live in other Cluster slots than the index). The records also give each
      // live entry its sign-in time, which orders sign-ins that share a second.
      const found = await entries(index);
      const texts = await Promise.all(found.map((entry) => redis.get(sessionKey(entry.idHash))));
      const gone: Buffer[] = [];
      const signedIn: Array<Buffer | string> = [];
      found.forEach((entry, i) => {
        const text = texts[i];
        if (text === null || text === undefined) return void gone.push(entry.member);
        const createdAt = decodeRecord(text)?.createdAt;
        if (createdAt !== undefined) signedIn.push(entry.member, String(createdAt));
      });
      // The choice of whom to end is one script on the index alone, so concurrent sign-ins on
      // several replicas are serialised by Redis and never end more, or other, sessions than the cap says.
      const reply = await (redis as RedisClient & EvalBuffer).evalBuffer(END_OLDEST_SCRIPT, 1, index, String(now()), String(keep), String(gone.length), ...gone, ...signedIn);
      const ended = reply.map(idHashOf);
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
