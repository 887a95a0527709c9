// `session-gateway serve`: assemble the dependencies a Config asks for, listen on the proxy and
// admin ports, and shut down gracefully (SPEC section 7). app.ts builds; this file runs.
import { randomBytes } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import type { Logger } from 'pino';
import { createMetrics, type Metrics } from './admin/metrics.js';
import type { CounterSeries } from './admin/bound-metrics.js';
import { buildAdminApp, type DependencyCheck } from './admin/server.js';
import { createCsrfTokens, dropsSecureCookies } from './login/csrf.js';
import { hashPassword, prepareDummyHash, verifyPassword } from './users/passwords.js';
import { lowerPoolThreadPriority } from './users/hash-threads.js';
import { createMemoryThrottle, createRedisThrottle } from './login/throttle.js';
import { checkConfiguredQueries, createMemoryUserStore, createPgPool, createPostgresUserStore, type UserStore } from './users/user-store.js';
import { loadConfig, type Config } from './config/config.js';
import type { GatewayDeps } from './context.js';
import { createCookieSigner } from './session/id.js';
import { createLocalSessionCache } from './session/local-cache.js';
import { createSessionManager, type UserCheckOptions } from './session/manager.js';
import { createPasswordFingerprints } from './users/fingerprint.js';
import { createMemorySessionStore } from './session/memory-store.js';
import { connectRedis, createRedisClient, type RedisClient } from './redis-client.js';
import { createRedisSessionStore } from './session/redis-store.js';
import type { SessionStore, ValidationOutcome } from './session/types.js';
import { startWhoamiServer } from './demo/whoami.js';
import { identityTokensFromConfig } from './identity/signed-identity.js';
import { createTokenServices } from './tokens/services.js';
import { tokenApiRoutes } from './admin/token-api.js';
import { TOKEN_OUTCOMES, type TokenOutcome } from './tokens/verifier.js';
import type { MfaDeps } from './context.js';
import { createMemoryMfaStore, createPostgresMfaStore } from './mfa/store.js';
import { createMemoryPendingStore, createRedisPendingStore } from './mfa/pending.js';
import { createMemoryPasskeyStore, createPostgresPasskeyStore } from './mfa/webauthn-store.js';
import { createMemoryChallengeStore, createRedisChallengeStore } from './mfa/challenges.js';
import { createReplaceableLoginPage } from './login/login-page.js';
import { buildApp, replaceTlsContext } from './app.js';
import { createReloader, type ReloadResult } from './reload.js';
import { startTracing, tagSpan } from './tracing/index.js';
import { releaseStartUpMemory } from './startup-memory.js';

export interface RunningGateway {
  app: FastifyInstance;
  admin: FastifyInstance;
  deps: GatewayDeps;
  /** Proxy and admin addresses actually bound (ports may have been 0). */
  proxyPort: number;
  adminPort: number;
  /** The SPEC 7 sequence: not ready → delay → stop accepting → drain → close stores. */
  shutdown(): Promise<void>;
  /** SIGHUP (SPEC 8): read the files again and swap what changed, or keep everything and log why. */
  reload(): ReloadResult;
}

export interface StartOptions {
  logger: Logger;
  /** Where the embedded-mode password goes (standard error by default, outside the JSON log). */
  announce?: (text: string) => void;
  /** How a reload reads the configuration again (default: loadConfig over process.env). */
  loadConfig?: () => Config;
  /**
   * The process is the gateway's own (the CLI): shrink what start-up left in V8's young generation
   * before listening (startup-memory.ts). Not for a gateway started inside another program (tests).
   */
  releaseStartUpMemory?: boolean;
}

export const EMBEDDED_USER = 'demo';
const REDIS_STARTUP_WAIT_MS = 5_000;
const QUERY_CHECK_RETRY_MS = 5_000;

/** A start-up failure the operator fixes in the configuration: one line naming the variable. */
export class StartupError extends Error {}

