// The signed identity token (X-Gateway-Identity, GATEWAY_IDENTITY_JWT=true): a short-lived JWT
// an app can verify instead of trusting plain headers.
//
// Signed with Node's own crypto rather than a JWT library: the gateway only ever *signs*, with
// one fixed header and claims it builds itself, which is a few lines over `crypto.sign` /
// `createHmac`. The hard part of JWT (parsing untrusted tokens, algorithm confusion, claim
// checks) happens in the app's verifying library, not here; no dependency is needed for this.
//
// The hot path stays cheap: tokens are cached per session and re-signed only once less than half
// of their lifetime is left, so a proxied request costs one map lookup, and a session costs at
// most one signature (tens of microseconds) per half lifetime. Trade-off: an app sees the same
// token, hence the same `jti`, on every request during that time; `jti` names a token, not a request.
import { createHmac, randomBytes, sign } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { canonicalHost } from '../http.js';
import type { Identity } from '../session/types.js';
import { sameGroups } from './headers.js';
import { generateSigningKey, type IdentityTokenAlg, type SigningKey } from './keys.js';

export const IDENTITY_TOKEN_HEADER = 'x-gateway-identity';

/** What a token says: who, and how the sign-in was established (`amr`, RFC 8176; default `pwd`). */
export type SignedIdentity = Identity & { amr?: readonly string[] };
export const DEFAULT_ISSUER = 'session-gateway';

/**
 * Only sessions active within the last token lifetime (at most 5 minutes) need an entry; past
 * this bound a miss costs one signature, never correctness. ~0.5 KB per entry.
 */
const TOKEN_CACHE_MAX = 50_000;

export interface IdentityTokens {
  readonly alg: IdentityTokenAlg;
  /**
   * The token for a session: cached, re-signed once less than half of its lifetime is left.
   * `audience` (default: the configured one) is the `aud` claim, so a token an app receives is not
   * accepted by another upstream that checks its own name.
   */
  tokenFor(session: { idHash: string; record: SignedIdentity }, audience?: string): string;
  /** The `aud` for an upstream: GATEWAY_IDENTITY_JWT_AUDIENCE when set, else the upstream's origin. */
  audienceFor(upstream: URL): string;
  /**
   * The `aud` of a forward-auth answer for the app at `host` (the original request's, checked by
   * hostRefusal): GATEWAY_IDENTITY_JWT_AUDIENCE when set; without GATEWAY_UPSTREAM
   * `https://<host>`, so a token app A receives is refused by app B behind the same gateway;
   * else the upstream's origin, as before.
   */
  audienceForHost(host: string): string;
  /** The JWKS document publishing every configured key; null in HMAC mode (nothing public to publish). */
  readonly jwksJson: string | null;
  /**
   * SIGHUP reload: from the next token on, the new first key (or HMAC secret) signs and the JWKS
   * publishes the new set. The algorithm stays (it is a plain variable). Tokens cached under the
   * old key are dropped, so none signed by a key no longer published keeps being sent.
   */
  replaceKeys(next: { keys: SigningKey[]; hmacSecret: string | null }): void;
}

export interface IdentityTokenOptions {
  alg: IdentityTokenAlg;
  /** Asymmetric modes: the first signs, all are published. */
  keys: SigningKey[];
  /** HS256 mode only. */
  hmacSecret: string | null;
  issuer: string;
  audience: string;
  /** True when the operator set the audience: it then holds for every upstream. */
  audienceFixed?: boolean;
  /** Forward-auth only (no GATEWAY_UPSTREAM, no fixed audience): name each app by its host. */
  audienceFromHost?: boolean;
  lifetimeMs: number;
  now?: () => number;
}

interface CachedToken {
  token: string;
  /** Epoch ms after which the token has less than half of its lifetime left. */
  refreshAt: number;
  /** What it says of the user: a session whose e-mail or groups changed (user recheck) gets a new one. */
  email: string | null;
  groups: string[];
}

const sameIdentity = (cached: CachedToken, identity: Identity) => cached.email === identity.email && sameGroups(cached.groups, identity.groups);

export function createIdentityTokens(options: IdentityTokenOptions): IdentityTokens {
  const now = options.now ?? Date.now;
  const lifetimeSeconds = Math.floor(options.lifetimeMs / 1_000);
  let signer = createSigner(options);
  let jwksJson = signer.jwks === null ? null : JSON.stringify(signer.jwks);
  const cache = new LRUCache<string, CachedToken>({ max: TOKEN_CACHE_MAX });

  const issue = (identity: SignedIdentity, audience: string, at: number): CachedToken => {
    const iat = Math.floor(at / 1_000);
    const claims = {
      iss: options.issuer,
      aud: audience,
      sub: identity.user,
      ...(identity.email ? { email: identity.email } : {}),
      groups: identity.groups,
      amr: identity.amr ?? ['pwd'],
      iat,
      exp: iat + lifetimeSeconds,
      jti: randomBytes(16).toString('base64url'),
    };
    const signingInput = `${signer.header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    return { token: `${signingInput}.${signer.sign(signingInput)}`, refreshAt: (iat + lifetimeSeconds / 2) * 1_000, email: identity.email, groups: identity.groups };
  };

  return {
    alg: options.alg,
    get jwksJson() {
      return jwksJson;
    },
    replaceKeys(next) {
      // Built before anything is swapped: a key that cannot sign throws here and nothing changes.
      const fresh = createSigner({ ...options, keys: next.keys, hmacSecret: next.hmacSecret });
      signer = fresh;
      jwksJson = fresh.jwks === null ? null : JSON.stringify(fresh.jwks);
      cache.clear();
    },
    tokenFor(session, audience = options.audience) {
      const at = now();
      const key = audience === options.audience ? session.idHash : `${session.idHash}@${audience}`;
      const cached = cache.get(key);
      if (cached !== undefined && at < cached.refreshAt && sameIdentity(cached, session.record)) return cached.token;
      const fresh = issue(session.record, audience, at);
      cache.set(key, fresh);
      return fresh.token;
    },
    audienceFor(upstream) {
      return options.audienceFixed ? options.audience : upstream.origin;
    },
    audienceForHost(host) {
      return options.audienceFromHost && host !== '' ? `https://${canonicalHost(host).withPort}` : options.audience;
    },
  };
}

