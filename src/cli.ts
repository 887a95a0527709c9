#!/usr/bin/env node
// The `session-gateway` command (SPEC section 1). Exit codes: 0 success, 1 failure, 2 usage error.
// Passwords come from standard input only (--password-stdin), never from arguments.
import { parseArgs } from 'node:util';
import type pg from 'pg';
import pino from 'pino';
import { migrate } from './users/migrations.js';
import { hashPassword } from './users/passwords.js';
import { addUser, deleteUser, explainMissingOwnTable, identityValueProblem, isLegacyTable, listUsers, newUserProblem, ownTableOnly, setDisabled, setLegacyPassword, setPassword, UserAdminError } from './users/user-admin.js';
import { createPgPool, createPostgresUserStore } from './users/user-store.js';
import { ConfigError, loadConfig, type Config } from './config/config.js';
import { createLogger } from './logger.js';
import { exportPrivateKeyPem, generateSigningKey } from './identity/keys.js';
import { startGateway } from './server.js';
import { connectRedis, createRedisClient } from './redis-client.js';
import { createRedisSessionStore } from './session/redis-store.js';
import { summariseSession } from './session/summary.js';
import type { SessionStore } from './session/types.js';
import { parseDurationMs } from './config/duration.js';
import { invalidationChannel, tokenMessage, userMessage } from './tokens/invalidation.js';
import { migrateTokens } from './tokens/migrations.js';
import { tokenNameProblem } from './tokens/token.js';
import { createToken, describeToken, explainMissingTokenTable, TokenAdminError } from './tokens/token-admin.js';
import { createPostgresTokenStore } from './tokens/token-store.js';
import { createPostgresMfaStore } from './mfa/store.js';
import { createPostgresPasskeyStore } from './mfa/webauthn-store.js';

class UsageError extends Error {}

const USAGE = `usage: session-gateway <command>
  serve                                   run the gateway (default)
  migrate                                 create or update the gateway_users and gateway_tokens tables
  users add <name> [--email E] [--groups a,b] --password-stdin
  users passwd <name> --password-stdin    (also revokes that user's sessions)
  users disable|enable|delete <name>      (disable and delete also revoke sessions)
  users list
  users mfa status <name>                 one JSON line: TOTP, passkeys and recovery codes left
  users mfa reset <name>                  removes every factor (TOTP, passkeys) and recovery code, revokes sessions
  sessions list <name>                    one JSON line per session
  sessions revoke <name>                  prints how many were revoked
  tokens create <user> --name N [--expires 90d]   prints a new API token (shown once)
  tokens list <user>                      one JSON line per token (never the token)
  tokens revoke <user> <name>             on every replica at once
  hash-password --password-stdin          prints an argon2id hash
  keys generate [--alg EdDSA|ES256]       prints a PEM private key for GATEWAY_IDENTITY_JWT_KEY_FILES`;

const MAX_STDIN_BYTES = 64 * 1024;

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      email: { type: 'string' },
      groups: { type: 'string' },
      alg: { type: 'string' },
      name: { type: 'string' },
      expires: { type: 'string' },
      'password-stdin': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const [command = 'serve', ...rest] = positionals;
  if (command === 'hash-password') {
    console.log(await hashPassword(await readPassword(values['password-stdin'])));
    return 0;
  }
  if (command === 'keys') return keysCommand(rest, values.alg);
  const config = loadConfig(process.env);
  switch (command) {
    case 'serve':
      return serve(config);
    case 'migrate':
      return withPool(config, async (pool) => {
        await migrate(pool);
        await migrateTokens(pool);
        console.log('migrated');
      });
    case 'users':
      return usersCommand(config, rest, values).catch((err: unknown) => {
        throw explainMissingOwnTable(err);
      });
    case 'sessions':
      return sessionsCommand(config, rest);
    case 'tokens':
      return tokensCommand(config, rest, values).catch((err: unknown) => {
        throw explainMissingTokenTable(explainMissingOwnTable(err));
      });
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}

