// The one access decision: who may pass, for every door (the proxied HTTP routes, WebSocket
// upgrades, which pass through the same preHandler, the forward-auth verify route and its fast
// path). A door turns what it knows of a request into `decide({ path, method, credentials })` and
// only *renders* the verdict: redirect, 401, 403, 204, forward. Nothing else in the gateway matches
// a rule, reads the path-parameter readings of a path, or looks a principal up for access. Built
// once per app (app.ts) from plain options: no Config, no GatewayDeps.
//
// Seams, for what comes next:
// - Credentials. A principal is found by an ordered list of `Authenticator`s (options.authenticators);
//   the session cookie (`sessionCookieAuthenticator`) is the first. To add a kind (API tokens from
//   `Authorization: Bearer sgw_pat_…`, HTTP Basic), write an `Authenticator` in its own folder
//   (tokens/, basic/ …) and append it in app.ts. Each one answers `missing` when its credential is
//   not in the request, and the next is asked; the first that finds its credential decides
//   (valid, or invalid/expired/revoked: a presented credential that fails is never rescued by
//   another one). `Principal.ambient` says whether a browser attaches the credential by itself
//   (cookie, Basic: yes; a bearer token: no); the cross-site WebSocket rule reads it. Doors keep the
//   principal on `request.principal` (access log, WebSocket audit). The verify fast path only takes
//   requests carrying the session cookie; any other credential is decided by the verify route.
// - Step-up. A rule that needs a second factor (`"mfa": true`) is checked in `decide`, right after
//   the rule has allowed the principal, from `Principal.secondFactor` (the session authenticator
//   reads the record's amr): the verdict is `second-factor`, which the proxy renders as a redirect
//   to <prefix>/mfa (401 naming it for non-navigations) and forward-auth as a 401 whose Location
//   is that step. Every door renders verdicts in an exhaustive `switch` that ends in
//   `unreachable(verdict)`, so a new verdict kind fails to compile until each door renders it.
// - Reload. Everything compiled from the rule options lives in one immutable `CompiledRules`;
//   `replaceRules(...)` compiles a new one (throwing, with the old one kept, if it cannot) and
//   swaps the reference. `decide` reads the reference once at its start, so a request is decided
//   wholly by the old rules or wholly by the new ones; the next request sees the new ones.
import type { IncomingHttpHeaders } from 'node:http';
import type { ActiveSession, Validation } from '../session/manager.js';
import type { Identity } from '../session/types.js';
import { createPathMatcher, otherReadings, pathForLog, type PathReading } from './paths.js';
import { createAccessRules, decideAccess, DEFAULT_RULE, forwardedIdentity, type AccessRule, type AccessRuleSpec, type OtherReadings } from './rules.js';

/** What a request presents to prove who it is. */
export interface Credentials {
  /** Parsed cookies (the same parser everywhere: @fastify/cookie's). */
  readonly cookies: Readonly<Record<string, string | undefined>>;
  /** The request's headers (`authorization` for tokens and Basic). */
  readonly headers: IncomingHttpHeaders;
  /** The client's address as the gateway believes it (trusted proxies): password checks are throttled by it. */
  readonly ip?: string;
}

/** Someone the gateway recognised, by whatever credential. */
export interface Principal {
  /** The authenticator that found it: `session` today. */
  readonly kind: string;
  /** Stable per credential: keys caches of what is derived from it (the signed identity token). */
  readonly idHash: string;
  readonly record: Identity;
  /** The session, when the principal is one (cookie renewal, the WebSocket registry, access log). */
  readonly session: ActiveSession | null;
  /** Whether a browser sends the credential by itself, from any site (cookies, Basic). */
  readonly ambient: boolean;
  /** Whether it was established with a second factor (a session's amr holds `otp` or `hwk`); absent: no. */
  readonly secondFactor?: boolean;
}

export type FailedOutcome = 'missing' | 'invalid' | 'expired' | 'revoked';

export type Authentication = { outcome: 'valid'; principal: Principal } | { outcome: FailedOutcome; /** Whether the door should clear the session cookie. */ clearCookie: boolean };

/**
 * A value, or a promise of it: what the gate and its authenticators answer, so that a request the
 * session cache decides goes through without a promise (and a microtask) per layer.
 */
export type Awaitable<T> = T | Promise<T>;

export function isPromise<T>(value: Awaitable<T>): value is Promise<T> {
  return value instanceof Promise;
}