export async function startGateway(config: Config, options: StartOptions): Promise<RunningGateway> {
  const { logger } = options;
  const metrics = createMetrics();
  const closers: Array<() => Promise<unknown>> = [];
  let draining = false;

  const secrets = config.sessionSecrets.length > 0 ? config.sessionSecrets : [randomBytes(32).toString('base64url')];
  if (config.sessionSecretGenerated && !config.embedded) {
    logger.warn('GATEWAY_SESSION_SECRET is not set: a random secret was generated, so sessions end when this process restarts');
  }
  const placeholders = documentationRanges(config.trustedProxyCidrs);
  if (placeholders.length > 0) {
    logger.warn({ placeholders }, 'GATEWAY_TRUSTED_PROXIES holds a documentation range (an example placeholder): replace it with your load balancer\'s addresses, or every client shares its address, and with it the per-address login limits');
  }
  if (config.cookieSecure && config.publicUrl && dropsSecureCookies(config.publicUrl.protocol, config.publicUrl.hostname)) {
    logger.warn('GATEWAY_PUBLIC_URL is http:// while cookies are Secure: browsers drop Secure cookies on plain http, so every sign-in fails as an expired form. Use https:// (TLS here or at the load balancer), or set GATEWAY_COOKIE_SECURE=false for plain-http testing');
  }

  const redis = config.redis ? createRedisClient(config.redis, { tlsCa: config.redisTlsCa, commandTimeoutMs: config.redisCommandTimeoutMs, connectTimeoutMs: config.redisConnectTimeoutMs }) : null;
  const store = createStore(config, redis, metrics, logger);
  closers.push(() => store.close());
  const { users, pool, checkUsers, stopChecks } = await createUsers(config, metrics, logger, options.announce).catch(async (err: unknown) => {
    await store.close().catch(() => undefined);
    redis?.disconnect();
    throw err;
  });
  closers.push(() => users.close());
  closers.push(async () => stopChecks());
  // The demo app exists only in the embedded demo mode: with a store or user database configured
  // and no GATEWAY_UPSTREAM the gateway is a forward-auth service, and nothing but its routes answers.
  const whoami = config.embedded ? await startWhoamiServer(`${config.authPrefix}/logout`) : null;
  if (whoami) closers.push(() => whoami.close());

  // Label series bound once (admin/bound-metrics.ts): counting a request is one addition.
  const cacheCounters = { hit: metrics.sessionCacheRequests.series('hit'), miss: metrics.sessionCacheRequests.series('miss') };
  const validationCounters = Object.fromEntries(
    (['valid', 'missing', 'invalid', 'expired', 'revoked'] as const).map((o) => [o, metrics.sessionValidations.series(o)]),
  ) as Record<ValidationOutcome, CounterSeries>;
  const cache = createLocalSessionCache({ maxEntries: config.cacheMaxEntries, ttlMs: config.cacheTtlMs });
  const signer = createCookieSigner(secrets);
  const sessions = createSessionManager({
    store,
    signer,
    cache,
    idleTimeoutMs: config.idleTimeoutMs,
    maxLifetimeMs: config.maxLifetimeMs,
    touchIntervalMs: config.touchIntervalMs,
    staleGraceMs: config.staleSessionGraceMs,
    userCheck: userRecheck(config, users, secrets, metrics),
    maxSessionsPerUser: config.maxSessionsPerUser,
    events: {
      cacheLookup: (result) => {
        cacheCounters[result].inc();
        tagSpan('gateway.session.cache', result);
      },
      validated: (outcome) => {
        validationCounters[outcome].inc();
        tagSpan('gateway.session.outcome', outcome);
      },
      storeError: (err, operation) => {
        metrics.storeErrors.inc({ store: 'redis' });
        logger.warn({ err: describe(err), operation }, 'session store operation failed');
      },
      storeLookup: (seconds) => metrics.storeOperationDuration.observe({ store: 'redis', operation: 'get_session' }, seconds),
      invalidation: (kind) => metrics.sessionCacheInvalidations.inc({ kind }),
      // SPEC 7: every revocation has an audit line; here the users table, not a person, revoked.
      userSessionsEnded: (user, reason, ended) =>
        logger.warn({ audit: 'revocation', user, sessions: ended, by: 'user_recheck', reason, outcome: 'success' }, 'sessions ended: the user changed in the user store'),
    },
  });
  const upstream = config.upstream ?? whoami?.url ?? null;
  const limits = { maxPerUser: config.loginMaxAttempts, maxPerIp: config.loginMaxAttemptsPerIp, windowMs: config.loginWindowMs };
  const throttle = redis ? createRedisThrottle(redis, config.redisPrefix, limits) : createMemoryThrottle(limits);
  const tokenCounters = Object.fromEntries(TOKEN_OUTCOMES.map((o) => [o, metrics.tokenValidations.labels(o)])) as Record<TokenOutcome, ReturnType<typeof metrics.tokenValidations.labels>>;
  const mfa = await createMfa(config, redis, pool, limits);
  const tokens = createTokenServices({
    pool,
    sessionStore: store,
    redis,
    redisPrefix: config.redisPrefix,
    findUser: (name) => users.find(name),
    verifyPassword: (stored, password, options) => verifyPassword(stored, password, options),
    allowPlaintext: config.allowPlaintextPasswords,
    throttle,
    cacheMaxEntries: config.cacheMaxEntries,
    cacheTtlMs: config.cacheTtlMs,
    lastUsedIntervalMs: config.touchIntervalMs,
    basicAuth: config.basicAuth,
    basicAuthCacheMs: config.basicAuthCacheMs,
    // Basic cannot carry a second step: a user who has one (or must enrol) uses an API token.
    ...(mfa ? { needsSecondFactor: async (user: string) => (await mfa.service.nextStep(user)) !== null } : {}),
    events: {
      validated: (outcome) => tokenCounters[outcome].inc(),
      storeError: (err, operation) => {
        metrics.storeErrors.inc({ store: 'postgres' });
        logger.warn({ err: describe(err), operation }, 'token store operation failed');
      },
    },
  });
  const loginPage = createReplaceableLoginPage(config.loginBranding);
  const deps: GatewayDeps = {
    config,
    sessions,
    users,
    tokens,
    throttle,
    csrf: createCsrfTokens(secrets),
    metrics,
    logger,
    upstream,
    identityTokens: identityTokensFromConfig(config, logger),
    mfa,
    loginPage,
  };

  if (redis) {
    // Wait a little for Redis so the first requests do not fail needlessly, but start even while
    // it is down: /readyz reports it and requests fail closed until the client reconnects.
    await connectRedis(redis, REDIS_STARTUP_WAIT_MS).catch((err: unknown) =>
      logger.error({ err: describe(err) }, 'Redis is not reachable yet; starting anyway and retrying in the background'),
    );
  }
  // Before the first hash: sign-ins then take the CPU the proxy leaves (users/hash-threads.ts).
  const hashThreads = await lowerPoolThreadPriority({ nice: config.hashThreadNice, idle: config.hashThreadIdle });
  if (hashThreads.applied) logger.info({ nice: hashThreads.nice, idle: hashThreads.idle, threads: hashThreads.threads }, 'password hashing threads run at a lower priority');
  else if (hashThreads.reason === 'no-named-threads') logger.warn('GATEWAY_HASH_THREAD_NICE: no libuv-worker threads found (needs Node 24 on Linux); hashing keeps the normal priority');
  if (hashThreads.applied && hashThreads.idleFailure !== undefined) logger.warn({ reason: hashThreads.idleFailure, nice: hashThreads.nice }, 'GATEWAY_HASH_THREAD_IDLE: the hashing threads could not be put under SCHED_IDLE; they keep their nice value only');
  // The first unknown-user login must not be slower than the rest (it would reveal the user is unknown).
  await prepareDummyHash();

  // Loaded only when configured: with tracing off no OpenTelemetry module is ever imported.
  if (config.tracing) {
    let lastReported = 0;
    const tracing = await startTracing(config.tracing, {
      // A collector outage fails every batch: one line a minute is enough.
      exportFailed: (err) => {
        if (Date.now() - lastReported < 60_000) return;
        lastReported = Date.now();
        logger.warn({ err: describe(err) }, 'tracing: spans could not be exported (dropped); retrying with the next batch');
      },
    });
    deps.tracing = tracing;
    closers.unshift(() => tracing.shutdown());
    logger.info({ endpoint: withoutCredentials(config.tracing.url), sampler: config.tracing.sampler }, 'tracing: spans are exported over OTLP/HTTP');
  }
  const app = await buildApp(deps);
  const checks: DependencyCheck[] = [];
  if (redis) checks.push({ name: 'redis', critical: true, check: () => store.ping() });
  if (checkUsers) checks.push({ name: 'postgres', critical: false, check: checkUsers });
  const admin = buildAdminApp({
    metrics,
    checks,
    isDraining: () => draining,
    beforeScrape: () => metrics.sessionCacheEntries.set(sessions.cacheSize),
    sessionApi: config.adminToken
      ? { token: config.adminToken, sessions, logger, routes: tokens.store ? [tokenApiRoutes({ store: tokens.store, invalidation: tokens.invalidation, logger })] : [] }
      : null,
  });

  if (options.releaseStartUpMemory === true) {
    const released = releaseStartUpMemory();
    const mib = (bytes: number) => Math.round((bytes / 1_048_576) * 10) / 10;
    if (released) logger.info({ youngGenerationMiB: [mib(released.beforeBytes), mib(released.afterBytes)], ms: Math.round(released.ms) }, 'start-up memory released');
  }
  try {
    await listen(app, config.host, config.port, 'GATEWAY_HOST', 'GATEWAY_PORT');
    await listen(admin, config.adminHost, config.adminPort, 'GATEWAY_ADMIN_HOST', 'GATEWAY_ADMIN_PORT');
  } catch (err) {
    await Promise.all([app.close(), admin.close()]).catch(() => undefined);
    for (const close of closers.reverse()) await close().catch(() => undefined);
    redis?.disconnect();
    throw err;
  }
  const proxyPort = portOf(app);
  const adminPort = portOf(admin);
  logger.info({ host: config.host, port: proxyPort, adminHost: config.adminHost, adminPort, upstream: deps.upstream?.origin ?? null, store: store.kind, users: users.kind }, 'session-gateway listening');

  let shuttingDown: Promise<void> | null = null;
  const shutdown = () => {
    shuttingDown ??= (async () => {
      draining = true;
      logger.info({ delayMs: config.shutdownDelayMs, timeoutMs: config.shutdownTimeoutMs }, 'shutting down: readiness off');
      await sleep(config.shutdownDelayMs);
      await drain(app, config.shutdownTimeoutMs, logger);
      await admin.close();
      for (const close of closers.reverse()) await close().catch(() => undefined);
      redis?.disconnect();
      logger.info('shutdown complete');
    })();
    return shuttingDown;
  };

  for (const outcome of ['success', 'failure'] as const) metrics.configReloads.inc({ outcome }, 0);
  const identityTokens = deps.identityTokens;
  const reloader = createReloader({
    current: config,
    load: options.loadConfig ?? (() => loadConfig(process.env)),
    logger,
    count: (outcome) => metrics.configReloads.inc({ outcome }),
    targets: {
      accessRules: (rules) => app.accessGate.replaceRules({ publicPaths: config.publicPaths, rules, logoutPaths: config.logoutPaths }),
      sessionSecrets: (next) => {
        signer.replaceSecrets(next);
        deps.csrf.replaceSecrets(next);
        // Cached entries skip the signature check: one signed with a secret just removed must not
        // stay valid for the cache's TTL, nor one signed with the old first secret go unrenewed.
        cache.clear();
      },
      ...(config.tls && { tls: (pair) => replaceTlsContext(app, pair) }),
      ...(identityTokens && { identityKeys: (next) => identityTokens.replaceKeys(next) }),
      loginBranding: (branding) => loginPage.replace(branding),
    },
  });
  const reload = (): ReloadResult => {
    if (shuttingDown) {
      logger.warn('configuration reload ignored: shutting down');
      return { outcome: 'failure', problems: ['shutting down'] };
    }
    return reloader.reload();
  };

  return { app, admin, deps, proxyPort, adminPort, shutdown, reload };
}

