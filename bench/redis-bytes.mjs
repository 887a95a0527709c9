// Redis memory per session, per-user index included — issue 13's "≤ 400 bytes" goal.
//
//   npm run build && node bench/redis-bytes.mjs
//
// Starts a disposable redis-server on 127.0.0.1 (stopped by PID at the end), then signs in N users
// once each through the built session manager (dist/): the same record, key layout, TTLs and
// password fingerprint a real sign-in writes (user `userN@corp`, an e-mail, three groups), minus the
// argon2 check and PostgreSQL, which write nothing to Redis. Reads `INFO memory` used_memory before
// and after, and MEMORY USAGE of one session key and one index key, and prints bytes per session.
//
// Environment: REDIS_BYTES_SESSIONS (100000), REDIS_BYTES_PER_USER (1), REDIS_BYTES_DIST (./dist:
// point it at another checkout's dist/ for a before/after on the same machine), REDIS_BYTES_USER and
// REDIS_BYTES_EMAIL (`user{n}@corp`, `user{n}@example.com`: {n} is the user's number; an empty
// e-mail stores none), REDIS_BYTES_GROUPS (`staff,engineering,vpn-users`), REDIS_BYTES_AGED_S (0: when
// set, every session is then rewritten as a touch and a user recheck this many seconds after its
// sign-in write it, through the store's own touch, so the figure is that of sessions in use).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const dist = resolve(process.env.REDIS_BYTES_DIST ?? join(root, 'dist'));
const SESSIONS = Number(process.env.REDIS_BYTES_SESSIONS ?? 100_000);
const PER_USER = Number(process.env.REDIS_BYTES_PER_USER ?? 1);
const USER = process.env.REDIS_BYTES_USER ?? 'user{n}@corp';
const EMAIL = process.env.REDIS_BYTES_EMAIL ?? 'user{n}@example.com';
const GROUPS = (process.env.REDIS_BYTES_GROUPS ?? 'staff,engineering,vpn-users').split(',').filter(Boolean);
const AGED_MS = Number(process.env.REDIS_BYTES_AGED_S ?? 0) * 1_000;
const load = (path) => import(pathToFileURL(join(dist, path)).href);

const freePort = () =>
  new Promise((ok) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });

const port = await freePort();
const dir = mkdtempSync(join(tmpdir(), 'redis-bytes-'));
const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
const accepts = () =>
  new Promise((ok) => {
    const socket = connect(port, '127.0.0.1', () => ok(true) || socket.destroy());
    socket.on('error', () => ok(false));
  });
for (let i = 0; !(await accepts()); i++) {
  if (i > 100) throw new Error('redis-server did not start');
  await sleep(50);
}
const redis = new Redis({ host: '127.0.0.1', port, enableAutoPipelining: true });
try {
  const { createRedisSessionStore } = await load('session/redis-store.js');
  const { createSessionManager } = await load('session/manager.js');
  const { createCookieSigner } = await load('session/id.js');
  const { createLocalSessionCache } = await load('session/local-cache.js');
  const { createPasswordFingerprints } = await load('users/fingerprint.js');
  const secret = 's'.repeat(32);
  const fingerprints = createPasswordFingerprints([secret]);
  const store = createRedisSessionStore(redis, { prefix: 'sgw:' });
  const manager = createSessionManager({
    store,
    signer: createCookieSigner([secret]),
    cache: createLocalSessionCache({ maxEntries: 16, ttlMs: 1_000 }),
    idleTimeoutMs: 30 * 60_000,
    maxLifetimeMs: 12 * 3_600_000,
    touchIntervalMs: 60_000,
    userCheck: { intervalMs: 5 * 60_000, read: async () => 'error', ...fingerprints },
  });
  await sleep(200);
  await redis.flushall();
  const memory = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))[1]);
  const before = await memory();
  const users = Math.ceil(SESSIONS / PER_USER);
  const hash = '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g';
  for (let done = 0; done < SESSIONS; done += 2_000) {
    const batch = [];
    for (let i = done; i < Math.min(SESSIONS, done + 2_000); i++) {
      const n = i % users;
      const email = EMAIL.replaceAll('{n}', String(n));
      batch.push(manager.create({ user: USER.replaceAll('{n}', String(n)), email: email === '' ? null : email, groups: GROUPS }, { passwordHash: hash }));
    }
    await Promise.all(batch);
  }
  if (AGED_MS > 0) {
    // Every session as a touch and a recheck AGED_MS after its sign-in leave it (same TTL).
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', 'sgw:s:*', 'COUNT', 2_000);
      cursor = next;
      const texts = keys.length === 0 ? [] : await redis.mget(keys);
      const { decodeRecord } = await load('session/codec.js');
      await Promise.all(
        keys.map((key, i) => {
          const record = decodeRecord(texts[i]);
          const aged = { ...record, touchedAt: record.createdAt + AGED_MS, checkedAt: record.createdAt + AGED_MS };
          return store.touch(key.slice('sgw:s:'.length), aged, 30 * 60_000);
        }),
      );
    } while (cursor !== '0');
  }
  const after = await memory();
  const [sessionKey] = await redis.keys('sgw:s*');
  const indexKey = (await redis.keys('sgw:u*'))[0];
  const value = await redis.get(sessionKey);
  const report = {
    sessions: SESSIONS,
    sessionsPerUser: PER_USER,
    agedSeconds: AGED_MS / 1_000,
    bytesPerSession: Math.round(((after - before) / SESSIONS) * 10) / 10,
    sessionKey,
    sessionKeyMemoryUsage: await redis.memory('USAGE', sessionKey),
    sessionValueBytes: Buffer.byteLength(value),
    indexKey,
    indexKeyMemoryUsage: await redis.memory('USAGE', indexKey),
    indexEncoding: await redis.object('ENCODING', indexKey),
    indexTtlMs: await redis.pttl(indexKey),
    sessionTtlMs: await redis.pttl(sessionKey),
    redis: /redis_version:(\S+)/.exec(await redis.info('server'))[1],
    dist,
  };
  console.log(JSON.stringify(report, null, 2));
  await store.close();
} finally {
  redis.disconnect();
  server.kill('SIGTERM');
  await new Promise((ok) => server.once('exit', ok));
  rmSync(dir, { recursive: true, force: true });
}
