// Every default is written once, as a DEFAULT_* constant in src/config/config.ts: the reading code
// uses it (checked here through loadConfig), and docs/configuration.md's table states it (checked
// here cell by cell; test/unit/docs.test.ts keeps README's copy of the table identical).
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import * as config from '../../src/config/config.js';
import { parseDurationMs } from '../../src/config/duration.js';
import { DEFAULT_ISSUER } from '../../src/identity/signed-identity.js';
import { DEFAULT_USER_QUERY } from '../../src/users/user-store.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const TABLE = readFileSync(join(ROOT, 'docs/configuration.md'), 'utf8');

const SERVICE = config.loadConfig({ GATEWAY_UPSTREAM: 'http://127.0.0.1:8080' });
const EMBEDDED = config.loadConfig({});

/** A duration in the table: any form parseDurationMs reads (`30s`, `15m`, `0`) that means this many ms. */
class Duration {
  constructor(readonly ms: number) {}
}
const ms = (value: number) => new Duration(value);
type Cell = string | number | boolean | Duration;

/**
 * Per variable: the values its default cell names in `backticks`, in order (trailing prose is
 * free), and words it must contain for defaults the table states in words.
 */
const EXPECTED: Record<string, { values?: Cell[]; words?: string }> = {
  GATEWAY_HOST: { values: [config.DEFAULT_HOST, config.DEFAULT_EMBEDDED_HOST] },
  GATEWAY_PORT: { values: [config.DEFAULT_PORT] },
  GATEWAY_UPSTREAM_TIMEOUT: { values: [ms(config.DEFAULT_UPSTREAM_TIMEOUT_MS)] },
  GATEWAY_REQUEST_TIMEOUT: { values: [ms(config.DEFAULT_REQUEST_TIMEOUT_MS)] },
  GATEWAY_PRESERVE_HOST: { values: [config.DEFAULT_PRESERVE_HOST] },
  GATEWAY_HEADER_USER: { values: [config.DEFAULT_HEADER_USER] },
  GATEWAY_HEADER_EMAIL: { values: [config.DEFAULT_HEADER_EMAIL] },
  GATEWAY_HEADER_GROUPS: { values: [config.DEFAULT_HEADER_GROUPS] },
  GATEWAY_IDENTITY_JWT: { values: [config.DEFAULT_IDENTITY_JWT] },
  GATEWAY_IDENTITY_JWT_ALG: { values: [config.DEFAULT_IDENTITY_JWT_ALG, 'HS256'] },
  GATEWAY_IDENTITY_JWT_LIFETIME: { values: [ms(config.DEFAULT_IDENTITY_JWT_LIFETIME_MS)] },
  GATEWAY_IDENTITY_JWT_ISSUER: { values: ['GATEWAY_PUBLIC_URL', DEFAULT_ISSUER] },
  GATEWAY_ACCESS_LOG: { values: [config.DEFAULT_ACCESS_LOG] },
  GATEWAY_VERIFY_ACCESS_LOG: { values: [config.DEFAULT_VERIFY_ACCESS_LOG] },
  GATEWAY_LOG_BATCH: { values: [config.DEFAULT_LOG_BATCH] },
  GATEWAY_RELEASE_STARTUP_MEMORY: { values: [config.DEFAULT_RELEASE_STARTUP_MEMORY] },
  GATEWAY_SHUTDOWN_DELAY: { values: [ms(config.DEFAULT_SHUTDOWN_DELAY_MS)] },
  GATEWAY_SHUTDOWN_TIMEOUT: { values: [ms(config.DEFAULT_SHUTDOWN_TIMEOUT_MS)] },
  GATEWAY_STALE_SESSION_GRACE: { values: [ms(config.DEFAULT_STALE_SESSION_GRACE_MS)] },
  GATEWAY_USER_RECHECK_INTERVAL: { values: [ms(config.DEFAULT_USER_RECHECK_INTERVAL_MS)] },
  GATEWAY_MAX_SESSIONS_PER_USER: { values: [config.DEFAULT_MAX_SESSIONS_PER_USER] },
  GATEWAY_ADMIN_HOST: { values: [config.DEFAULT_HOST, config.DEFAULT_EMBEDDED_HOST] },
  GATEWAY_ADMIN_PORT: { values: [config.DEFAULT_ADMIN_PORT] },
  GATEWAY_REDIS_COMMAND_TIMEOUT: { values: [ms(config.DEFAULT_REDIS_COMMAND_TIMEOUT_MS)] },
  GATEWAY_REDIS_CONNECT_TIMEOUT: { values: [ms(config.DEFAULT_REDIS_CONNECT_TIMEOUT_MS)] },
  REDIS_TLS: { values: [config.DEFAULT_REDIS_TLS] },
  GATEWAY_SESSION_IDLE_TIMEOUT: { values: [ms(config.DEFAULT_SESSION_IDLE_TIMEOUT_MS)] },
  GATEWAY_SESSION_MAX_LIFETIME: { values: [ms(config.DEFAULT_SESSION_MAX_LIFETIME_MS)] },
  GATEWAY_SESSION_TOUCH_INTERVAL: {
    values: [ms(config.DEFAULT_SESSION_TOUCH_INTERVAL_MIN_MS)],
    words: ({ 10: 'a tenth of the idle timeout' } as Record<number, string>)[config.DEFAULT_SESSION_TOUCH_INTERVAL_DIVISOR] ?? `1/${config.DEFAULT_SESSION_TOUCH_INTERVAL_DIVISOR} of the idle timeout`,
  },
  GATEWAY_SESSION_CACHE_SIZE: { values: [config.DEFAULT_SESSION_CACHE_SIZE] },
  GATEWAY_SESSION_CACHE_TTL: { values: [ms(config.DEFAULT_SESSION_CACHE_TTL_MS)] },
  GATEWAY_COOKIE_NAME: { values: [config.DEFAULT_COOKIE_NAME] },
  // `!embedded`, not a constant: the values loadConfig gives in the two modes.
  GATEWAY_COOKIE_SECURE: { values: [SERVICE.cookieSecure, EMBEDDED.cookieSecure] },
  GATEWAY_AUTH_PREFIX: { values: [config.DEFAULT_AUTH_PREFIX] },
  GATEWAY_ALLOW_PLAINTEXT_PASSWORDS: { values: [config.DEFAULT_ALLOW_PLAINTEXT_PASSWORDS] },
  GATEWAY_REDIS_PREFIX: { values: [config.DEFAULT_REDIS_PREFIX] },
  GATEWAY_SESSION_COMPACT_RECORDS: { values: [config.DEFAULT_SESSION_COMPACT_RECORDS] },
  GATEWAY_BASIC_AUTH: { values: [config.DEFAULT_BASIC_AUTH] },
  GATEWAY_MFA: { values: [config.DEFAULT_MFA] },
  GATEWAY_BASIC_AUTH_CACHE: { values: [ms(config.DEFAULT_BASIC_AUTH_CACHE_MS)] },
  GATEWAY_LOGIN_MAX_ATTEMPTS: { values: [config.DEFAULT_LOGIN_MAX_ATTEMPTS] },
  GATEWAY_LOGIN_WINDOW: { values: [ms(config.DEFAULT_LOGIN_WINDOW_MS)] },
  GATEWAY_LOGIN_MAX_ATTEMPTS_PER_IP: { words: `${config.DEFAULT_LOGIN_MAX_ATTEMPTS_PER_IP_FACTOR} × max attempts` },
  GATEWAY_HASH_THREAD_NICE: { values: [config.DEFAULT_HASH_THREAD_NICE] },
  GATEWAY_HASH_THREAD_IDLE: { values: [config.DEFAULT_HASH_THREAD_IDLE] },
  GATEWAY_LOGIN_TITLE: { values: [config.DEFAULT_LOGIN_TITLE] },
  GATEWAY_WEBSOCKET_REVALIDATE_INTERVAL: { values: [ms(config.DEFAULT_WEBSOCKET_REVALIDATE_INTERVAL_MS)], words: 'or half the idle timeout if shorter' },
  GATEWAY_WEBSOCKET_MAX_MESSAGE_BYTES: { values: [config.DEFAULT_WEBSOCKET_MAX_MESSAGE_BYTES] },
  LOG_LEVEL: { values: [config.DEFAULT_LOG_LEVEL] },
  OTEL_TRACES_SAMPLER: { values: [config.DEFAULT_OTEL_TRACES_SAMPLER] },
  OTEL_TRACES_SAMPLER_ARG: { values: [config.DEFAULT_OTEL_TRACES_SAMPLER_ARG] },
  OTEL_BSP_SCHEDULE_DELAY: { values: [config.DEFAULT_OTEL_BSP_SCHEDULE_DELAY_MS] },
  OTEL_SDK_DISABLED: { values: [config.DEFAULT_OTEL_SDK_DISABLED] },
  OTEL_TRACES_EXPORTER: { values: [config.DEFAULT_OTEL_TRACES_EXPORTER] },
  // Derived: OTEL_EXPORTER_OTLP_ENDPOINT with the path the reading code appends.
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: { words: '<endpoint>/v1/traces' },
  // The service name tracing/sdk.ts gives its resource (not a configuration constant).
  OTEL_SERVICE_NAME: { values: ['session-gateway'] },
  // The query users/ runs without GATEWAY_USER_QUERY, named by its table.
  GATEWAY_USER_QUERY: { words: `reads \`${/\bFROM (\w+)/.exec(DEFAULT_USER_QUERY)?.[1] ?? '?'}\`` },
};