export interface Authenticator {
  readonly kind: string;
  /** Whether the credential is in the request at all (no store call): the audit lookup asks only those. */
  presented(credentials: Credentials): boolean;
  /**
   * `missing` when this kind of credential is not in the request (the next authenticator is asked).
   * Throws (or rejects with) a 503 GatewayError when its store cannot answer.
   */
  authenticate(credentials: Credentials): Awaitable<Authentication>;
}

export interface AccessRequest {
  /** Normalised path (paths.ts); null when the door could not learn which request it is asked about. */
  path: string | null;
  /** Upper-case method; null when not known (forward-auth without a method header). */
  method: string | null;
  /** Normalised path a WebDAV COPY/MOVE writes to (its Destination, destination.ts): the rules there must allow it too. */
  destination?: string | undefined;
  /** The path a query-string router reads from the query (paths.ts queryRoutedPath): the rules matching it must allow it too. */
  routed?: string | undefined;
  /** Other methods the app may take the request for (method-override.ts `?_method=DELETE`): the rules for them must allow it too. */
  methods?: readonly string[] | undefined;
  /** The request reads everything under its path (PROPFIND Depth infinity, destination.ts): the rules inside must allow it too. */
  wholeTree?: boolean | undefined;
  /** Paths a trusted proxy's X-Original-URL / X-Rewrite-URL name (rewritten-url.ts): the rules for them must allow it too. */
  rewritten?: readonly string[] | undefined;
  /** Other paths the app acts on: a WebDAV body's hrefs (body-paths.ts), a Destination without a trusted base path (request-readings.ts). The rules for them must allow it too. */
  named?: readonly string[] | undefined;
  credentials: Credentials;
}

export type Verdict =
  | { kind: 'public'; rule: AccessRule }
  | {
      kind: 'allow';
      rule: AccessRule;
      principal: Principal;
      /** What is forwarded: the principal with its groups narrowed by the rule (`forward_groups`). */
      forwarded: { idHash: string; record: Identity };
    }
  | { kind: 'login'; rule: AccessRule; outcome: FailedOutcome; clearCookie: boolean }
  /** `principal` null for a `deny` rule (then `user` is looked up for the audit line only). */
  | { kind: 'forbidden'; rule: AccessRule; user: string | null; principal: Principal | null }
  /** The rule allows the principal, but only after a second factor (`"mfa": true`): step-up. */
  | { kind: 'second-factor'; rule: AccessRule; principal: Principal }
  /** The path is unknown and the rules refuse someone somewhere: nothing can be allowed. */
  | { kind: 'undecidable'; reason: string };

/** An app logout path (GATEWAY_LOGOUT_PATHS): only doors that can end a session ask for it. */
export type LogoutVerdict = { kind: 'logout' };

export interface GateRules {
  /** GATEWAY_PUBLIC_PATHS: public rules placed first. */
  publicPaths: readonly string[];
  /** GATEWAY_ACCESS_RULES. */
  rules: readonly AccessRuleSpec[];
  /** GATEWAY_LOGOUT_PATHS. */
  logoutPaths: readonly string[];
}

export interface GateOptions extends GateRules {
  /** Asked in order; the session cookie first. */
  authenticators: readonly Authenticator[];
}

export interface Gate {
  /** Synchronous when nothing needs a store (a cached session, a public path); may throw or reject with a 503. */
  decide(request: AccessRequest & { logout: true }): Awaitable<Verdict | LogoutVerdict>;
  decide(request: AccessRequest): Awaitable<Verdict>;
  /** Who presents these credentials, for an audit line only: null also when a store cannot answer. */
  userForAudit(credentials: Credentials): Promise<string | null>;
  /** Compile new rules and use them from the next request on; throws (old rules kept) when they do not compile. */
  replaceRules(rules: GateRules): void;
  /** Whether any rule names methods (so an unknown method can change a decision). */
  readonly methodScoped: boolean;
  /** Whether there are any rules or public paths (without, every path meets the default rule). */
  readonly hasRules: boolean;
  /** The rule a request with a path meets, without authenticating: whether another reading would change it. */
  ruleFor(request: AccessRequest & { path: string }): AccessRule;
}

interface CompiledRules {
  match(path: string, method: string | null, also?: OtherReadings, readings?: readonly PathReading[]): AccessRule;
  methodScoped: boolean;
  hasRules: boolean;
  isLogoutPath(path: string, readings?: readonly PathReading[]): boolean;
  /** Whether an unknown path must be refused: a rule refuses someone, or narrows what is sent. */
  restrictsUnknownPath: boolean;
}