interface Signer {
  /** The base64url JWS header, the same for every token. */
  header: string;
  sign(signingInput: string): string;
  jwks: { keys: SigningKey['publicJwk'][] } | null;
}

function createSigner(options: IdentityTokenOptions): Signer {
  if (options.alg === 'HS256') {
    const secret = options.hmacSecret;
    if (!secret) throw new Error('HS256 identity tokens need an HMAC secret');
    return {
      header: encodeHeader({ alg: 'HS256', typ: 'JWT' }),
      sign: (input) => createHmac('sha256', secret).update(input).digest('base64url'),
      jwks: null,
    };
  }
  const [first] = options.keys;
  if (!first || first.alg !== options.alg) throw new Error(`the first identity-token key must be an ${options.alg} key`);
  const { privateKey } = first;
  // JWS ES256 wants the raw r||s signature (IEEE P1363), not the DER that OpenSSL gives by default.
  const sign256 = (input: string) => sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  const signEd = (input: string) => sign(null, Buffer.from(input), privateKey);
  const signRaw = options.alg === 'ES256' ? sign256 : signEd;
  return {
    header: encodeHeader({ alg: options.alg, typ: 'JWT', kid: first.kid }),
    sign: (input) => signRaw(input).toString('base64url'),
    jwks: { keys: options.keys.map((k) => k.publicJwk) },
  };
}

function encodeHeader(header: Record<string, string>): string {
  return Buffer.from(JSON.stringify(header)).toString('base64url');
}

/** GATEWAY_IDENTITY_JWT_* as read at start-up (config.ts's `identityToken`). */
export interface IdentityTokenSettings {
  alg: IdentityTokenAlg;
  /** From GATEWAY_IDENTITY_JWT_KEY_FILES: the first signs, all are published. Empty: one generated per process. */
  keys: SigningKey[];
  /** HS256 only. */
  hmacSecret: string | null;
  /** null: GATEWAY_PUBLIC_URL's origin, else 'session-gateway'. */
  issuer: string | null;
  /** null: the upstream's origin. */
  audience: string | null;
  lifetimeMs: number;
}

/** What the start-up below reads: a few fields of Config, which callers pass as it is. */
export interface IdentityTokenStartup {
  /** null: signed identity tokens are off. */
  identityToken: IdentityTokenSettings | null;
  publicUrl: URL | null;
  upstream: URL | null;
  /** The embedded demo mode: a generated key is expected there, so no warning. */
  embedded: boolean;
}

/**
 * Start-up: the configured tokens with defaults resolved (issuer: the public origin, audience:
 * the upstream's origin), and one key generated for this process when none is configured
 * (allowed only without Redis, i.e. a single replica; config.ts enforces that).
 */
export function identityTokensFromConfig(config: IdentityTokenStartup, logger: Logger): IdentityTokens | null {
  const settings = config.identityToken;
  if (!settings) return null;
  let keys = settings.keys;
  if (settings.alg !== 'HS256' && keys.length === 0) {
    keys = [generateSigningKey(settings.alg)];
    if (!config.embedded) {
      logger.warn('GATEWAY_IDENTITY_JWT_KEY_FILES is not set: an identity-token key was generated for this process, so apps must fetch the JWKS again after a restart');
    }
  }
  const tokens = createIdentityTokens({
    alg: settings.alg,
    keys,
    hmacSecret: settings.hmacSecret,
    issuer: settings.issuer ?? config.publicUrl?.origin ?? DEFAULT_ISSUER,
    // Without GATEWAY_UPSTREAM (forward-auth, or the demo app on a random port) there is no stable
    // upstream origin to name, so the same name every replica agrees on; forward-auth answers name
    // the app by the original request's host instead (audienceForHost).
    audience: settings.audience ?? config.upstream?.origin ?? config.publicUrl?.origin ?? DEFAULT_ISSUER,
    audienceFixed: settings.audience !== null,
    audienceFromHost: settings.audience === null && config.upstream === null,
    lifetimeMs: settings.lifetimeMs,
  });
  logger.info({ alg: settings.alg, kid: keys[0]?.kid ?? null, published: keys.length, lifetimeMs: settings.lifetimeMs }, 'signed identity tokens enabled');
  return tokens;
}
