// The gateway's own routes under GATEWAY_AUTH_PREFIX (SPEC section 3): login, logout (logout.ts),
// session (verify is in forward-auth/). The login handler follows Authelia's order: throttle
// check → look up the user → verify the password (always, even for unknown users) → record the
// attempt → new session id.
import formbody from '@fastify/formbody';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { GatewayDeps } from '../context.js';
import { GatewayError, sessionStoreUnavailable, userStoreUnavailable } from '../errors.js';
import { clearSessionCookie, isSameOrigin, noStore, setSessionCookie, wantsJson } from '../http.js';
import { safeRedirectTarget } from '../access/paths.js';
import { CSRF_COOKIE, CSRF_TTL_SECONDS, dropsSecureCookies, SECURE_COOKIE_OVER_HTTP } from './csrf.js';
import { createReplaceableLoginPage } from './login-page.js';
import { createLogout } from './logout.js';
import { createInFlightGate, LimiterBusyError } from '../users/concurrency.js';
import { createFirstSeen, hashPassword, isUnrecognisedHash, UNRECOGNISED_HASH_HINT, verifyPassword } from '../users/passwords.js';
import { hasControlCharacters } from '../users/user-admin.js';
import type { UserRecord } from '../users/user-store.js';
import { PASSWORD_ONLY } from '../session/types.js';
import { beginSecondStep, mfaRoutes } from './mfa-routes.js';
import { describeClient } from '../session/client.js';

const LOGIN_BODY_LIMIT_BYTES = 16 * 1024;
const MAX_USERNAME_LENGTH = 256;
const MAX_PASSWORD_LENGTH = 4096;
const GENERIC_FAILURE = 'Invalid username or password.';
/**
 * Sign-ins one client address may have waiting for or running a password hash at once. Logins
 * take ~50 ms each, so two in flight still let one NAT address sign in dozens of users a second.
 */
const MAX_LOGINS_IN_FLIGHT_PER_ADDRESS = 2;
/** A shed sign-in: the queue drains within a couple of seconds (concurrency.ts HASHING_QUEUE). */
const BUSY_RETRY_AFTER_SECONDS = 2;

interface LoginInput {
  username: string;
  password: string;
  rd: string;
  csrf: unknown;
}

type FailureReason = 'unknown_user' | 'wrong_password' | 'disabled' | 'no_password' | 'invalid_username' | 'unrecognised_hash';