const UNKNOWN_PATH_REASON = 'access rules need the original request (X-Forwarded-Uri or X-Original-URI from a trusted proxy)';
const UNDECIDABLE: Verdict = Object.freeze({ kind: 'undecidable', reason: UNKNOWN_PATH_REASON });
const LOGOUT: LogoutVerdict = Object.freeze({ kind: 'logout' });
const NOT_PRESENTED: Authentication = Object.freeze({ outcome: 'missing', clearCookie: false });

export function createGate(options: GateOptions): Gate {
  const authenticators = [...options.authenticators];
  let current = compile(options);

  /** The authenticators from `from` on, in order: the first that finds its credential decides. */
  const authenticate = (credentials: Credentials, onlyPresented = false, from = 0, missing = NOT_PRESENTED): Awaitable<Authentication> => {
    for (let i = from; i < authenticators.length; i++) {
      const authenticator = authenticators[i]!;
      if (onlyPresented && !authenticator.presented(credentials)) continue;
      const found = authenticator.authenticate(credentials);
      if (isPromise(found)) return found.then((answer) => (answer.outcome === 'missing' ? authenticate(credentials, onlyPresented, i + 1, answer) : answer));
      if (found.outcome !== 'missing') return found;
      missing = found;
    }
    return missing;
  };

  const userForAudit = async (credentials: Credentials): Promise<string | null> => {
    let found: Authentication;
    try {
      found = await authenticate(credentials, true);
    } catch {
      return null;
    }
    return found.outcome === 'valid' ? found.principal.record.user : null;
  };

  /** The verdict once the principal (or its absence) is known. */
  const judge = (rule: AccessRule, found: Authentication): Verdict => {
    if (found.outcome !== 'valid') return { kind: 'login', rule, outcome: found.outcome, clearCookie: found.clearCookie };
    const { principal } = found;
    if (decideAccess(rule, principal.record) === 'forbidden') return { kind: 'forbidden', rule, user: principal.record.user, principal };
    // Step-up: a rule asking for a second factor the principal lacks gets its own verdict.
    if (rule.mfa && principal.secondFactor !== true) return { kind: 'second-factor', rule, principal };
    return { kind: 'allow', rule, principal, forwarded: forwardedIdentity(rule, principal) };
  };

  function decide(request: AccessRequest & { logout?: boolean }): Awaitable<Verdict | LogoutVerdict> {
    const rules = current;
    let rule: AccessRule;
    if (request.path === null) {
      if (rules.restrictsUnknownPath) return UNDECIDABLE;
      // No rule refuses anyone here, so a Destination's rule could add nothing to the default.
      rule = DEFAULT_RULE;
    } else {
      // The other readings of the path, once for the logout check and the rules.
      const readings = otherReadings(request.path);
      const { routed, rewritten } = request;
      if (request.logout === true && (rules.isLogoutPath(request.path, readings) || (routed !== undefined && rules.isLogoutPath(routed)) || (rewritten?.some((path) => rules.isLogoutPath(path)) ?? false))) return LOGOUT;
      rule = matchRule(rules, request, request.path, readings);
    }
    if (rule.policy === 'public') return { kind: 'public', rule };
    if (rule.policy === 'deny') return userForAudit(request.credentials).then((user) => ({ kind: 'forbidden', rule, user, principal: null }));
    const found = authenticate(request.credentials);
    return isPromise(found) ? found.then((answer) => judge(rule, answer)) : judge(rule, found);
  }

  return {
    decide: decide as Gate['decide'],
    userForAudit,
    replaceRules(rules) {
      current = compile(rules);
    },
    get methodScoped() {
      return current.methodScoped;
    },
    get hasRules() {
      return current.hasRules;
    },
    ruleFor: (request) => matchRule(current, request, request.path, otherReadings(request.path)),
  };
}

/** The rule for a path and every other reading of the request (rules.ts). */
function matchRule(rules: CompiledRules, request: AccessRequest, path: string, readings: readonly PathReading[]): AccessRule {
  const { destination, routed, methods, wholeTree, rewritten, named } = request;
  const also = destination === undefined && routed === undefined && methods === undefined && wholeTree !== true && rewritten === undefined && named === undefined ? undefined : { destination, routed, methods, wholeTree, rewritten, named };
  return rules.match(path, request.method, also, readings);
}