/**
 * GATEWAY_MFA optional|required: the gateway_mfa and passkey tables (or memory in the embedded
 * mode), pending sign-ins and challenges next to the sessions. The WebAuthn library (about 5 MiB
 * of heap with what it loads) and the TOTP one (0.8 MiB) are imported only here, so a gateway
 * without a second factor never loads them (mfa-off-modules.test.ts).
 */
async function createMfa(config: Config, redis: RedisClient | null, pool: pg.Pool | null, limits: { maxPerUser: number; maxPerIp: number; windowMs: number }): Promise<MfaDeps | null> {
  if (config.mfaMode === 'off') return null;
  const [{ createWebAuthn }, { createMfaService }] = await Promise.all([import('./mfa/webauthn.js'), import('./mfa/service.js')]);
  const mfaPrefix = `${config.redisPrefix}mfa:`;
  const passkeys = pool ? createPostgresPasskeyStore(pool) : createMemoryPasskeyStore();
  return {
    service: createMfaService({ mode: config.mfaMode, keys: config.mfaKeys, store: pool ? createPostgresMfaStore(pool) : createMemoryMfaStore(), passkeys }),
    pending: redis ? createRedisPendingStore(redis, config.redisPrefix) : createMemoryPendingStore(),
    throttle: redis ? createRedisThrottle(redis, mfaPrefix, limits) : createMemoryThrottle(limits),
    webauthn: createWebAuthn({ passkeys, challenges: redis ? createRedisChallengeStore(redis, config.redisPrefix) : createMemoryChallengeStore() }),
  };
}

