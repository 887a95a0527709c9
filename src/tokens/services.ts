// Builds the token and Basic pieces once at start-up from plain options (no Config here).
import type pg from 'pg';
import type { SessionStore } from '../session/types.js';
import type { VerifyOptions, VerifyResult } from '../users/passwords.js';
import type { UserRecord } from '../users/user-store.js';
import { createHeaderAuthenticator, type HeaderAuthenticator } from './authenticator.js';
import { createBasicVerifier, type BasicThrottle, type BasicVerifier } from './basic.js';
import { createTokenInvalidation, invalidationChannel, type TokenInvalidation } from './invalidation.js';
import { createPostgresTokenStore, type TokenStore } from './token-store.js';
import { createTokenVerifier, type TokenOutcome, type TokenVerifier } from './verifier.js';

export interface TokenServices {
  store: TokenStore | null;
  tokens: TokenVerifier | null;
  basic: BasicVerifier | null;
  authenticator: HeaderAuthenticator;
  invalidation: TokenInvalidation;
}

export interface TokenServicesOptions {
  /** null: no PostgreSQL, so no tokens (a Bearer sgw_pat_ is refused; Basic with a password still works). */
  pool: pg.Pool | null;
  sessionStore: Pick<SessionStore, 'onInvalidation' | 'invalidationsLive'>;
  /** null: the in-process session store; otherwise PUBLISH on the session invalidation channel. */
  redis: { publish(channel: string, message: string): Promise<unknown> } | null;
  redisPrefix: string;
  findUser(username: string): Promise<UserRecord | null>;
  verifyPassword(stored: string | null, password: string, options: VerifyOptions): Promise<VerifyResult>;
  allowPlaintext: boolean;
  throttle: BasicThrottle;
  cacheMaxEntries: number;
  cacheTtlMs: number;
  lastUsedIntervalMs: number;
  basicAuth: boolean;
  basicAuthCacheMs: number;
  /** GATEWAY_MFA: whether a user's password alone is not enough (Basic with a password is then refused). */
  needsSecondFactor?: (user: string) => Promise<boolean>;
  now?: () => number;
  /** Another token store over the same pool (a test counting calls). */
  tokenStore?: TokenStore;
  events?: { validated?(outcome: TokenOutcome): void; storeError?(err: unknown, operation: string): void };
}

export function createTokenServices(options: TokenServicesOptions): TokenServices {
  const { redis } = options;
  const channel = invalidationChannel(options.redisPrefix);
  const invalidation = createTokenInvalidation(options.sessionStore, redis ? (message) => redis.publish(channel, message) : null);
  const store = options.tokenStore ?? (options.pool ? createPostgresTokenStore(options.pool) : null);
  const tokens = store
    ? createTokenVerifier({
      store,
      findUser: options.findUser,
      invalidation,
      maxEntries: options.cacheMaxEntries,
      ttlMs: options.cacheTtlMs,
      lastUsedIntervalMs: options.lastUsedIntervalMs,
      ...(options.now ? { now: options.now } : {}),
      ...(options.events ? { events: options.events } : {}),
    })
    : null;
  const basic = options.basicAuth
    ? createBasicVerifier({
      findUser: options.findUser,
      verifyPassword: options.verifyPassword,
      allowPlaintext: options.allowPlaintext,
      throttle: options.throttle,
      tokens,
      invalidation,
      cacheTtlMs: options.basicAuthCacheMs,
      ...(options.needsSecondFactor ? { needsSecondFactor: options.needsSecondFactor } : {}),
    })
    : null;
  return { store, tokens, basic, authenticator: createHeaderAuthenticator({ tokens, basic }), invalidation };
}

/**
 * A user's password changed, or a second factor was set up (their password alone then opens
 * nothing): every replica forgets the user's cached Basic credentials and token lookups. This one
 * at once; if the message cannot be published, the others' entries run out with their cache time
 * (GATEWAY_BASIC_AUTH_CACHE), and the failure is logged.
 */
export async function forgetUserCredentials(tokens: TokenServices | undefined, user: string, log: { warn(details: object, message: string): void }): Promise<void> {
  if (tokens === undefined) return;
  await tokens.invalidation.userChanged(user).catch((err: unknown) => {
    log.warn({ user, err: err instanceof Error ? err.message : String(err) }, 'could not tell the other replicas to forget cached credentials of this user');
  });
}
