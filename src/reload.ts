// SIGHUP (SPEC section 8): read again what lives in files and hand each swappable part its new
// value, without dropping a connection or refusing a request. The whole configuration is loaded
// and validated exactly as at start-up (loadConfig); a set with any problem is refused, one log
// line per problem, and everything running stays as it was. Only then is each changed part
// replaced, all in one synchronous step, so no request ever sees half of a new set.
//
// The process's environment is fixed once it runs: a changed plain variable cannot be seen here.
// What can change is the content of the files the variables name.
import type { Logger } from 'pino';
import type { AccessRuleSpec } from './access/rules.js';
import { ConfigError, type Config, type IdentityTokenConfig } from './config/config.js';
import type { LoginBranding } from './login/login-branding.js';

/** The narrow replace…() of each part that can change while serving; absent: not in use. */
export interface ReloadTargets {
  /** GATEWAY_SESSION_SECRET(_FILE): the first signs, every one verifies (cookies and login forms). */
  sessionSecrets?: (secrets: string[]) => void;
  /** GATEWAY_TLS_CERT / GATEWAY_TLS_KEY: new handshakes use the new pair. */
  tls?: (pair: { cert: string; key: string }) => void;
  /** GATEWAY_IDENTITY_JWT_KEY_FILES or GATEWAY_IDENTITY_HMAC_SECRET(_FILE). */
  identityKeys?: (next: Pick<IdentityTokenConfig, 'keys' | 'hmacSecret'>) => void;
  /** GATEWAY_LOGIN_LOGO_FILE, GATEWAY_LOGIN_CSS_FILE, GATEWAY_LOGIN_TEMPLATE_FILE. */
  loginBranding?: (branding: LoginBranding) => void;
  /** GATEWAY_ACCESS_RULES (a file). */
  accessRules?: (rules: AccessRuleSpec[]) => void;
}

export type ReloadResult = { outcome: 'success'; changed: string[] } | { outcome: 'failure'; problems: string[] };

export interface ReloaderOptions {
  /** The configuration in force (from start-up). */
  current: Config;
  /** Reads and validates the configuration again (loadConfig over the process's environment). */
  load: () => Config;
  targets: ReloadTargets;
  logger: Logger;
  /** Counts each reload (gateway_config_reloads_total). */
  count: (outcome: ReloadResult['outcome']) => void;
}

export interface Reloader {
  reload(): ReloadResult;
}

interface Part {
  /** The variable(s) named in the log line saying what changed. */
  name: string;
  changed(before: Config, after: Config): boolean;
  apply(after: Config): void;
}

/**
 * File-backed values that are read when a connection pool or client is made: a change is reported
 * (so nobody believes it applied) and takes effect at the next restart.
 */
const RESTART_ONLY: ReadonlyArray<{ name: string; value: (c: Config) => unknown }> = [
  { name: 'REDIS_URL / REDIS_USERNAME / REDIS_PASSWORD / REDIS_SENTINEL_*', value: (c) => c.redis },
  { name: 'REDIS_CA_FILE', value: (c) => c.redisTlsCa },
  { name: 'DATABASE_URL', value: (c) => c.databaseUrl },
  { name: 'GATEWAY_UPSTREAM_CA_FILE', value: (c) => c.upstreamTlsCa },
];