/**
 * GATEWAY_USER_RECHECK_INTERVAL: how the session manager reads a session's user again. A store
 * error is already counted (and logged, at most every few seconds) by the user store itself.
 */
function userRecheck(config: Config, users: UserStore, secrets: string[], metrics: Metrics): UserCheckOptions | undefined {
  if (config.userRecheckIntervalMs <= 0) return undefined;
  return {
    intervalMs: config.userRecheckIntervalMs,
    ...createPasswordFingerprints(secrets),
    async read(user) {
      const started = performance.now();
      try {
        const found = await users.find(user);
        return found ? { email: found.email, groups: found.groups, disabled: found.disabled, passwordHash: found.passwordHash } : 'gone';
      } catch {
        return 'error';
      } finally {
        if (users.kind === 'postgres') metrics.storeOperationDuration.observe({ store: 'postgres', operation: 'recheck_user' }, (performance.now() - started) / 1_000);
      }
    },
  };
}

function createStore(config: Config, redis: RedisClient | null, metrics: Metrics, logger: Logger): SessionStore {
  if (!redis) return createMemorySessionStore();
  let lastLogged = 0;
  const onError = (err: Error) => {
    metrics.storeErrors.inc({ store: 'redis' });
    // A Redis outage emits an error per reconnect attempt; one line a few seconds is enough.
    if (Date.now() - lastLogged > 5_000) {
      lastLogged = Date.now();
      logger.error({ err: describe(err) }, 'Redis error');
    }
  };
  redis.on('error', onError);
  return createRedisSessionStore(redis, { prefix: config.redisPrefix, onError, compactRecords: config.sessionCompactRecords });
}