export async function authRoutes(app: FastifyInstance, deps: GatewayDeps): Promise<void> {
  const { config, sessions, users, throttle, csrf, metrics } = deps;
  const loginPage = deps.loginPage ?? createReplaceableLoginPage(config.loginBranding);
  const prefix = config.authPrefix;
  const loginPath = `${prefix}/login`;
  const loginsInFlight = createInFlightGate(MAX_LOGINS_IN_FLIGHT_PER_ADDRESS);
  // Once per user and process: the hint is for the operator, not a line per attempt.
  const unrecognisedHashUsers = createFirstSeen();

  await app.register(formbody, { bodyLimit: LOGIN_BODY_LIMIT_BYTES });

  app.addHook('onSend', async (_request, reply) => {
    noStore(reply);
    reply.header('x-content-type-options', 'nosniff');
    // Not no-referrer: with it browsers send `Origin: null` on the form's POST, and the same-origin
    // check refuses every sign-in. same-origin still tells other sites nothing.
    reply.header('referrer-policy', 'same-origin');
    reply.header('x-frame-options', 'DENY');
  });

  const showLoginPage = (reply: FastifyReply, status: number, model: { rd: string; username?: string; error?: string; invalid?: boolean; notice?: string }) => {
    const tokens = csrf.issue();
    reply.setCookie(CSRF_COOKIE, tokens.cookie, {
      httpOnly: true,
      sameSite: 'strict',
      secure: config.cookieSecure,
      path: prefix,
      maxAge: CSRF_TTL_SECONDS,
    });
    const page = loginPage.current;
    reply.header('content-security-policy', page.csp);
    return reply
      .code(status)
      .type('text/html; charset=utf-8')
      .send(page.render({ title: config.loginTitle, action: loginPath, csrfToken: tokens.token, ...model }));
  };

  app.get('/login', async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    const notice = query.logged_out !== undefined ? 'You have been signed out.' : query.expired !== undefined ? 'Your session has expired. Please sign in again.' : undefined;
    return showLoginPage(reply, 200, { rd: safeRedirectTarget(query.rd), ...(notice ? { notice } : {}) });
  });

  app.post('/login', { bodyLimit: LOGIN_BODY_LIMIT_BYTES }, async (request, reply) => {
    const json = wantsJson(request);
    // `invalid`: the message is about what was typed, so the fields are flagged too.
    const refuse = (status: number, message: string, extra: { rd?: string; username?: string; invalid?: boolean } = {}) =>
      json
        ? reply.code(status).send({ error: message })
        : showLoginPage(reply, status, { rd: extra.rd ?? '/', error: message, invalid: extra.invalid === true, ...(extra.username ? { username: extra.username } : {}) });

    if (!isSameOrigin(request, config)) return refuse(403, 'Cross-origin sign-in requests are refused.');
    const input = readLoginInput(request.body);
    if (!input) return refuse(400, 'Username and password are required.', { invalid: true });
    if (!json && !csrf.verify(request.cookies[CSRF_COOKIE], input.csrf)) {
      if (config.cookieSecure && request.cookies[CSRF_COOKIE] === undefined && dropsSecureCookies(config.publicUrl?.protocol ?? request.protocol, config.publicUrl?.hostname ?? request.hostname)) {
        request.log.warn({ audit: 'login', ip: request.ip, outcome: 'csrf_cookie_missing' }, SECURE_COOKIE_OVER_HTTP);
        return refuse(403, SECURE_COOKIE_OVER_HTTP, { rd: input.rd });
      }
      return refuse(403, 'The sign-in form expired. Please try again.', { rd: input.rd });
    }
    const ip = request.ip;
    /** Too many sign-ins at once (issue 17.11): shed at no cost rather than queue without end. */
    const busy = (reason: string) => {
      metrics.logins.inc({ outcome: 'throttled' });
      request.log.warn({ audit: 'login', user: input.username, ip, outcome: 'throttled', by: 'busy', reason }, 'login refused: too many sign-ins at once');
      reply.header('retry-after', String(BUSY_RETRY_AFTER_SECONDS));
      return refuse(503, 'Too many sign-ins at once. Please try again in a few seconds.', { rd: input.rd, username: input.username });
    };
    // A few hash slots per address at a time: a flood from some addresses queues behind itself,
    // never ahead of everyone else's sign-in. Checked before the throttle: no Redis call either.
    if (!loginsInFlight.tryEnter(ip)) return busy('address_in_flight');
    try {
      // The throttle counters live in Redis: a Redis outage is a 503 like the session store's, not a 500.
      const verdict = await throttle.begin(input.username, ip).catch((err: unknown) => {
        metrics.logins.inc({ outcome: 'error' });
        throw sessionStoreUnavailable(err);
      });
      if (!verdict.allowed) {
        metrics.logins.inc({ outcome: 'throttled' });
        request.log.warn({ audit: 'login', user: input.username, ip, outcome: 'throttled', by: verdict.by }, 'login throttled');
        reply.header('retry-after', String(verdict.retryAfterSeconds));
        return refuse(429, 'Too many failed sign-in attempts. Try again later.', { rd: input.rd, username: input.username });
      }

      // A name with control characters (NUL makes PostgreSQL fail) names nobody: it never reaches
      // the user store, and is answered like an unknown user, dummy hash included (SPEC 4).
      const invalidName = hasControlCharacters(input.username);
      const user = invalidName ? null : await findUser(input.username);
      const result = await verifyPassword(user?.passwordHash ?? null, input.password, { allowPlaintext: config.allowPlaintextPasswords, queueKey: ip }).catch((err: unknown) => {
        if (err instanceof LimiterBusyError) return err;
        throw err;
      });
      if (result instanceof LimiterBusyError) {
        // Shed before its password was checked: the attempt is not held against the user or the
        // address, so a real user retrying through a flood is not locked out by it.
        await throttle.abandoned(input.username, ip).catch(() => undefined);
        return busy(result.reason);
      }
      const unrecognised = isUnrecognisedHash(user?.passwordHash, result, { allowPlaintext: config.allowPlaintextPasswords });
      if (user && unrecognised && unrecognisedHashUsers.first(user.username)) request.log.warn({ user: user.username }, UNRECOGNISED_HASH_HINT);
      const failure: FailureReason | null = invalidName ? 'invalid_username' : !user ? 'unknown_user' : !user.passwordHash ? 'no_password' : unrecognised ? 'unrecognised_hash' : !result.ok ? 'wrong_password' : user.disabled ? 'disabled' : null;
      if (failure || !user) {
        metrics.logins.inc({ outcome: 'failure' });
        request.log.warn({ audit: 'login', user: input.username, ip, outcome: 'failure', reason: failure }, 'login failed');
        return refuse(401, GENERIC_FAILURE, { rd: input.rd, username: input.username, invalid: true });
      }

      await throttle.succeeded(input.username, ip).catch(() => undefined);
      const secondStep = deps.mfa ? await deps.mfa.service.nextStep(user.username).catch((err: unknown) => {
        metrics.logins.inc({ outcome: 'error' });
        throw userStoreUnavailable(err);
      }) : null;
      // A new id at every login, and the old one (if any) ended: no session fixation.
      await sessions.destroy(request.cookies[config.cookieName]).catch(() => undefined);
      if (deps.mfa && secondStep) {
        // The password was right; a second step remains. No session yet: a pending sign-in under
        // its own cookie, which opens nothing but that step (SPEC 9).
        const next = await beginSecondStep(deps, deps.mfa, reply, { user: user.username, email: user.email, groups: user.groups, passwordHash: user.passwordHash }, secondStep, input.rd);
        clearSessionCookie(reply, config);
        metrics.logins.inc({ outcome: 'success' });
        request.log.info({ audit: 'login', user: user.username, ip, outcome: 'success', scheme: result.scheme, next: secondStep }, 'password accepted; second step pending');
        if (result.needsRehash) upgradeHash(request, user, input.password);
        if (json) return reply.code(200).send({ next });
        return reply.code(303).header('location', next).send();
      }
      const created = await sessions.create({ user: user.username, email: user.email, groups: user.groups }, { passwordHash: user.passwordHash, client: describeClient(request.headers['user-agent']) });
      // GATEWAY_MAX_SESSIONS_PER_USER; a store failure here was counted and logged by the manager.
      const capped = await sessions.endSessionsBeyondCap(user.username).catch(() => 0);
      if (capped > 0) request.log.info({ audit: 'revocation', user: user.username, sessions: capped, by: 'login', reason: 'session_cap', ip, outcome: 'success' }, 'oldest sessions ended: session cap');
      setSessionCookie(reply, config, created.cookieValue);
      reply.clearCookie(CSRF_COOKIE, { path: prefix });
      metrics.logins.inc({ outcome: 'success' });
      request.log.info({ audit: 'login', user: user.username, ip, outcome: 'success', scheme: result.scheme }, 'login succeeded');
      if (result.needsRehash) upgradeHash(request, user, input.password);

      if (json) return reply.code(200).send({ user: user.username, email: user.email, groups: user.groups, expiresAt: new Date(created.record.expiresAt).toISOString() });
      return reply.code(303).header('location', input.rd).send();
    } finally {
      loginsInFlight.leave(ip);
    }
  });

  const logout = createLogout({ config, sessions }).route;
  app.get('/logout', logout);
  app.post('/logout', logout);

  app.get('/session', async (request, reply) => {
    const validation = await sessions.validate(request.cookies[config.cookieName]);
    if (validation.outcome !== 'valid') return reply.code(401).send({ error: 'not signed in' });
    const { record } = validation.session;
    return { user: record.user, email: record.email, groups: record.groups, amr: record.amr ?? PASSWORD_ONLY, expiresAt: new Date(record.expiresAt).toISOString() };
  });

  // The second step and enrolment (GATEWAY_MFA optional or required); off: they are unknown paths.
  if (deps.mfa) await mfaRoutes(app, deps, deps.mfa);

  // Unknown paths under the gateway's prefix are the gateway's, never the app's.
  app.all('/*', async (_request, reply) => reply.code(404).send({ error: 'not found' }));

  async function findUser(username: string): Promise<UserRecord | null> {
    const started = performance.now();
    try {
      return await users.find(username);
    } catch (err) {
      metrics.logins.inc({ outcome: 'error' });
      throw err;
    } finally {
      // The generated single user (embedded mode) is not a store worth a latency series.
      if (users.kind === 'postgres') metrics.storeOperationDuration.observe({ store: 'postgres', operation: 'find_user' }, (performance.now() - started) / 1_000);
    }
  }

  /** Legacy hashes become argon2id as users sign in; never delays or fails the login itself. */
  function upgradeHash(request: FastifyRequest, user: UserRecord, password: string): void {
    if (!config.userRehashQuery && config.userQuery) return;
    hashPassword(password)
      .then((hash) => users.rehash(user.username, hash))
      .then((updated) => request.log.info({ audit: 'rehash', user: user.username, updated }, 'password hash upgraded'))
      .catch((err: unknown) => request.log.warn({ err: errorSummary(err), user: user.username }, 'password hash upgrade failed'));
  }
}

function readLoginInput(body: unknown): LoginInput | null {
  if (typeof body !== 'object' || body === null) return null;
  const { username, password, rd, csrf } = body as Record<string, unknown>;
  if (typeof username !== 'string' || typeof password !== 'string') return null;
  if (username === '' || password === '' || username.length > MAX_USERNAME_LENGTH || password.length > MAX_PASSWORD_LENGTH) return null;
  return { username, password, rd: safeRedirectTarget(rd), csrf };
}

function errorSummary(err: unknown): { code?: string; message: string } {
  if (err instanceof GatewayError) return { code: err.code, message: err.message };
  return { message: err instanceof Error ? err.message : String(err) };
}