function compile(options: GateRules): CompiledRules {
  const access = createAccessRules(options.publicPaths, options.rules);
  const logoutPath = createPathMatcher(options.logoutPaths);
  // Express and IIS route `/LOGOUT` as `/logout`: the app's logout in any case is ours too.
  // Only needed when something has a capital letter (the path, or a configured logout path).
  const caselessLogoutPath = options.logoutPaths.length === 0 ? null : createPathMatcher(options.logoutPaths.map((path) => path.toLowerCase()));
  const logoutPathsHaveCase = options.logoutPaths.some((path) => path !== path.toLowerCase());
  const caselessLogout = (path: string): boolean => {
    if (caselessLogoutPath === null) return false;
    const lower = path.toLowerCase();
    return (lower !== path || logoutPathsHaveCase) && caselessLogoutPath(lower);
  };
  return Object.freeze({
    match: access.match,
    methodScoped: access.methodScoped,
    hasRules: options.publicPaths.length > 0 || options.rules.length > 0,
    // SPEC 4: `/logout;jsessionid=…` is the app's logout for a Servlet container,
    // `/index.php/logout` for a PHP front controller and `/logout.json` for Rails, so they are ours too.
    isLogoutPath: (path: string, readings = otherReadings(path)) => {
      if (logoutPath(path)) return true;
      for (let i = 0; i < readings.length; i++) if (logoutPath((readings[i] as PathReading).path)) return true;
      if (caselessLogout(path)) return true;
      for (let i = 0; i < readings.length; i++) if (caselessLogout((readings[i] as PathReading).path)) return true;
      return false;
    },
    // Without the original request no rule can be looked up: with rules that refuse someone
    // (deny, groups), letting any session through would open them, so refuse instead. The same
    // for a rule that narrows the groups sent: the full list must not go out instead.
    // The same for a rule that asks for a second factor: a password-only session must not pass.
    restrictsUnknownPath: options.rules.some((rule) => rule.policy === 'deny' || rule.policy === 'groups' || rule.forwardGroups !== null || rule.mfa === true),
  });
}

/** RFC 8176 methods that count as a second factor: a one-time password, a hardware key (passkey). */
const SECOND_FACTORS: ReadonlySet<string> = new Set(['otp', 'hwk']);

/** The session cookie: the first authenticator. */
export function sessionCookieAuthenticator(options: { cookieName: string; validate(cookie: string | undefined): Awaitable<Validation> }): Authenticator {
  const { cookieName, validate } = options;
  return {
    kind: 'session',
    presented: (credentials) => credentials.cookies[cookieName] !== undefined,
    authenticate(credentials) {
      // Validated even when absent: the validations metric counts anonymous requests as `missing`.
      const validation = validate(credentials.cookies[cookieName]);
      return isPromise(validation) ? validation.then(sessionAuthentication) : sessionAuthentication(validation);
    },
  };
}

function sessionAuthentication(validation: Validation): Authentication {
  if (validation.outcome !== 'valid') return { outcome: validation.outcome, clearCookie: validation.outcome !== 'missing' };
  const session = validation.session;
  const secondFactor = session.record.amr?.some((method) => SECOND_FACTORS.has(method)) === true;
  return { outcome: 'valid', principal: { kind: 'session', idHash: session.idHash, record: session.record, session, ambient: true, secondFactor } };
}

/**
 * Cross-site WebSocket hijacking: browsers apply no CORS to WebSockets, so a page on another origin
 * that the browser attaches a cookie (or Basic credentials) for could read the app. A socket
 * opened with such a principal must come from the gateway's own origin, like a login POST.
 */
export function refusesCrossSiteWebSocket(principal: Principal | null, sameOrigin: boolean): boolean {
  return principal !== null && principal.ambient && !sameOrigin;
}

/** What refusal audit lines are written to (a pino logger, a fastify request's log). */
export interface AuditLog {
  warn(fields: object, message: string): void;
}

/**
 * The one refusal audit line, the same fields from every door (docs/routing.md): who, from where,
 * which path (path parameters redacted) and which rule. Warn: forward-auth's info lines are off by
 * default, and a refusal must be logged whatever the door.
 */
export function auditRefusal(log: AuditLog, verdict: Extract<Verdict, { kind: 'forbidden' }>, request: { ip: string; path: string }): void {
  log.warn({ audit: 'access_denied', user: verdict.user, ip: request.ip, path: pathForLog(request.path), rule: verdict.rule.index, policy: verdict.rule.policy }, 'access denied');
}

/** The end of every door's exhaustive `switch (verdict.kind)`: a new verdict kind fails to compile until each door renders it. */
export function unreachable(verdict: never): never {
  throw new Error(`unrendered access verdict ${JSON.stringify(verdict)}`);
}