async function createUsers(
  config: Config,
  metrics: Metrics,
  logger: Logger,
  announce: (text: string) => void = (text) => process.stderr.write(text),
): Promise<{ users: UserStore; pool: pg.Pool | null; checkUsers: (() => Promise<void>) | null; stopChecks: () => void }> {
  if (config.databaseUrl) {
    const pool = createPgPool(config.databaseUrl);
    let lastLogged = 0;
    const users = createPostgresUserStore(pool, {
      userQuery: config.userQuery,
      rehashQuery: config.userRehashQuery,
      passwordQuery: config.userPasswordQuery,
      onError: (err) => {
        metrics.storeErrors.inc({ store: 'postgres' });
        // During an outage every user's recheck fails once per interval: one line a few seconds is enough.
        if (Date.now() - lastLogged > 5_000) {
          lastLogged = Date.now();
          logger.error({ err: describe(err) }, 'PostgreSQL error');
        }
      },
    });
    const stopChecks = await checkQueries(pool, config, logger).catch(async (err: unknown) => {
      await users.close().catch(() => undefined);
      throw err;
    });
    return { users, pool, checkUsers: () => users.ping(), stopChecks };
  }
  const password = randomBytes(12).toString('base64url');
  const users = createMemoryUserStore([
    { username: EMBEDDED_USER, passwordHash: await hashPassword(password), email: 'demo@example.com', groups: ['demo'], disabled: false },
  ]);
  logger.warn('DATABASE_URL is not set: using one generated user. NOT FOR PRODUCTION.');
  if (config.embedded) {
    logger.warn('embedded default mode: in-process sessions, generated user, built-in whoami app, insecure cookies. NOT FOR PRODUCTION.');
  }
  const warning = config.embedded ? '  WARNING: embedded demo mode, NOT FOR PRODUCTION (set REDIS_URL, DATABASE_URL, GATEWAY_UPSTREAM)\n' : '';
  announce(`\n${warning}  session-gateway demo user: ${EMBEDDED_USER}\n  password (shown once):     ${password}\n\n`);
  return { users, pool: null, checkUsers: null, stopChecks: () => undefined };
}