export function createReloader(options: ReloaderOptions): Reloader {
  const { targets, logger } = options;
  const startup = options.current;
  let current = options.current;
  const parts = partsFor(targets);

  return {
    reload() {
      let next: Config;
      try {
        next = options.load();
      } catch (err) {
        const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
        return refuse(problems);
      }
      const problems = reloadOnlyProblems(current, next);
      if (problems.length > 0) return refuse(problems);

      const changed = parts.filter((part) => part.changed(current, next));
      try {
        for (const part of changed) part.apply(next);
      } catch (err) {
        // Not expected: loadConfig checked each value the way its part uses it.
        return refuse([`${(err as Error).message}`]);
      }
      current = next;
      for (const item of RESTART_ONLY) {
        if (!same(item.value(startup), item.value(next))) {
          logger.warn({ reload: 'restart_needed', variable: item.name }, `configuration reload: ${item.name} changed in its file; it applies at the next restart`);
        }
      }
      const names = changed.map((part) => part.name);
      logger.info({ reload: 'success', changed: names }, names.length > 0 ? `configuration reloaded: ${names.join(', ')}` : 'configuration reloaded: nothing changed');
      options.count('success');
      return { outcome: 'success', changed: names };
    },
  };

  function refuse(problems: string[]): ReloadResult {
    for (const problem of problems) logger.error({ reload: 'failure' }, `configuration reload refused: ${problem}`);
    logger.error({ reload: 'failure', problems: problems.length }, 'configuration reload refused: the running configuration stays in force');
    options.count('failure');
    return { outcome: 'failure', problems };
  }
}

/** Each part that has a target, in the order they are applied: those that could throw first. */
function partsFor(targets: ReloadTargets): Part[] {
  const parts: Part[] = [];
  const { identityKeys, tls, sessionSecrets, loginBranding, accessRules } = targets;
  if (accessRules) {
    // Compiled when replaced (and refused there, old rules kept, if they cannot be): first.
    parts.push({ name: 'GATEWAY_ACCESS_RULES', changed: (a, b) => !same(a.accessRules, b.accessRules), apply: (b) => accessRules(b.accessRules) });
  }
  if (identityKeys) {
    parts.push({
      name: 'identity token keys',
      // Keys generated at start-up (no key files) are not in a file: nothing to read again.
      changed: (a, b) => a.identityToken !== null && b.identityToken !== null && (b.identityToken.keys.length > 0 || b.identityToken.hmacSecret !== null) &&
        (kids(a.identityToken) !== kids(b.identityToken) || a.identityToken.hmacSecret !== b.identityToken.hmacSecret),
      apply: (b) => identityKeys({ keys: b.identityToken?.keys ?? [], hmacSecret: b.identityToken?.hmacSecret ?? null }),
    });
  }
  if (tls) {
    parts.push({
      name: 'GATEWAY_TLS_CERT / GATEWAY_TLS_KEY',
      changed: (a, b) => a.tls !== null && b.tls !== null && (a.tls.cert !== b.tls.cert || a.tls.key !== b.tls.key),
      apply: (b) => b.tls && tls(b.tls),
    });
  }
  if (sessionSecrets) {
    parts.push({
      name: 'GATEWAY_SESSION_SECRET',
      changed: (a, b) => !b.sessionSecretGenerated && !same(a.sessionSecrets, b.sessionSecrets),
      apply: (b) => sessionSecrets(b.sessionSecrets),
    });
  }
  if (loginBranding) {
    parts.push({ name: 'login branding', changed: (a, b) => !same(a.loginBranding, b.loginBranding), apply: (b) => loginBranding(b.loginBranding) });
  }
  return parts;
}

/**
 * What start-up would accept but a running gateway must not switch to: a secret file emptied
 * (start-up would generate a random secret and log everybody out), TLS or identity tokens
 * appearing or disappearing (the listener and the published keys were made for one mode).
 */
function reloadOnlyProblems(before: Config, after: Config): string[] {
  const problems: string[] = [];
  if (!before.sessionSecretGenerated && after.sessionSecretGenerated) problems.push('GATEWAY_SESSION_SECRET is now empty (its file holds no secret)');
  if ((before.tls === null) !== (after.tls === null)) problems.push('GATEWAY_TLS_CERT / GATEWAY_TLS_KEY: TLS on the listener can only be turned on or off by a restart');
  if (before.identityToken !== null && after.identityToken !== null && before.identityToken.keys.length > 0 && after.identityToken.keys.length === 0 && after.identityToken.alg !== 'HS256') {
    problems.push('GATEWAY_IDENTITY_JWT_KEY_FILES: no key is left to sign with');
  }
  return problems;
}

function kids(settings: IdentityTokenConfig): string {
  return settings.keys.map((key) => key.kid).join(',');
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