/** Splits on `, ` outside parentheses and backticks. */
function topLevelParts(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let code = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '`') code = !code;
    else if (!code && c === '(') depth++;
    else if (!code && c === ')') depth--;
    else if (!code && depth === 0 && c === ',' && text[i + 1] === ' ') {
      parts.push(text.slice(start, i).trim());
      start = i + 2;
    }
  }
  parts.push(text.slice(start).trim());
  return parts;
}

/**
 * The table as variable → its default's text. A row naming several variables
 * (`GATEWAY_HEADER_USER`, `_EMAIL`, `_GROUPS`) gives each its part of the default when the
 * default has as many comma-separated parts, else the whole default.
 */
function documentedDefaults(markdown: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const line of markdown.split('\n')) {
    if (!line.startsWith('| `')) continue;
    const cells = line.slice(1, -1).split(' | ').map((c) => c.trim());
    const nameCell = cells[0] ?? '';
    const defaultCell = cells[cells.length - 1] ?? '';
    // Names are the cell's leading `NAME`s; parenthesised asides (an older name) are not separate rows.
    const names: string[] = [];
    for (const [, token] of nameCell.replace(/\([^)]*\)/g, '').matchAll(/`([A-Z_][A-Z0-9_]*)`/g)) {
      const name = token ?? '';
      names.push(name.startsWith('_') ? `${(names[0] ?? '').replace(/_[A-Z0-9]+$/, '')}${name}` : name);
    }
    const parts = topLevelParts(defaultCell);
    names.forEach((name, i) => found.set(name, parts.length === names.length ? (parts[i] ?? '') : defaultCell));
  }
  return found;
}