/**
 * GATEWAY_USER_QUERY and the write queries are checked against PostgreSQL before serving: a wrong
 * one stops start-up with one line (SPEC section 2). PostgreSQL down at start-up does not stop it
 * (readiness reports it); the check then runs in the background until it gets an answer, and a
 * wrong query is logged as an error. Returns a function that stops that background check.
 */
async function checkQueries(pool: ReturnType<typeof createPgPool>, config: Config, logger: Logger): Promise<() => void> {
  const queries = { userQuery: config.userQuery, rehashQuery: config.userRehashQuery, passwordQuery: config.userPasswordQuery };
  const first = await checkConfiguredQueries(pool, queries);
  if (first === 'ok') return () => undefined;
  if (first !== 'unreachable') throw new StartupError(first);
  logger.error('PostgreSQL is not reachable yet: GATEWAY_USER_QUERY will be checked once it is');
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const retry = async () => {
    const outcome = await checkConfiguredQueries(pool, queries);
    if (stopped) return;
    if (outcome === 'unreachable') schedule();
    else if (outcome !== 'ok') logger.error(outcome);
    else logger.info('GATEWAY_USER_QUERY checked: it returns username and password_hash');
  };
  const schedule = () => {
    timer = setTimeout(() => void retry().catch(() => stopped || schedule()), QUERY_CHECK_RETRY_MS);
    timer.unref();
  };
  schedule();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/** Listens, or fails with one line naming the variable to change (a second replica on one host). */
async function listen(server: FastifyInstance, host: string, port: number, hostVariable: string, portVariable: string): Promise<void> {
  try {
    await server.listen({ host, port });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    if (code === 'EADDRINUSE') throw new StartupError(`${portVariable}: ${where} is already in use (another process, or a second gateway on this host: give each replica its own GATEWAY_PORT and GATEWAY_ADMIN_PORT)`);
    if (code === 'EACCES') throw new StartupError(`${portVariable}: not permitted to listen on ${where} (ports below 1024 need privileges)`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') throw new StartupError(`${hostVariable}: cannot listen on ${where} (not an address of this machine)`);
    throw err;
  }
}

async function drain(app: FastifyInstance, timeoutMs: number, logger: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const result = await Promise.race([app.close().then(() => 'closed' as const), timedOut]);
  clearTimeout(timer);
  if (result === 'timeout') {
    logger.warn({ timeoutMs }, 'drain timed out: closing remaining connections');
    app.server.closeAllConnections();
  }
}

function portOf(app: FastifyInstance): number {
  const address = app.server.address();
  return typeof address === 'object' && address !== null ? address.port : 0;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function describe(err: unknown): { message: string; code?: string } {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code ? { message: err.message, code } : { message: err.message };
  }
  return { message: String(err) };
}

/** An endpoint as logged: no userinfo, no query. */
function withoutCredentials(url: string): string {
  const parsed = new URL(url);
  return `${parsed.origin}${parsed.pathname}`;
}

/** RFC 5737 / RFC 3849 ranges: what deploy examples use as placeholders, never a real proxy. */
const DOCUMENTATION_RANGES = (() => {
  const ranges = new BlockList();
  for (const net of ['192.0.2.0', '198.51.100.0', '203.0.113.0']) ranges.addSubnet(net, 24, 'ipv4');
  ranges.addSubnet('2001:db8::', 32, 'ipv6');
  return ranges;
})();

function documentationRanges(cidrs: readonly string[]): string[] {
  return cidrs.filter((cidr) => {
    const address = cidr.split('/')[0] ?? '';
    const family = isIP(address);
    return family !== 0 && DOCUMENTATION_RANGES.check(address, family === 6 ? 'ipv6' : 'ipv4');
  });
}
