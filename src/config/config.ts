// One place that turns the environment into a validated Config. Every problem is collected and
// reported together, one line each naming the variable (SPEC section 2), so an operator fixes a
// broken deployment in one round instead of one restart per typo.
import { readFileSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import { createSecureContext } from 'node:tls';
import { readLoginBranding, type LoginBranding } from '../login/login-branding.js';
import { parseDurationMs } from './duration.js';
import { canonicalHost, isWellFormedHost } from '../http.js';
import { findShadowedRules, parseAccessRules, type AccessRuleSpec } from '../access/rules.js';
import { prefixBase } from '../access/paths.js';
import type { HostPort, RedisConfig, RedisCredentials } from '../redis-client.js';
import type { IdentityTokenSettings } from '../identity/signed-identity.js';
import { SAMPLERS, type SamplerName, type TracingOptions } from '../tracing/index.js';
import { describeAlgKey, describeKey, IDENTITY_TOKEN_ALGS, parseSigningKey, type AsymmetricAlg, type IdentityTokenAlg, type SigningKey } from '../identity/keys.js';

export type { HostPort, RedisConfig, RedisCredentials };
/** The signed identity token's settings (GATEWAY_IDENTITY_JWT_*); the type lives beside the code that uses them. */
export type IdentityTokenConfig = IdentityTokenSettings;

export interface UpstreamRoute {
  /** Normalised path prefix without a trailing slash, e.g. `/reports`. */
  prefix: string;
  /** Origin only: the path is forwarded unchanged. */
  url: URL;
}

export interface Config {
  /** null: the built-in whoami demo app (embedded default mode). */
  upstream: URL | null;
  /** GATEWAY_UPSTREAM_ROUTES: path prefixes served by other upstreams (longest prefix wins). */
  upstreamRoutes: UpstreamRoute[];
  host: string;
  port: number;
  /** PEM certificate chain and key for TLS on the proxy listener; null: plain http (TLS at the load balancer). */
  tls: { cert: string; key: string } | null;
  publicUrl: URL | null;
  /** GATEWAY_ALLOWED_HOSTS, canonical (lower case, `name` or `name:port`); null: any well-formed Host. */
  allowedHosts: string[] | null;
  trustedProxies: BlockList | null;
  trustedProxyCidrs: string[];
  upstreamTimeoutMs: number;
  /** GATEWAY_REQUEST_TIMEOUT: the whole client request (headers and body) must arrive within this (then 408). */
  requestTimeoutMs: number;
  /** GATEWAY_HSTS: Strict-Transport-Security value for https responses; null: not sent. */
  hsts: string | null;
  preserveHost: boolean;
  headerUser: string;
  headerEmail: string;
  headerGroups: string;
  accessLog: boolean;
  /** GATEWAY_LOG_BATCH: one write(2) per event-loop turn instead of one per line (logger.ts). */
  logBatch: boolean;
  /** GATEWAY_RELEASE_STARTUP_MEMORY: one memory-reducing collection before listening (startup-memory.ts). */
  releaseStartUpMemory: boolean;
  /** Access-log lines for /_auth/verify too (the proxy in front already logs each request). */
  verifyAccessLog: boolean;
  shutdownDelayMs: number;
  shutdownTimeoutMs: number;
  staleSessionGraceMs: number;
  adminHost: string;
  adminPort: number;
  /** GATEWAY_ADMIN_TOKEN: bearer token of the admin listener's session API; null: the API is off. */
  adminToken: string | null;
  /** GATEWAY_MAX_SESSIONS_PER_USER: at sign-in, the user's oldest sessions beyond this end (0: no cap). */
  maxSessionsPerUser: number;
  /** null: the in-process session store (embedded default mode). */
  redis: RedisConfig | null;
  /** PEM CA bundle that Redis's TLS certificate (rediss://) must chain to; null: the system CAs. */
  redisTlsCa: string | null;
  /** A Redis command not answered within this fails (the request answers 503). */
  redisCommandTimeoutMs: number;
  /** A Redis connection attempt not established within this is retried. */
  redisConnectTimeoutMs: number;
  /** PEM CA bundle that an https upstream's certificate must chain to; null: the system CAs. */
  upstreamTlsCa: string | null;
  /** null: a generated single user (embedded default mode). */
  databaseUrl: string | null;
  /** First signs, all verify. */
  sessionSecrets: string[];
  sessionSecretGenerated: boolean;
  idleTimeoutMs: number;
  maxLifetimeMs: number;
  /** How often a session's idle deadline is pushed forward in the store (at most once per interval). */
  touchIntervalMs: number;
  /** GATEWAY_USER_RECHECK_INTERVAL: a session's user is read again from the user store this often; 0: never. */
  userRecheckIntervalMs: number;
  cacheMaxEntries: number;
  /** Nice value of libuv's pool threads, where password hashes run (Linux; 0 leaves them alone). */
  hashThreadNice: number;
  /** Whether libuv's pool threads also run under SCHED_IDLE (Linux), preempted whenever another thread wakes. */
  hashThreadIdle: boolean;
  cacheTtlMs: number;
  cookieName: string;
  cookieSecure: boolean;
  cookieDomain: string | null;
  authPrefix: string;
  publicPaths: string[];
  /** GATEWAY_ACCESS_RULES, validated; empty: every non-public path needs a session. */
  accessRules: AccessRuleSpec[];
  logoutPaths: string[];
  userQuery: string | null;
  userRehashQuery: string | null;
  /** GATEWAY_USER_PASSWORD_QUERY: how `users passwd` writes a legacy table; defaults to the rehash query. */
  userPasswordQuery: string | null;
  allowPlaintextPasswords: boolean;
  redisPrefix: string;
  /** GATEWAY_SESSION_COMPACT_RECORDS: false writes session records and user-index entries earlier versions can read. */
  sessionCompactRecords: boolean;
  loginMaxAttempts: number;
  loginWindowMs: number;
  loginMaxAttemptsPerIp: number;
  loginTitle: string;
  /** Open WebSockets have their session checked again this often (and their client pinged). */
  websocketRevalidateIntervalMs: number;
  /** Largest WebSocket message relayed either way; a bigger one closes the socket (1009). */
  websocketMaxMessageBytes: number;
  /** Logo, CSS and template files for the login page, read and checked at start-up. */
  loginBranding: LoginBranding;
  logLevel: string;
  /** True when none of Redis, PostgreSQL and the upstream is configured. */
  embedded: boolean;
  /** The signed X-Gateway-Identity token (GATEWAY_IDENTITY_JWT); null: off. */
  identityToken: IdentityTokenSettings | null;
  /** GATEWAY_BASIC_AUTH: `Authorization: Basic` (password or API token) accepted for non-browser clients. */
  basicAuth: boolean;
  /** GATEWAY_BASIC_AUTH_CACHE: how long a verified Basic credential is remembered in-process (0: never). */
  basicAuthCacheMs: number;
  /** GATEWAY_MFA: whether a second factor may be (optional) or must be (required) used. */
  mfaMode: 'off' | 'optional' | 'required';
  /** GATEWAY_MFA_ENCRYPTION_KEY: the first encrypts TOTP secrets, all decrypt. Empty when off. */
  mfaKeys: string[];
  /** OpenTelemetry tracing (standard OTEL_* variables); null: off, and no SDK is loaded. */
  tracing: TracingOptions | null;
}

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n${problems.join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

type Env = Readonly<Record<string, string | undefined>>;

/** Variables that carry secrets and so also have a `_FILE` form (Docker/Kubernetes secrets). */
export const SECRET_VARIABLES = [
  'GATEWAY_SESSION_SECRET',
  'DATABASE_URL',
  'REDIS_URL',
  'GATEWAY_IDENTITY_HMAC_SECRET',
  'REDIS_USERNAME',
  'REDIS_PASSWORD',
  'REDIS_SENTINEL_USERNAME',
  'REDIS_SENTINEL_PASSWORD',
  'GATEWAY_ADMIN_TOKEN',
  'GATEWAY_MFA_ENCRYPTION_KEY',
] as const;

// Every default, named once and used by the reading code below. docs/configuration.md's table
// (and README's copy of it) states the same values; test/unit/config-defaults.test.ts holds them equal.
export const DEFAULT_HOST = '0.0.0.0';
/** GATEWAY_HOST and GATEWAY_ADMIN_HOST in the embedded mode, which prints a password: loopback. */
export const DEFAULT_EMBEDDED_HOST = '127.0.0.1';
export const DEFAULT_PORT = 8000;
export const DEFAULT_UPSTREAM_TIMEOUT_MS = 30_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
export const DEFAULT_PRESERVE_HOST = true;
export const DEFAULT_HEADER_USER = 'X-Forwarded-User';
export const DEFAULT_HEADER_EMAIL = 'X-Forwarded-Email';
export const DEFAULT_HEADER_GROUPS = 'X-Forwarded-Groups';
export const DEFAULT_ACCESS_LOG = true;
export const DEFAULT_VERIFY_ACCESS_LOG = false;
export const DEFAULT_LOG_BATCH = false;
export const DEFAULT_RELEASE_STARTUP_MEMORY = true;
export const DEFAULT_SHUTDOWN_DELAY_MS = 0;
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 25_000;
export const DEFAULT_STALE_SESSION_GRACE_MS = 0;
export const DEFAULT_USER_RECHECK_INTERVAL_MS = 5 * 60_000;
export const DEFAULT_ADMIN_PORT = 9180;
export const DEFAULT_REDIS_COMMAND_TIMEOUT_MS = 2_000;
export const DEFAULT_REDIS_CONNECT_TIMEOUT_MS = 5_000;
export const DEFAULT_REDIS_TLS = false;
export const DEFAULT_SESSION_IDLE_TIMEOUT_MS = 30 * 60_000;
export const DEFAULT_SESSION_MAX_LIFETIME_MS = 12 * 3_600_000;
/** GATEWAY_SESSION_TOUCH_INTERVAL: this fraction of the idle timeout, and at least the minimum below. */
export const DEFAULT_SESSION_TOUCH_INTERVAL_DIVISOR = 10;
export const DEFAULT_SESSION_TOUCH_INTERVAL_MIN_MS = 1_000;
export const DEFAULT_SESSION_CACHE_SIZE = 100_000;
export const DEFAULT_SESSION_CACHE_TTL_MS = 60_000;
/** GATEWAY_HASH_THREAD_NICE: hashing yields to the proxy (bench/RESULTS.md, issue 13 item 4). */
export const DEFAULT_HASH_THREAD_NICE = 19;
/** GATEWAY_HASH_THREAD_IDLE: a waking event loop need not wait for a hash's time slice (bench/RESULTS.md, issue 13 item 4). */
export const DEFAULT_HASH_THREAD_IDLE = true;
/** GATEWAY_MAX_SESSIONS_PER_USER: 0, no cap. */
export const DEFAULT_MAX_SESSIONS_PER_USER = 0;
export const DEFAULT_COOKIE_NAME = 'sgw_session';
export const DEFAULT_AUTH_PREFIX = '/_auth';
export const DEFAULT_ALLOW_PLAINTEXT_PASSWORDS = false;
export const DEFAULT_REDIS_PREFIX = 'sgw:';
/** GATEWAY_SESSION_COMPACT_RECORDS: `false` only during a rolling upgrade from the previous release. */
export const DEFAULT_SESSION_COMPACT_RECORDS = true;
/** GATEWAY_BASIC_AUTH, GATEWAY_BASIC_AUTH_CACHE (docs/tokens.md). */
export const DEFAULT_BASIC_AUTH = false;
export const DEFAULT_BASIC_AUTH_CACHE_MS = 5 * 60_000;
/** GATEWAY_MFA (docs/second-factor.md). */
export const DEFAULT_MFA = 'off';
export const DEFAULT_LOGIN_MAX_ATTEMPTS = 5;
export const DEFAULT_LOGIN_WINDOW_MS = 15 * 60_000;
/** GATEWAY_LOGIN_MAX_ATTEMPTS_PER_IP: this many times GATEWAY_LOGIN_MAX_ATTEMPTS. */
export const DEFAULT_LOGIN_MAX_ATTEMPTS_PER_IP_FACTOR = 10;
export const DEFAULT_LOGIN_TITLE = 'Sign in';
/** GATEWAY_WEBSOCKET_REVALIDATE_INTERVAL: this, or half the idle timeout if that is shorter. */
export const DEFAULT_WEBSOCKET_REVALIDATE_INTERVAL_MS = 30_000;
export const DEFAULT_WEBSOCKET_MAX_MESSAGE_BYTES = 1024 * 1024;
export const DEFAULT_LOG_LEVEL = 'info';
export const DEFAULT_IDENTITY_JWT = false;
/** GATEWAY_IDENTITY_JWT_ALG without GATEWAY_IDENTITY_HMAC_SECRET (with it: HS256). */
export const DEFAULT_IDENTITY_JWT_ALG: IdentityTokenAlg = 'EdDSA';
export const DEFAULT_IDENTITY_JWT_LIFETIME_MS = 60_000;
export const DEFAULT_OTEL_TRACES_SAMPLER: SamplerName = 'parentbased_always_on';
export const DEFAULT_OTEL_TRACES_SAMPLER_ARG = 1;
export const DEFAULT_OTEL_TRACES_EXPORTER = 'otlp';
export const DEFAULT_OTEL_SDK_DISABLED = false;
export const DEFAULT_OTEL_BSP_SCHEDULE_DELAY_MS = 5_000;

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
const COOKIE_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
const MIN_SECRET_LENGTH = 32;
/** Node clamps a longer setTimeout to 1 ms: a value past this would fire at once, not late. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** A token outlives a revoked session by up to its lifetime, so that is kept short. */
const MAX_IDENTITY_TOKEN_LIFETIME_MS = 5 * 60_000;

/** Reads and validates the whole configuration; throws ConfigError listing every problem. */
export function loadConfig(env: Env = process.env): Config {
  const reader = new EnvReader(resolveFileVariables(env));
  const config = readAll(reader);
  checkCookiePrefix(reader, config);
  if (config.mfaMode === 'off' && config.accessRules.some((rule) => rule.mfa === true)) {
    reader.problem('GATEWAY_ACCESS_RULES: a rule with "mfa": true needs GATEWAY_MFA=optional or required (and GATEWAY_MFA_ENCRYPTION_KEY)');
  }
  if (reader.problems.length > 0) throw new ConfigError(reader.problems);
  return config;
}

function readAll(r: EnvReader): Config {
  const upstream = readUpstream(r);
  const redis = readRedis(r);
  const databaseUrl = r.url('DATABASE_URL', ['postgres:', 'postgresql:'])?.toString() ?? null;
  const embedded = !upstream && !redis && !databaseUrl;
  const secrets = readSecrets(r, redis !== null);
  const idleTimeoutMs = r.duration('GATEWAY_SESSION_IDLE_TIMEOUT', DEFAULT_SESSION_IDLE_TIMEOUT_MS, { min: 1_000 });
  const maxLifetimeMs = r.duration('GATEWAY_SESSION_MAX_LIFETIME', DEFAULT_SESSION_MAX_LIFETIME_MS, { min: 1_000 });
  const loginMaxAttempts = r.integer('GATEWAY_LOGIN_MAX_ATTEMPTS', DEFAULT_LOGIN_MAX_ATTEMPTS, { min: 1 });
  const authPrefix = readAuthPrefix(r);
  const publicPaths = r.pathList('GATEWAY_PUBLIC_PATHS');
  return {
    upstream,
    upstreamRoutes: readUpstreamRoutes(r, upstream, authPrefix),
    // Embedded demo mode prints a password: it listens on loopback unless told otherwise.
    host: r.string('GATEWAY_HOST', embedded ? DEFAULT_EMBEDDED_HOST : DEFAULT_HOST),
    port: r.integer('GATEWAY_PORT', DEFAULT_PORT, { min: 0, max: 65535 }),
    tls: readTls(r),
    publicUrl: readPublicUrl(r),
    allowedHosts: readAllowedHosts(r),
    ...readTrustedProxies(r),
    upstreamTimeoutMs: r.duration('GATEWAY_UPSTREAM_TIMEOUT', DEFAULT_UPSTREAM_TIMEOUT_MS, { min: 1, max: MAX_TIMER_MS }),
    requestTimeoutMs: r.duration('GATEWAY_REQUEST_TIMEOUT', DEFAULT_REQUEST_TIMEOUT_MS, { min: 100, max: MAX_TIMER_MS }),
    hsts: readHsts(r),
    preserveHost: r.boolean('GATEWAY_PRESERVE_HOST', DEFAULT_PRESERVE_HOST),
    headerUser: r.headerName('GATEWAY_HEADER_USER', DEFAULT_HEADER_USER),
    headerEmail: r.headerName('GATEWAY_HEADER_EMAIL', DEFAULT_HEADER_EMAIL),
    headerGroups: r.headerName('GATEWAY_HEADER_GROUPS', DEFAULT_HEADER_GROUPS),
    accessLog: r.boolean('GATEWAY_ACCESS_LOG', DEFAULT_ACCESS_LOG),
    verifyAccessLog: r.boolean('GATEWAY_VERIFY_ACCESS_LOG', DEFAULT_VERIFY_ACCESS_LOG),
    logBatch: r.boolean('GATEWAY_LOG_BATCH', DEFAULT_LOG_BATCH),
    releaseStartUpMemory: r.boolean('GATEWAY_RELEASE_STARTUP_MEMORY', DEFAULT_RELEASE_STARTUP_MEMORY),
    shutdownDelayMs: r.duration('GATEWAY_SHUTDOWN_DELAY', DEFAULT_SHUTDOWN_DELAY_MS, { max: MAX_TIMER_MS }),
    shutdownTimeoutMs: r.duration('GATEWAY_SHUTDOWN_TIMEOUT', DEFAULT_SHUTDOWN_TIMEOUT_MS, { max: MAX_TIMER_MS }),
    staleSessionGraceMs: r.duration('GATEWAY_STALE_SESSION_GRACE', DEFAULT_STALE_SESSION_GRACE_MS),
    userRecheckIntervalMs: r.duration('GATEWAY_USER_RECHECK_INTERVAL', DEFAULT_USER_RECHECK_INTERVAL_MS, { min: 0 }),
    adminHost: r.string('GATEWAY_ADMIN_HOST', embedded ? DEFAULT_EMBEDDED_HOST : DEFAULT_HOST),
    adminPort: r.integer('GATEWAY_ADMIN_PORT', DEFAULT_ADMIN_PORT, { min: 0, max: 65535 }),
    adminToken: readAdminToken(r),
    maxSessionsPerUser: r.integer('GATEWAY_MAX_SESSIONS_PER_USER', DEFAULT_MAX_SESSIONS_PER_USER, { min: 0 }),
    redis,
    redisTlsCa: readRedisCaFile(r),
    redisCommandTimeoutMs: r.duration('GATEWAY_REDIS_COMMAND_TIMEOUT', DEFAULT_REDIS_COMMAND_TIMEOUT_MS, { min: 1, max: MAX_TIMER_MS }),
    redisConnectTimeoutMs: r.duration('GATEWAY_REDIS_CONNECT_TIMEOUT', DEFAULT_REDIS_CONNECT_TIMEOUT_MS, { min: 1, max: MAX_TIMER_MS }),
    upstreamTlsCa: r.file('GATEWAY_UPSTREAM_CA_FILE'),
    databaseUrl,
    sessionSecrets: secrets.values,
    sessionSecretGenerated: secrets.generated,
    idleTimeoutMs,
    maxLifetimeMs,
    touchIntervalMs: r.duration('GATEWAY_SESSION_TOUCH_INTERVAL', Math.max(DEFAULT_SESSION_TOUCH_INTERVAL_MIN_MS, Math.floor(idleTimeoutMs / DEFAULT_SESSION_TOUCH_INTERVAL_DIVISOR)), { min: 0 }),
    cacheMaxEntries: r.integer('GATEWAY_SESSION_CACHE_SIZE', DEFAULT_SESSION_CACHE_SIZE, { min: 0 }),
    hashThreadNice: r.integer('GATEWAY_HASH_THREAD_NICE', DEFAULT_HASH_THREAD_NICE, { min: 0, max: 19 }),
    hashThreadIdle: r.boolean('GATEWAY_HASH_THREAD_IDLE', DEFAULT_HASH_THREAD_IDLE),
    cacheTtlMs: r.duration('GATEWAY_SESSION_CACHE_TTL', DEFAULT_SESSION_CACHE_TTL_MS, { min: 0 }),
    cookieName: r.cookieName('GATEWAY_COOKIE_NAME', DEFAULT_COOKIE_NAME),
    cookieSecure: r.boolean('GATEWAY_COOKIE_SECURE', !embedded),
    cookieDomain: r.optional('GATEWAY_COOKIE_DOMAIN'),
    authPrefix,
    publicPaths,
    accessRules: readAccessRules(r, publicPaths),
    logoutPaths: r.pathList('GATEWAY_LOGOUT_PATHS'),
    userQuery: readQuery(r, 'GATEWAY_USER_QUERY', 1),
    userRehashQuery: readQuery(r, 'GATEWAY_USER_REHASH_QUERY', 2),
    userPasswordQuery: readQuery(r, 'GATEWAY_USER_PASSWORD_QUERY', 2) ?? r.optional('GATEWAY_USER_REHASH_QUERY'),
    allowPlaintextPasswords: r.boolean('GATEWAY_ALLOW_PLAINTEXT_PASSWORDS', DEFAULT_ALLOW_PLAINTEXT_PASSWORDS),
    redisPrefix: r.string('GATEWAY_REDIS_PREFIX', DEFAULT_REDIS_PREFIX),
    sessionCompactRecords: r.boolean('GATEWAY_SESSION_COMPACT_RECORDS', DEFAULT_SESSION_COMPACT_RECORDS),
    loginMaxAttempts,
    loginWindowMs: r.duration('GATEWAY_LOGIN_WINDOW', DEFAULT_LOGIN_WINDOW_MS, { min: 1_000 }),
    loginMaxAttemptsPerIp: r.integer('GATEWAY_LOGIN_MAX_ATTEMPTS_PER_IP', loginMaxAttempts * DEFAULT_LOGIN_MAX_ATTEMPTS_PER_IP_FACTOR, { min: 1 }),
    loginTitle: r.string('GATEWAY_LOGIN_TITLE', DEFAULT_LOGIN_TITLE),
    websocketRevalidateIntervalMs: readWebSocketRevalidateInterval(r, idleTimeoutMs),
    websocketMaxMessageBytes: r.integer('GATEWAY_WEBSOCKET_MAX_MESSAGE_BYTES', DEFAULT_WEBSOCKET_MAX_MESSAGE_BYTES, { min: 125 }),
    loginBranding: readLoginBranding(r),
    logLevel: r.oneOf('LOG_LEVEL', DEFAULT_LOG_LEVEL, LOG_LEVELS),
    embedded,
    identityToken: readIdentityToken(r, redis !== null, secrets.values),
    basicAuth: r.boolean('GATEWAY_BASIC_AUTH', DEFAULT_BASIC_AUTH),
    // A password checked this long ago still opens requests: kept short, like a session's cache.
    basicAuthCacheMs: r.duration('GATEWAY_BASIC_AUTH_CACHE', DEFAULT_BASIC_AUTH_CACHE_MS, { min: 0, max: 24 * 3_600_000 }),
    ...readMfa(r, secrets.values),
    tracing: readTracing(r),
  };
}

const SAMPLER_NAMES = new Set<string>(SAMPLERS);

/**
 * The standard OpenTelemetry variables, read as the specification defines them: the generic
 * endpoint gets `/v1/traces` appended, the traces endpoint is used as it is. Checked here so that a
 * typo is one line at start-up rather than a silently different sampler.
 */
function readTracing(r: EnvReader): TracingOptions | null {
  const specific = r.url('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', ['http:', 'https:']);
  const generic = r.url('OTEL_EXPORTER_OTLP_ENDPOINT', ['http:', 'https:']);
  const sampler = r.optional('OTEL_TRACES_SAMPLER')?.toLowerCase() ?? DEFAULT_OTEL_TRACES_SAMPLER;
  if (!SAMPLER_NAMES.has(sampler)) r.problem(`OTEL_TRACES_SAMPLER must be one of ${SAMPLERS.join(', ')} (got ${JSON.stringify(sampler)})`);
  const ratioText = r.optional('OTEL_TRACES_SAMPLER_ARG');
  const ratio = ratioText === null ? DEFAULT_OTEL_TRACES_SAMPLER_ARG : Number(ratioText);
  if (ratioText !== null && (!/^\d*\.?\d+$/.test(ratioText) || ratio > 1)) {
    r.problem(`OTEL_TRACES_SAMPLER_ARG must be a ratio between 0 and 1 (got ${JSON.stringify(ratioText)})`);
  }
  const serviceName = r.optional('OTEL_SERVICE_NAME');
  const exporter = r.optional('OTEL_TRACES_EXPORTER')?.toLowerCase() ?? DEFAULT_OTEL_TRACES_EXPORTER;
  if (exporter !== 'otlp' && exporter !== 'none') r.problem(`OTEL_TRACES_EXPORTER must be otlp or none (got ${JSON.stringify(exporter)})`);
  const disabled = r.boolean('OTEL_SDK_DISABLED', DEFAULT_OTEL_SDK_DISABLED) || exporter === 'none';
  const exportDelayMs = r.integer('OTEL_BSP_SCHEDULE_DELAY', DEFAULT_OTEL_BSP_SCHEDULE_DELAY_MS, { min: 1, max: MAX_TIMER_MS });
  if ((!specific && !generic) || disabled) return null;
  const url = specific ? specific.toString() : `${generic?.toString().replace(/\/$/, '')}/v1/traces`;
  return {
    url,
    serviceName,
    sampler: (SAMPLER_NAMES.has(sampler) ? sampler : DEFAULT_OTEL_TRACES_SAMPLER) as SamplerName,
    samplerRatio: ratio >= 0 && ratio <= 1 ? ratio : DEFAULT_OTEL_TRACES_SAMPLER_ARG,
    exportDelayMs,
  };
}

const MFA_MODES = new Set(['off', 'optional', 'required']);

function readMfa(r: EnvReader, sessionSecrets: string[]): { mfaMode: Config['mfaMode']; mfaKeys: string[] } {
  const mfaMode = r.oneOf('GATEWAY_MFA', DEFAULT_MFA, MFA_MODES) as Config['mfaMode'];
  const mfaKeys = r.list('GATEWAY_MFA_ENCRYPTION_KEY');
  if (mfaMode === 'off') return { mfaMode, mfaKeys: [] };
  if (mfaKeys.length === 0) {
    r.problem(`GATEWAY_MFA_ENCRYPTION_KEY is required when GATEWAY_MFA=${mfaMode} (it encrypts TOTP secrets at rest; replicas must share it); e.g. \`openssl rand -base64 48\``);
  }
  mfaKeys.forEach((key, index) => {
    if (key.length < MIN_SECRET_LENGTH) r.problem(`GATEWAY_MFA_ENCRYPTION_KEY: key #${index + 1} is shorter than ${MIN_SECRET_LENGTH} characters`);
    else if (sessionSecrets.includes(key)) r.problem(`GATEWAY_MFA_ENCRYPTION_KEY: key #${index + 1} is also a GATEWAY_SESSION_SECRET; use a key of its own`);
  });
  return { mfaMode, mfaKeys };
}

/**
 * Browsers drop a `__Secure-` cookie set without Secure, and a `__Host-` one set without Secure or
 * with a Domain (RFC 6265bis section 4.1.3; prefixes match without case): nobody could sign in.
 */
function checkCookiePrefix(r: EnvReader, config: Config): void {
  const name = config.cookieName.toLowerCase();
  const prefix = name.startsWith('__host-') ? '__Host-' : name.startsWith('__secure-') ? '__Secure-' : null;
  if (prefix === null) return;
  if (!config.cookieSecure) r.problem(`GATEWAY_COOKIE_NAME: a ${prefix} cookie needs GATEWAY_COOKIE_SECURE=true (browsers drop it otherwise)`);
  if (prefix === '__Host-' && config.cookieDomain !== null) r.problem('GATEWAY_COOKIE_NAME: a __Host- cookie must not have GATEWAY_COOKIE_DOMAIN (browsers drop it otherwise); unset one');
}

function readRedis(r: EnvReader): RedisConfig | null {
  const url = readRedisUrl(r);
  const sentinels = r.hostPorts('REDIS_SENTINELS');
  const clusterNodes = r.hostPorts('REDIS_CLUSTER_NODES');
  const sentinelName = r.optional('REDIS_SENTINEL_NAME');
  const chosen = [url, sentinels, clusterNodes].filter((v) => v !== null).length;
  if (chosen > 1) {
    r.problem('REDIS_URL, REDIS_SENTINELS and REDIS_CLUSTER_NODES are alternatives: set only one');
    return null;
  }
  const credentials = readRedisCredentials(r, url, sentinels !== null, chosen === 1);
  if (url) return { mode: 'standalone', url: url.toString(), ...credentials };
  if (sentinels) {
    if (!sentinelName) r.problem('REDIS_SENTINEL_NAME is required with REDIS_SENTINELS (the master name)');
    return { mode: 'sentinel', sentinels, name: sentinelName ?? '', ...credentials };
  }
  if (clusterNodes) return { mode: 'cluster', nodes: clusterNodes, ...credentials };
  return null;
}

/**
 * REDIS_USERNAME / REDIS_PASSWORD and the Sentinels' own pair (SPEC section 2). A REDIS_URL that
 * already carries userinfo and a variable are refused together rather than one silently winning:
 * an operator rotating one of them would otherwise keep using the other. Problem lines name the
 * variables only, never a value.
 */
function readRedisCredentials(r: EnvReader, url: URL | null, sentinelMode: boolean, redisConfigured: boolean): RedisCredentials {
  const username = r.optional('REDIS_USERNAME');
  const password = r.optional('REDIS_PASSWORD');
  if (!redisConfigured && (username !== null || password !== null)) {
    r.problem('REDIS_USERNAME/REDIS_PASSWORD are set but no Redis is: set REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES');
  }
  if (url && (url.username !== '' || url.password !== '') && (username !== null || password !== null)) {
    r.problem('REDIS_URL carries a user or password and REDIS_USERNAME/REDIS_PASSWORD is set too: put the credentials in one place only');
  }
  if (username !== null && password === null) r.problem('REDIS_USERNAME needs REDIS_PASSWORD (an ACL user signs in with both)');
  const sentinelUsername = r.optional('REDIS_SENTINEL_USERNAME');
  const sentinelPassword = r.optional('REDIS_SENTINEL_PASSWORD');
  if (!sentinelMode && (sentinelUsername !== null || sentinelPassword !== null)) {
    r.problem('REDIS_SENTINEL_USERNAME/REDIS_SENTINEL_PASSWORD only apply with REDIS_SENTINELS');
  }
  if (sentinelUsername !== null && sentinelPassword === null) r.problem('REDIS_SENTINEL_USERNAME needs REDIS_SENTINEL_PASSWORD');
  const tls = r.boolean('REDIS_TLS', DEFAULT_REDIS_TLS);
  if (tls && url) r.problem('REDIS_TLS applies to REDIS_SENTINELS and REDIS_CLUSTER_NODES; for REDIS_URL write rediss:// instead');
  return {
    ...(username !== null && { username }),
    ...(password !== null && { password }),
    ...(sentinelUsername !== null && { sentinelUsername }),
    ...(sentinelPassword !== null && { sentinelPassword }),
    ...(tls && !url && { tls: true as const }),
  };
}

/** REDIS_CA_FILE is SPEC's name; GATEWAY_REDIS_CA_FILE, the older one, is still read as an alias. */
function readRedisCaFile(r: EnvReader): string | null {
  const hasNew = r.optional('REDIS_CA_FILE') !== null;
  if (hasNew && r.optional('GATEWAY_REDIS_CA_FILE') !== null) {
    r.problem('REDIS_CA_FILE and GATEWAY_REDIS_CA_FILE (its older name) are both set: set only one');
    return null;
  }
  return r.file(hasNew ? 'REDIS_CA_FILE' : 'GATEWAY_REDIS_CA_FILE');
}

/**
 * ioredis reads anything that does not start with `redis://` or `rediss://` (e.g. `redis:/host:6379`)
 * as a unix socket path, and a path that is not a database number, or a `?path=` option, as one too:
 * it would then retry ENOENT forever. Only a URL it reads as a TCP host is accepted.
 */
function readRedisUrl(r: EnvReader): URL | null {
  const url = r.url('REDIS_URL', ['redis:', 'rediss:']);
  if (!url) return null;
  const raw = r.optional('REDIS_URL') ?? '';
  if (!/^rediss?:\/\/[^/?#]/i.test(raw) || url.hostname === '' || !/^(\/\d*)?$/.test(url.pathname) || url.searchParams.has('path')) {
    r.problem('REDIS_URL must be redis://host:port or rediss://host:port (optionally /<database number>), with two slashes and a host');
    return null;
  }
  return url;
}

function readSecrets(r: EnvReader, redisConfigured: boolean): { values: string[]; generated: boolean } {
  const raw = r.optional('GATEWAY_SESSION_SECRET');
  if (raw === null) {
    if (redisConfigured) {
      r.problem('GATEWAY_SESSION_SECRET is required when Redis is configured (replicas must share it); e.g. `openssl rand -base64 48`');
    }
    return { values: [], generated: true };
  }
  const values = raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (values.length === 0) r.problem('GATEWAY_SESSION_SECRET is empty');
  values.forEach((secret, index) => {
    if (secret.length < MIN_SECRET_LENGTH) {
      r.problem(`GATEWAY_SESSION_SECRET: secret #${index + 1} is shorter than ${MIN_SECRET_LENGTH} characters`);
    }
  });
  return { values, generated: false };
}

function readIdentityToken(r: EnvReader, redisConfigured: boolean, sessionSecrets: string[]): IdentityTokenSettings | null {
  if (!r.boolean('GATEWAY_IDENTITY_JWT', DEFAULT_IDENTITY_JWT)) return null;
  const hmacSecret = r.optional('GATEWAY_IDENTITY_HMAC_SECRET');
  const alg = r.oneOf('GATEWAY_IDENTITY_JWT_ALG', hmacSecret ? 'HS256' : DEFAULT_IDENTITY_JWT_ALG, IDENTITY_TOKEN_ALGS) as IdentityTokenAlg;
  const keyFiles = r.list('GATEWAY_IDENTITY_JWT_KEY_FILES');
  const lifetimeMs = r.duration('GATEWAY_IDENTITY_JWT_LIFETIME', DEFAULT_IDENTITY_JWT_LIFETIME_MS, { min: 10_000 });
  if (lifetimeMs > MAX_IDENTITY_TOKEN_LIFETIME_MS) {
    r.problem(`GATEWAY_IDENTITY_JWT_LIFETIME must be at most 5m: a token stays valid that long after its session is revoked (got ${JSON.stringify(r.optional('GATEWAY_IDENTITY_JWT_LIFETIME'))})`);
  }
  const settings = { alg, keys: [] as SigningKey[], hmacSecret, issuer: r.optional('GATEWAY_IDENTITY_JWT_ISSUER'), audience: r.optional('GATEWAY_IDENTITY_JWT_AUDIENCE'), lifetimeMs };
  if (alg === 'HS256') {
    if (keyFiles.length > 0) r.problem('GATEWAY_IDENTITY_JWT_KEY_FILES and GATEWAY_IDENTITY_HMAC_SECRET are alternatives (public keys or a shared secret): set only one');
    if (!hmacSecret) r.problem('GATEWAY_IDENTITY_JWT_ALG=HS256 needs GATEWAY_IDENTITY_HMAC_SECRET (the secret shared with the app)');
    else if (hmacSecret.length < MIN_SECRET_LENGTH) r.problem(`GATEWAY_IDENTITY_HMAC_SECRET is shorter than ${MIN_SECRET_LENGTH} characters`);
    // The app holds this one; if it also signed cookies, the app could mint sessions for anyone.
    else if (sessionSecrets.includes(hmacSecret)) r.problem('GATEWAY_IDENTITY_HMAC_SECRET must differ from every GATEWAY_SESSION_SECRET (the app holds it; it must not be able to sign cookies)');
    return settings;
  }
  if (hmacSecret) r.problem(`GATEWAY_IDENTITY_HMAC_SECRET means HS256 tokens, but GATEWAY_IDENTITY_JWT_ALG is ${alg}: unset one`);
  if (keyFiles.length === 0 && redisConfigured) {
    r.problem('GATEWAY_IDENTITY_JWT_KEY_FILES is required when Redis is configured and GATEWAY_IDENTITY_JWT=true (replicas must sign with and publish the same keys); e.g. `session-gateway keys generate > identity.pem`');
  }
  settings.keys = readSigningKeys(r, keyFiles, alg);
  return settings;
}

/** Every file must hold a usable key; the first signs, so it must match the algorithm. */
function readSigningKeys(r: EnvReader, files: string[], alg: AsymmetricAlg): SigningKey[] {
  const keys: SigningKey[] = [];
  files.forEach((file, index) => {
    let pem: string;
    try {
      pem = readFileSync(file, 'utf8');
    } catch (err) {
      r.problem(`GATEWAY_IDENTITY_JWT_KEY_FILES: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      return;
    }
    const parsed = parseSigningKey(pem);
    if (!parsed.ok) {
      r.problem(`GATEWAY_IDENTITY_JWT_KEY_FILES: ${file} ${parsed.reason}`);
    } else if (keys.some((k) => k.kid === parsed.key.kid)) {
      r.problem(`GATEWAY_IDENTITY_JWT_KEY_FILES: ${file} holds the same key as an earlier file`);
    } else if (index === 0 && parsed.key.alg !== alg) {
      r.problem(`GATEWAY_IDENTITY_JWT_KEY_FILES: the first key signs, so it must be ${describeAlgKey(alg)} key for GATEWAY_IDENTITY_JWT_ALG=${alg} (${file} holds ${describeKey(parsed.key.privateKey)} key)`);
    } else {
      keys.push(parsed.key);
    }
  });
  return keys;
}

/**
 * The admin API's bearer token opens every user's sessions: long enough not to be guessed, and
 * made of what an `Authorization` header carries as it is (no spaces or control characters).
 * The value is never echoed in a problem line.
 */
function readAdminToken(r: EnvReader): string | null {
  const token = r.optional('GATEWAY_ADMIN_TOKEN');
  if (token === null) return null;
  if (!/^[\x21-\x7e]+$/.test(token)) {
    r.problem('GATEWAY_ADMIN_TOKEN must be printable ASCII without spaces (it travels in an Authorization header)');
    return null;
  }
  if (token.length < MIN_SECRET_LENGTH) {
    r.problem(`GATEWAY_ADMIN_TOKEN must be at least ${MIN_SECRET_LENGTH} characters (e.g. \`openssl rand -base64 32\`)`);
    return null;
  }
  return token;
}

function readTls(r: EnvReader): { cert: string; key: string } | null {
  const certPath = r.optional('GATEWAY_TLS_CERT');
  const keyPath = r.optional('GATEWAY_TLS_KEY');
  if (!certPath && !keyPath) return null;
  if (!certPath || !keyPath) {
    r.problem('GATEWAY_TLS_CERT and GATEWAY_TLS_KEY go together: set both (PEM file paths) or neither');
    return null;
  }
  const cert = r.file('GATEWAY_TLS_CERT');
  const key = r.file('GATEWAY_TLS_KEY');
  if (!cert || !key) return null;
  // Checked here rather than when the listener is made: at start-up a bad pair is then one line
  // instead of a crash, and a SIGHUP reload refuses it before swapping anything.
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    const reason = (err as Error).message.replace(/^error:[0-9A-Fa-f]+:[^:]*:[^:]*:/, '');
    r.problem(`GATEWAY_TLS_CERT / GATEWAY_TLS_KEY: ${certPath} and ${keyPath} are not a usable PEM certificate and matching private key (${reason})`);
    return null;
  }
  return { cert, key };
}

/** RFC 6797 §6.1 directives as browsers act on them; anything else is most likely a typo. */
function readHsts(r: EnvReader): string | null {
  const value = r.optional('GATEWAY_HSTS');
  if (value === null) return null;
  if (!/^max-age=\d{1,10}(\s*;\s*includeSubDomains)?(\s*;\s*preload)?$/i.test(value)) {
    r.problem(`GATEWAY_HSTS must look like max-age=31536000[; includeSubDomains][; preload] (got ${JSON.stringify(value)})`);
    return null;
  }
  return value;
}

function readAuthPrefix(r: EnvReader): string {
  const prefix = r.string('GATEWAY_AUTH_PREFIX', DEFAULT_AUTH_PREFIX);
  if (!/^\/[A-Za-z0-9._~-]+(\/[A-Za-z0-9._~-]+)*$/.test(prefix)) {
    r.problem(`GATEWAY_AUTH_PREFIX must be a path like /_auth (got ${JSON.stringify(prefix)})`);
    return DEFAULT_AUTH_PREFIX;
  }
  return prefix;
}

function readPublicUrl(r: EnvReader): URL | null {
  const url = r.url('GATEWAY_PUBLIC_URL', ['http:', 'https:']);
  if (url && (url.pathname !== '/' || url.search !== '' || url.hash !== '')) {
    r.problem('GATEWAY_PUBLIC_URL must be an origin only, like https://app.example.com (no path)');
  }
  return url;
}

function readAllowedHosts(r: EnvReader): string[] | null {
  const entries = r.list('GATEWAY_ALLOWED_HOSTS');
  if (entries.length === 0) return null;
  const bad = entries.filter((entry) => !isWellFormedHost(entry));
  if (bad.length > 0) r.problem(`GATEWAY_ALLOWED_HOSTS: ${bad.map((b) => JSON.stringify(b)).join(', ')} is not a host name or address with an optional :port`);
  return entries.filter((entry) => isWellFormedHost(entry)).map((entry) => canonicalHost(entry).withPort);
}

function readTrustedProxies(r: EnvReader): { trustedProxies: BlockList | null; trustedProxyCidrs: string[] } {
  const list = r.list('GATEWAY_TRUSTED_PROXIES');
  if (list.length === 0) return { trustedProxies: null, trustedProxyCidrs: [] };
  const blockList = new BlockList();
  for (const entry of list) {
    const [address = '', bitsText] = entry.split('/');
    const family = isIP(address);
    const maxBits = family === 6 ? 128 : 32;
    // Digits only ("10.0.0.0/" is not /0), and at least /1: fastify's trustProxy (proxy-addr)
    // throws on /0 and on an empty mask, which would crash start-up instead of naming the variable.
    const bits = bitsText === undefined ? maxBits : /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : NaN;
    if (family === 0 || !Number.isInteger(bits) || bits < 1 || bits > maxBits) {
      r.problem(`GATEWAY_TRUSTED_PROXIES: ${JSON.stringify(entry)} is not an IP address or CIDR`);
      continue;
    }
    blockList.addSubnet(address, bits, family === 6 ? 'ipv6' : 'ipv4');
  }
  return { trustedProxies: blockList, trustedProxyCidrs: list };
}

function readWebSocketRevalidateInterval(r: EnvReader, idleTimeoutMs: number): number {
  const intervalMs = r.duration('GATEWAY_WEBSOCKET_REVALIDATE_INTERVAL', Math.min(DEFAULT_WEBSOCKET_REVALIDATE_INTERVAL_MS, Math.floor(idleTimeoutMs / 2)), { min: 100, max: MAX_TIMER_MS });
  // A socket's client messages count as activity only at each check: checking less often than
  // twice per idle timeout would let an active socket's session expire under it.
  if (intervalMs > idleTimeoutMs / 2) {
    r.problem(`GATEWAY_WEBSOCKET_REVALIDATE_INTERVAL must be at most half of GATEWAY_SESSION_IDLE_TIMEOUT (${idleTimeoutMs / 2} ms)`);
  }
  return intervalMs;
}

function readUpstream(r: EnvReader): URL | null {
  const url = r.url('GATEWAY_UPSTREAM', ['http:', 'https:']);
  // The request path is forwarded unchanged; an upstream path would have to be spliced in front
  // of every request (and every Location header and cookie path taken back out), which is not built.
  if (url && (url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '')) {
    r.problem('GATEWAY_UPSTREAM must be an origin like http://127.0.0.1:8080 (no path, query or credentials: the request path is forwarded unchanged)');
    return null;
  }
  return url;
}

function readUpstreamRoutes(r: EnvReader, upstream: URL | null, authPrefix: string): UpstreamRoute[] {
  const entries = r.list('GATEWAY_UPSTREAM_ROUTES');
  if (entries.length > 0 && !upstream) r.problem('GATEWAY_UPSTREAM_ROUTES needs GATEWAY_UPSTREAM (the app serving every other path)');
  const routes: UpstreamRoute[] = [];
  for (const entry of entries) {
    // Credentials in a URL are a mistake to report, not to repeat into a log.
    const bad = (why: string) => r.problem(`GATEWAY_UPSTREAM_ROUTES: ${JSON.stringify(entry.replace(/\/\/[^@/]*@/, '//***@'))} ${why}`);
    const equals = entry.indexOf('=');
    const prefix = entry.slice(0, equals).trim();
    const target = entry.slice(equals + 1).trim();
    if (equals < 1 || !prefix.startsWith('/')) {
      bad('must be /prefix=http://host:port');
      continue;
    }
    const base = normalisedPrefix(prefix);
    if (base === null || base === '') {
      bad('needs a normalised path prefix other than /');
      continue;
    }
    // fastify routes on the decoded path, the WebSocket and rule matchers on the normalised one:
    // only a prefix that reads the same both ways sends HTTP and WebSockets to the same app.
    if (!/^[A-Za-z0-9\-._~/]+$/.test(base)) {
      bad('may hold only letters, digits, - . _ ~ and / in its prefix');
      continue;
    }
    if (base === authPrefix || base.startsWith(`${authPrefix}/`) || authPrefix.startsWith(`${base}/`)) {
      bad(`overlaps the gateway's own routes under ${authPrefix}`);
      continue;
    }
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      bad('has no valid URL after =');
      continue;
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
      bad('must name an http:// or https:// origin without a path (the request path is forwarded unchanged)');
      continue;
    }
    if (routes.some((route) => route.prefix === base)) {
      bad('repeats a prefix');
      continue;
    }
    routes.push({ prefix: base, url });
  }
  return routes;
}

/** `/reports` or `/reports/` → `/reports`; null when the prefix is not already normalised. */
function normalisedPrefix(prefix: string): string | null {
  try {
    const base = prefixBase(prefix);
    return base === prefix.replace(/\/$/, '') ? base : null;
  } catch {
    return null;
  }
}

function readAccessRules(r: EnvReader, publicPaths: string[]): AccessRuleSpec[] {
  const text = r.file('GATEWAY_ACCESS_RULES');
  if (text === null) return [];
  const { rules, problems } = parseAccessRules(text);
  for (const problem of problems) r.problem(`GATEWAY_ACCESS_RULES: ${problem}`);
  if (problems.length === 0) {
    for (const problem of findShadowedRules(publicPaths, rules)) r.problem(`GATEWAY_ACCESS_RULES: ${problem}`);
  }
  return rules;
}

function readQuery(r: EnvReader, name: string, parameters: number): string | null {
  const sql = r.optional(name);
  if (sql === null) return null;
  const used = new Set([...sql.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])));
  for (let i = 1; i <= parameters; i++) {
    if (!used.has(i)) r.problem(`${name} must use the parameter $${i}`);
  }
  if ([...used].some((n) => n > parameters)) r.problem(`${name} takes only ${parameters} parameter(s)`);
  return sql;
}

/** Replaces each `X_FILE` of a secret-bearing variable by the content of the file it names. */
function resolveFileVariables(env: Env): Record<string, string | undefined> {
  const resolved: Record<string, string | undefined> = { ...env };
  const problems: string[] = [];
  for (const name of SECRET_VARIABLES) {
    const path = env[`${name}_FILE`];
    if (path === undefined || path === '') continue;
    if (env[name] !== undefined && env[name] !== '') {
      problems.push(`${name} and ${name}_FILE are both set: set only one`);
      continue;
    }
    try {
      resolved[name] = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      problems.push(`${name}_FILE: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  if (problems.length > 0) resolved[PENDING_PROBLEMS] = problems.join('\n');
  return resolved;
}

const PENDING_PROBLEMS = '\0problems';

/** Typed accessors that record a problem instead of throwing, so every problem is reported. */
class EnvReader {
  readonly problems: string[] = [];
  private readonly env: Record<string, string | undefined>;

  constructor(env: Record<string, string | undefined>) {
    this.env = env;
    const pending = env[PENDING_PROBLEMS];
    if (pending) this.problems.push(...pending.split('\n'));
  }

  problem(line: string): void {
    this.problems.push(line);
  }

  optional(name: string): string | null {
    const value = this.env[name];
    return value === undefined || value.trim() === '' ? null : value.trim();
  }

  string(name: string, fallback: string): string {
    return this.optional(name) ?? fallback;
  }

  list(name: string): string[] {
    const value = this.optional(name);
    return value === null ? [] : value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  }

  /** Path prefixes as the matchers use them; one that cannot be normalised is a problem, not a crash later. */
  pathList(name: string): string[] {
    return this.list(name).filter((path) => {
      if (!path.startsWith('/')) {
        this.problem(`${name}: ${JSON.stringify(path)} must start with /`);
        return false;
      }
      try {
        prefixBase(path);
        return true;
      } catch (err) {
        this.problem(`${name}: ${(err as Error).message.replace(/^invalid public path prefix /, '')}`);
        return false;
      }
    });
  }

  boolean(name: string, fallback: boolean): boolean {
    const value = this.optional(name)?.toLowerCase();
    if (value === undefined) return fallback;
    if (['true', '1', 'yes', 'on'].includes(value)) return true;
    if (['false', '0', 'no', 'off'].includes(value)) return false;
    this.problem(`${name} must be true or false (got ${JSON.stringify(this.env[name])})`);
    return fallback;
  }

  integer(name: string, fallback: number, range: { min?: number; max?: number } = {}): number {
    const value = this.optional(name);
    if (value === null) return fallback;
    const parsed = /^\d+$/.test(value) ? Number(value) : NaN;
    if (!Number.isSafeInteger(parsed) || parsed < (range.min ?? 0) || parsed > (range.max ?? Number.MAX_SAFE_INTEGER)) {
      this.problem(`${name} must be a whole number${describeRange(range)} (got ${JSON.stringify(value)})`);
      return fallback;
    }
    return parsed;
  }

  duration(name: string, fallbackMs: number, range: { min?: number; max?: number } = {}): number {
    const value = this.optional(name);
    if (value === null) return fallbackMs;
    const ms = parseDurationMs(value);
    if (ms === null) {
      this.problem(`${name} must be a duration like 1800 (seconds), 30m or 12h (got ${JSON.stringify(value)})`);
      return fallbackMs;
    }
    if (range.min !== undefined && ms < range.min) {
      this.problem(`${name} must be at least ${range.min} ms (got ${JSON.stringify(value)})`);
      return fallbackMs;
    }
    if (range.max !== undefined && ms > range.max) {
      this.problem(`${name} must be at most ${range.max} ms (got ${JSON.stringify(value)})`);
      return fallbackMs;
    }
    return ms;
  }

  url(name: string, protocols: string[]): URL | null {
    const value = this.optional(name);
    if (value === null) return null;
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      this.problem(`${name} is not a valid URL`);
      return null;
    }
    if (!protocols.includes(url.protocol)) {
      this.problem(`${name} must use ${protocols.map((p) => `${p}//`).join(' or ')}`);
      return null;
    }
    return url;
  }

  hostPorts(name: string): HostPort[] | null {
    const entries = this.list(name);
    if (entries.length === 0) return null;
    const result: HostPort[] = [];
    for (const entry of entries) {
      const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(entry);
      const port = Number(match?.[2]);
      if (!match || port < 1 || port > 65535) {
        this.problem(`${name}: ${JSON.stringify(entry)} is not host:port`);
        continue;
      }
      result.push({ host: (match[1] ?? '').replace(/^\[|\]$/g, ''), port });
    }
    return result;
  }

  /** The content of the file a variable names (PEM certificates and keys), or null if unset. */
  file(name: string): string | null {
    const path = this.optional(name);
    if (path === null) return null;
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      this.problem(`${name}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      return null;
    }
  }

  oneOf(name: string, fallback: string, allowed: Set<string>): string {
    const value = this.optional(name);
    if (value === null) return fallback;
    if (!allowed.has(value)) {
      this.problem(`${name} must be one of ${[...allowed].join(', ')} (got ${JSON.stringify(value)})`);
      return fallback;
    }
    return value;
  }

  headerName(name: string, fallback: string): string {
    const value = this.string(name, fallback);
    if (!HEADER_NAME.test(value)) this.problem(`${name} is not a valid HTTP header name`);
    return value;
  }

  cookieName(name: string, fallback: string): string {
    const value = this.string(name, fallback);
    if (!COOKIE_NAME.test(value)) this.problem(`${name} is not a valid cookie name`);
    return value;
  }
}

function describeRange(range: { min?: number; max?: number }): string {
  if (range.min !== undefined && range.max !== undefined) return ` from ${range.min} to ${range.max}`;
  if (range.min !== undefined) return ` of at least ${range.min}`;
  return '';
}