const DOCUMENTED = documentedDefaults(TABLE);
const codeValues = (text: string) => [...text.matchAll(/`([^`]*)`/g)].map((m) => m[1] ?? '');
const isVariableName = (text: string) => /^[A-Z][A-Z0-9_]*$/.test(text);

function matches(documented: string, expected: Cell): boolean {
  if (expected instanceof Duration) return parseDurationMs(documented) === expected.ms;
  return documented === String(expected);
}

t.test('the table is read: every row, a variable per name', async (t) => {
  t.ok(DOCUMENTED.size > 50, `${DOCUMENTED.size} variables`);
  t.equal(DOCUMENTED.get('GATEWAY_PORT'), '`8000`');
  t.equal(DOCUMENTED.get('GATEWAY_HEADER_GROUPS'), '`X-Forwarded-Groups`');
  t.equal(DOCUMENTED.get('GATEWAY_HOST'), '`0.0.0.0` (`127.0.0.1` in embedded mode)');
});

t.test("each documented default is the constant's value", async (t) => {
  for (const [name, expected] of Object.entries(EXPECTED)) {
    const text = DOCUMENTED.get(name);
    if (text === undefined) {
      t.fail(`${name}: no row in docs/configuration.md`);
      continue;
    }
    const documented = codeValues(text);
    (expected.values ?? []).forEach((value, i) => {
      const shown = value instanceof Duration ? `${value.ms} ms` : JSON.stringify(value);
      t.ok(documented[i] !== undefined && matches(documented[i], value), `${name}: the table says ${text}; the constant is ${shown}`);
    });
    if (expected.words !== undefined) t.ok(text.includes(expected.words), `${name}: the table says ${text}; expected "${expected.words}"`);
  }
});

t.test('every default the table states as a value has an entry above (and so a constant)', async (t) => {
  const unchecked = [...DOCUMENTED].filter(([name, text]) => {
    const first = codeValues(text)[0];
    return first !== undefined && !isVariableName(first) && !(name in EXPECTED);
  });
  t.same(unchecked, [], 'add a DEFAULT_* constant to src/config/config.ts, use it, and list the variable here');
});

t.test('the reading code uses the constants', async (t) => {
  const service = SERVICE;
  t.equal(service.host, config.DEFAULT_HOST);
  t.equal(EMBEDDED.host, config.DEFAULT_EMBEDDED_HOST);
  t.equal(service.adminHost, config.DEFAULT_HOST);
  t.equal(EMBEDDED.adminHost, config.DEFAULT_EMBEDDED_HOST);
  t.equal(service.port, config.DEFAULT_PORT);
  t.equal(service.upstreamTimeoutMs, config.DEFAULT_UPSTREAM_TIMEOUT_MS);
  t.equal(service.requestTimeoutMs, config.DEFAULT_REQUEST_TIMEOUT_MS);
  t.equal(service.preserveHost, config.DEFAULT_PRESERVE_HOST);
  t.equal(service.headerUser, config.DEFAULT_HEADER_USER);
  t.equal(service.headerEmail, config.DEFAULT_HEADER_EMAIL);
  t.equal(service.headerGroups, config.DEFAULT_HEADER_GROUPS);
  t.equal(service.identityToken, null, 'GATEWAY_IDENTITY_JWT off');
  t.equal(service.accessLog, config.DEFAULT_ACCESS_LOG);
  t.equal(service.verifyAccessLog, config.DEFAULT_VERIFY_ACCESS_LOG);
  t.equal(service.logBatch, config.DEFAULT_LOG_BATCH);
  t.equal(service.releaseStartUpMemory, config.DEFAULT_RELEASE_STARTUP_MEMORY);
  t.equal(service.shutdownDelayMs, config.DEFAULT_SHUTDOWN_DELAY_MS);
  t.equal(service.shutdownTimeoutMs, config.DEFAULT_SHUTDOWN_TIMEOUT_MS);
  t.equal(service.staleSessionGraceMs, config.DEFAULT_STALE_SESSION_GRACE_MS);
  t.equal(service.adminPort, config.DEFAULT_ADMIN_PORT);
  t.equal(service.userRecheckIntervalMs, config.DEFAULT_USER_RECHECK_INTERVAL_MS);
  t.equal(service.maxSessionsPerUser, config.DEFAULT_MAX_SESSIONS_PER_USER);
  t.equal(service.redisCommandTimeoutMs, config.DEFAULT_REDIS_COMMAND_TIMEOUT_MS);
  t.equal(service.redisConnectTimeoutMs, config.DEFAULT_REDIS_CONNECT_TIMEOUT_MS);
  t.equal(service.idleTimeoutMs, config.DEFAULT_SESSION_IDLE_TIMEOUT_MS);
  t.equal(service.maxLifetimeMs, config.DEFAULT_SESSION_MAX_LIFETIME_MS);
  t.equal(service.touchIntervalMs, Math.max(config.DEFAULT_SESSION_TOUCH_INTERVAL_MIN_MS, config.DEFAULT_SESSION_IDLE_TIMEOUT_MS / config.DEFAULT_SESSION_TOUCH_INTERVAL_DIVISOR));
  t.equal(service.cacheMaxEntries, config.DEFAULT_SESSION_CACHE_SIZE);
  t.equal(service.cacheTtlMs, config.DEFAULT_SESSION_CACHE_TTL_MS);
  t.equal(service.cookieName, config.DEFAULT_COOKIE_NAME);
  t.equal(service.authPrefix, config.DEFAULT_AUTH_PREFIX);
  t.equal(service.allowPlaintextPasswords, config.DEFAULT_ALLOW_PLAINTEXT_PASSWORDS);
  t.equal(service.redisPrefix, config.DEFAULT_REDIS_PREFIX);
  t.equal(service.loginMaxAttempts, config.DEFAULT_LOGIN_MAX_ATTEMPTS);
  t.equal(service.loginWindowMs, config.DEFAULT_LOGIN_WINDOW_MS);
  t.equal(service.loginMaxAttemptsPerIp, config.DEFAULT_LOGIN_MAX_ATTEMPTS * config.DEFAULT_LOGIN_MAX_ATTEMPTS_PER_IP_FACTOR);
  t.equal(service.loginTitle, config.DEFAULT_LOGIN_TITLE);
  t.equal(service.websocketRevalidateIntervalMs, Math.min(config.DEFAULT_WEBSOCKET_REVALIDATE_INTERVAL_MS, config.DEFAULT_SESSION_IDLE_TIMEOUT_MS / 2));
  t.equal(service.websocketMaxMessageBytes, config.DEFAULT_WEBSOCKET_MAX_MESSAGE_BYTES);
  t.equal(service.logLevel, config.DEFAULT_LOG_LEVEL);
  const withTokens = config.loadConfig({ GATEWAY_IDENTITY_JWT: 'true' });
  t.equal(withTokens.identityToken?.alg, config.DEFAULT_IDENTITY_JWT_ALG);
  t.equal(withTokens.identityToken?.lifetimeMs, config.DEFAULT_IDENTITY_JWT_LIFETIME_MS);
  const traced = config.loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' });
  t.match(traced.tracing, { sampler: config.DEFAULT_OTEL_TRACES_SAMPLER, samplerRatio: config.DEFAULT_OTEL_TRACES_SAMPLER_ARG, exportDelayMs: config.DEFAULT_OTEL_BSP_SCHEDULE_DELAY_MS }, 'OTEL_* defaults');
  const sentinel = config.loadConfig({ REDIS_SENTINELS: '127.0.0.1:26379', REDIS_SENTINEL_NAME: 'm', GATEWAY_SESSION_SECRET: 'x'.repeat(32) });
  t.equal(sentinel.redis?.tls === true, config.DEFAULT_REDIS_TLS, 'REDIS_TLS');
});