async function serve(config: Config): Promise<number> {
  const logger = createLogger(config.logLevel, undefined, { batchPerTurn: config.logBatch });
  // SIGHUP's default action ends the process: caught from the first moment, and a reload asked
  // for while starting runs once the gateway is up (its files were maybe read before the change).
  let reload: (() => void) | null = null;
  let reloadPending = false;
  process.on('SIGHUP', () => {
    logger.info({ signal: 'SIGHUP' }, 'signal received: reloading what lives in files');
    if (reload) reload();
    else reloadPending = true;
  });
  const gateway = await startGateway(config, { logger, releaseStartUpMemory: config.releaseStartUpMemory });
  reload = () => {
    try {
      gateway.reload();
    } catch (err) {
      // A reload never ends the process: the running configuration simply stays.
      logger.error({ err }, 'configuration reload failed');
    }
  };
  if (reloadPending) reload();
  const onSignal = (signal: string) => {
    logger.info({ signal }, 'signal received');
    gateway.shutdown().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
  return new Promise<number>(() => undefined);
}

async function usersCommand(
  config: Config,
  args: string[],
  values: { email?: string | undefined; groups?: string | undefined; 'password-stdin'?: boolean | undefined },
): Promise<number> {
  if (args[0] === 'mfa') return mfaCommand(config, args.slice(1));
  const [action, name, ...extra] = args;
  const legacy = isLegacyTable(config.userQuery);
  if (action === 'list') {
    if (legacy) throw ownTableOnly('list');
    return withPool(config, async (pool) => {
      for (const user of await listUsers(pool)) console.log(JSON.stringify(user));
    });
  }
  if (!action || !name || extra.length > 0) throw new UsageError('users needs an action and exactly one user name');
  checkName(name);
  if (legacy && ['add', 'disable', 'enable', 'delete'].includes(action)) throw ownTableOnly(action);
  switch (action) {
    case 'add': {
      // `--groups "a, b"`: spaces around the commas are list formatting, not part of the names.
      const groups = (values.groups ?? '').split(',').map((g) => g.trim()).filter((g) => g !== '');
      const problem = newUserProblem({ username: name, email: values.email ?? null, groups });
      if (problem) throw new UsageError(problem);
      const password = await readPassword(values['password-stdin']);
      return withPool(config, async (pool) => {
        await addUser(pool, { username: name, password, email: values.email ?? null, groups });
        console.log(`added ${name}`);
      });
    }
    case 'passwd': {
      const password = await readPassword(values['password-stdin']);
      return withPool(config, async (pool) => {
        await (legacy ? setLegacyPassword(pool, config.userPasswordQuery, name, password) : setPassword(pool, name, password));
        console.log(`password changed for ${name}; ${await revokeIfPossible(config, name, 'users passwd')}`);
      });
    }
    case 'disable':
    case 'enable':
      return withPool(config, async (pool) => {
        await setDisabled(pool, name, action === 'disable');
        console.log(action === 'disable' ? `disabled ${name}; ${await revokeIfPossible(config, name, 'users disable')}` : `enabled ${name}`);
      });
    case 'delete':
      return withPool(config, async (pool) => {
        await deleteUser(pool, name);
        console.log(`deleted ${name}; ${await revokeIfPossible(config, name, 'users delete')}`);
      });
    default:
      throw new UsageError(`unknown users action ${JSON.stringify(action)}`);
  }
}

/**
 * `users mfa status|reset <name>` (SPEC 9): the gateway's own gateway_mfa table, so it works the
 * same for a legacy users table. Reset removes the TOTP secret, every passkey and every recovery code, then ends
 * the user's sessions (a stolen session must not outlive the factor it was made with); audited.
 */
async function mfaCommand(config: Config, args: string[]): Promise<number> {
  const [action, name, ...extra] = args;
  if ((action !== 'status' && action !== 'reset') || !name || extra.length > 0) throw new UsageError('users mfa needs status|reset and exactly one user name');
  checkName(name);
  return withPool(config, async (pool) => {
    const store = createPostgresMfaStore(pool);
    const passkeys = createPostgresPasskeyStore(pool);
    const [status, passkeyCount] = await Promise.all([store.status(name), passkeys.count(name)]).catch((err: unknown) => {
      throw explainMissingMfaTable(err);
    });
    if (action === 'status') {
      console.log(JSON.stringify({ user: name, totp: status.totp, enrolledAt: status.enrolledAt?.toISOString() ?? null, passkeys: passkeyCount, recoveryCodesLeft: status.recoveryCodesLeft }));
      return;
    }
    const removedPasskeys = await passkeys.removeAll(name);
    const removed = (await store.reset(name)) || removedPasskeys > 0;
    const revoked = await revokeIfPossible(config, name, 'users mfa reset');
    const audit = createLogger(config.logLevel, pino.destination({ dest: 2, sync: true }));
    audit.info({ audit: 'mfa_reset', user: name, by: 'cli', removed, passkeys: removedPasskeys, outcome: 'success' }, 'second factor reset');
    console.log(`${removed ? 'second factor and recovery codes removed' : 'no second factor was set up'} for ${name}; ${revoked}`);
  });
}

function explainMissingMfaTable(err: unknown): unknown {
  const { code, message } = err as { code?: string; message?: string };
  if (code === '42P01' && (message?.includes('gateway_mfa') || message?.includes('gateway_webauthn_credentials'))) {
    return new UserAdminError('the second-factor tables (gateway_mfa, gateway_webauthn_credentials) do not exist: run `session-gateway migrate`');
  }
  return err;
}

async function sessionsCommand(config: Config, args: string[]): Promise<number> {
  const [action, name, ...extra] = args;
  if ((action !== 'list' && action !== 'revoke') || !name || extra.length > 0) {
    throw new UsageError('sessions needs list|revoke and exactly one user name');
  }
  checkName(name);
  return withSessionStore(config, async (store) => {
    if (action === 'revoke') {
      const revoked = await store.deleteByUser(name);
      auditRevocation(config, name, revoked, 'sessions revoke');
      console.log(String(revoked));
      return;
    }
    for (const session of await store.listByUser(name)) console.log(JSON.stringify(summariseSession(session)));
  });
}

async function tokensCommand(config: Config, args: string[], values: { name?: string | undefined; expires?: string | undefined }): Promise<number> {
  const [action, user, ...extra] = args;
  if (!user) throw new UsageError('tokens needs create|list|revoke and a user name');
  checkName(user);
  switch (action) {
    case 'create': {
      if (extra.length > 0) throw new UsageError('tokens create takes one user name and --name');
      if (values.name === undefined) throw new UsageError('tokens create needs --name N');
      const problem = tokenNameProblem(values.name);
      if (problem) throw new UsageError(problem);
      const expiresInMs = values.expires === undefined ? null : parseDurationMs(values.expires);
      if (expiresInMs === null && values.expires !== undefined) throw new UsageError(`--expires must be a duration like 90d, 12h or 3600 (got ${JSON.stringify(values.expires)})`);
      if (expiresInMs !== null && expiresInMs <= 0) throw new UsageError('--expires must be longer than 0');
      const name = values.name;
      return withPool(config, async (pool) => {
        const users = createPostgresUserStore(pool, { userQuery: config.userQuery });
        const created = await createToken(createPostgresTokenStore(pool), (n) => users.find(n), { user, name, expiresInMs });
        auditToken(config, { audit: 'token_created', user, token: name, expires: created.expiresAt === null ? null : new Date(created.expiresAt).toISOString() }, 'API token created');
        // Standard output is the token alone, so `TOKEN=$(session-gateway tokens create …)` works.
        console.log(created.token);
      });
    }
    case 'list':
      if (extra.length > 0) throw new UsageError('tokens list takes exactly one user name');
      return withPool(config, async (pool) => {
        for (const record of await createPostgresTokenStore(pool).list(user)) console.log(JSON.stringify(describeToken(record)));
      });
    case 'revoke': {
      const [name, ...more] = extra;
      if (!name || more.length > 0) throw new UsageError('tokens revoke needs a user name and a token name');
      return withPool(config, async (pool) => {
        const tokenHash = await createPostgresTokenStore(pool).revoke(user, name);
        if (tokenHash === null) throw new TokenAdminError(`user ${JSON.stringify(user)} has no token named ${JSON.stringify(name)}`);
        const told = await publishInvalidation(config, tokenMessage(tokenHash));
        auditToken(config, { audit: 'revocation', user, token: name, by: 'cli', command: 'tokens revoke', outcome: 'success' }, 'API token revoked');
        console.log(`revoked ${name}${told ? '' : ' (no Redis configured: a running gateway stops accepting it within GATEWAY_SESSION_CACHE_TTL)'}`);
      });
    }
    default:
      throw new UsageError(`unknown tokens action ${JSON.stringify(action)}`);
  }
}

function auditToken(config: Config, line: Record<string, unknown>, message: string): void {
  const audit = createLogger(config.logLevel, pino.destination({ dest: 2, sync: true }));
  audit.info(line, message);
}

/** Tells every running replica (their caches) through the session invalidation channel; false without Redis. */
async function publishInvalidation(config: Config, message: string): Promise<boolean> {
  if (!config.redis) return false;
  const redis = createRedisClient(config.redis, { tlsCa: config.redisTlsCa, commandTimeoutMs: config.redisCommandTimeoutMs, connectTimeoutMs: config.redisConnectTimeoutMs });
  try {
    await connectRedis(redis, 10_000);
    await redis.publish(invalidationChannel(config.redisPrefix), message);
    return true;
  } finally {
    redis.disconnect();
  }
}

/**
 * A name with leading/trailing whitespace or control characters is a typo or an attack (SPEC 4:
 * it would reach apps as another name, or break the store); refused before anything is stored.
 */
function checkName(name: string): void {
  const problem = identityValueProblem('user name', name);
  if (problem) throw new UsageError(problem);
}

async function revokeIfPossible(config: Config, user: string, reason: string): Promise<string> {
  if (!config.redis) return 'no Redis configured, no sessions to revoke';
  let revoked = 0;
  await withSessionStore(config, async (store) => {
    revoked = await store.deleteByUser(user);
  });
  // Cached Basic credentials and tokens of the user are read again on every replica.
  await publishInvalidation(config, userMessage(user));
  auditRevocation(config, user, revoked, reason);
  return `${revoked} session(s) revoked`;
}

/**
 * SPEC 7: every revocation has an audit line, as the gateway writes for logins and logouts. It goes
 * to standard error as one JSON log line, so standard output stays what scripts read (the count).
 */
function auditRevocation(config: Config, user: string, sessions: number, command: string): void {
  const audit = createLogger(config.logLevel, pino.destination({ dest: 2, sync: true }));
  audit.info({ audit: 'revocation', user, sessions, by: 'cli', command, outcome: 'success' }, 'sessions revoked');
}

async function withPool(config: Config, work: (pool: pg.Pool) => Promise<void>): Promise<number> {
  if (!config.databaseUrl) throw new UsageError('this command needs DATABASE_URL');
  const pool = createPgPool(config.databaseUrl);
  try {
    await work(pool);
    return 0;
  } finally {
    await pool.end();
  }
}

async function withSessionStore(config: Config, work: (store: SessionStore) => Promise<void>): Promise<number> {
  if (!config.redis) throw new UsageError('this command needs Redis (REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES)');
  const redis = createRedisClient(config.redis, { tlsCa: config.redisTlsCa, commandTimeoutMs: config.redisCommandTimeoutMs, connectTimeoutMs: config.redisConnectTimeoutMs });
  const store = createRedisSessionStore(redis, { prefix: config.redisPrefix });
  try {
    await connectRedis(redis, 10_000);
    await work(store);
    return 0;
  } finally {
    await store.close();
    redis.disconnect();
  }
}

/** Needs no configuration: the key goes to standard output, e.g. `> identity.pem` under `umask 077`. */
function keysCommand(args: string[], alg: string | undefined): number {
  if (args.length !== 1 || args[0] !== 'generate') throw new UsageError('keys needs exactly one action: generate');
  const chosen = alg ?? 'EdDSA';
  if (chosen !== 'EdDSA' && chosen !== 'ES256') throw new UsageError(`--alg must be EdDSA or ES256 (got ${JSON.stringify(chosen)})`);
  process.stdout.write(exportPrivateKeyPem(generateSigningKey(chosen)));
  return 0;
}

async function readPassword(fromStdin: boolean | undefined): Promise<string> {
  if (!fromStdin) throw new UsageError('pass the password on standard input with --password-stdin');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length;
    if (size > MAX_STDIN_BYTES) throw new UsageError('password on standard input is too long');
    chunks.push(chunk as Buffer);
  }
  const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (password === '') throw new UsageError('empty password on standard input');
  return password;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ConfigError) {
      for (const line of err.problems) console.error(`config error: ${line}`);
      process.exit(1);
    }
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`session-gateway: ${(err as Error).message}\n${USAGE}`);
      process.exit(2);
    }
    if (err instanceof UserAdminError || err instanceof TokenAdminError) {
      console.error(`session-gateway: ${err.message}`);
      process.exit(1);
    }
    console.error(`session-gateway: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
