// Self-service under GATEWAY_AUTH_PREFIX (SPEC 3, 9): `account/password` (change one's own
// password) and `account/sessions` (where am I signed in; sign out one or all others). Gateway
// routes: the session is read the way `<prefix>/session` reads it, and every POST is refused from
// another origin and (forms) without the CSRF token, as the login form is. Both work as HTML forms
// without JavaScript (303 back with a notice) and as JSON (`Content-Type: application/json`).
import formbody from '@fastify/formbody';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { GatewayDeps } from '../context.js';
import { GatewayError, sessionStoreUnavailable } from '../errors.js';
import { isSameOrigin, noStore, setSessionCookie, wantsJson } from '../http.js';
import { CSRF_COOKIE, CSRF_TTL_SECONDS } from '../login/csrf.js';
import type { ActiveSession } from '../session/manager.js';
import { summariseSession } from '../session/summary.js';
import { forgetUserCredentials } from '../tokens/services.js';
import { LimiterBusyError } from '../users/concurrency.js';
import { hashPassword, verifyPassword } from '../users/passwords.js';
import { ACCOUNT_PAGE_CSP, renderPasswordPage, renderSessionsPage, type SessionRow } from './account-pages.js';
import { MIN_PASSWORD_LENGTH, newPasswordProblem, prepareCommonPasswords } from './common-passwords.js';

const MAX_PASSWORD_LENGTH = 4096;
const ACCOUNT_BODY_LIMIT_BYTES = 16 * 1024;
const WRONG_CURRENT = 'The current password is not correct.';
const HANDLE_LENGTH = 12;
const BUSY_RETRY_AFTER_SECONDS = 2;

/** Why a password change was refused before any password was checked (400). */
const INPUT_PROBLEMS = {
  missing: 'Enter your current password and the new one twice.',
  mismatch: 'The two new passwords do not match.',
  too_short: `The new password must have at least ${MIN_PASSWORD_LENGTH} characters.`,
  common: 'The new password is too common: it appears in lists of leaked passwords. Choose another.',
} as const;
type InputProblem = keyof typeof INPUT_PROBLEMS;

/** Registered by app.ts under the auth prefix, in a scope of its own. */
export async function accountRoutes(app: FastifyInstance, deps: GatewayDeps): Promise<void> {
  const { config, sessions, users, throttle, csrf } = deps;
  const prefix = config.authPrefix;
  const passwordPath = `${prefix}/account/password`;
  const sessionsPath = `${prefix}/account/sessions`;
  const nav = { passwordPath, sessionsPath, logoutPath: `${prefix}/logout` };
  prepareCommonPasswords();

  await app.register(formbody, { bodyLimit: ACCOUNT_BODY_LIMIT_BYTES });
  // The login page's headers: never cached, never framed, no referrer beyond this origin.
  app.addHook('onSend', async (_request, reply) => {
    noStore(reply);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'same-origin');
    reply.header('x-frame-options', 'DENY');
  });

  /** JSON when the body is JSON, or a GET asks for JSON rather than a page. */
  const jsonWanted = (request: FastifyRequest) => {
    if (wantsJson(request)) return true;
    const accept = request.headers.accept ?? '';
    return accept.includes('application/json') && !accept.includes('text/html');
  };

  const csrfToken = (reply: FastifyReply): string => {
    const tokens = csrf.issue();
    reply.setCookie(CSRF_COOKIE, tokens.cookie, { httpOnly: true, sameSite: 'strict', secure: config.cookieSecure, path: prefix, maxAge: CSRF_TTL_SECONDS });
    return tokens.token;
  };

  const page = (reply: FastifyReply, status: number, html: string) =>
    reply.code(status).header('content-security-policy', ACCOUNT_PAGE_CSP).type('text/html; charset=utf-8').send(html);

  /** The signed-in session; null once answered otherwise: 401 (JSON) or to the login page and back. */
  const signedIn = async (request: FastifyRequest, reply: FastifyReply, json: boolean, back: string): Promise<ActiveSession | null> => {
    const validation = await sessions.validate(request.cookies[config.cookieName]);
    if (validation.outcome === 'valid') {
      if (validation.session.renewedCookie) setSessionCookie(reply, config, validation.session.renewedCookie);
      return validation.session;
    }
    if (json) reply.code(401).send({ error: 'not signed in' });
    else reply.code(303).header('location', `${prefix}/login?rd=${encodeURIComponent(back)}`).send();
    return null;
  };

  /** Same origin, then (forms) the CSRF token; null when the POST may go on. */
  const refusedPost = (request: FastifyRequest, json: boolean): string | null => {
    if (!isSameOrigin(request, config)) return 'Cross-origin requests are refused.';
    if (json) return null;
    const token = (request.body as Record<string, unknown> | undefined)?.csrf;
    return csrf.verify(request.cookies[CSRF_COOKIE], token) ? null : 'The form expired. Please try again.';
  };

  // ---------------------------------------------------------------- password

  const showPasswordPage = (reply: FastifyReply, status: number, user: string, messages: { error?: string; notice?: string } = {}) =>
    page(reply, status, renderPasswordPage({ ...nav, user, csrfToken: csrfToken(reply), minLength: MIN_PASSWORD_LENGTH, ...messages }));

  app.get('/account/password', async (request, reply) => {
    const json = jsonWanted(request);
    const session = await signedIn(request, reply, json, passwordPath);
    if (session === null) return reply;
    if (json) return { user: session.record.user, minLength: MIN_PASSWORD_LENGTH };
    const changed = (request.query as Record<string, unknown>).changed !== undefined;
    return showPasswordPage(reply, 200, session.record.user, changed ? { notice: 'Your password was changed. Your other sessions were signed out.' } : {});
  });

  app.post('/account/password', { bodyLimit: ACCOUNT_BODY_LIMIT_BYTES }, async (request, reply) => {
    const json = wantsJson(request);
    const session = await signedIn(request, reply, json, passwordPath);
    if (session === null) return reply;
    const user = session.record.user;
    const ip = request.ip;
    const audit = (outcome: string, extra: Record<string, unknown> = {}) =>
      request.log[outcome === 'success' ? 'info' : 'warn']({ audit: 'password_change', user, ip, outcome, ...extra }, outcome === 'success' ? 'password changed' : 'password change refused');
    const refuse = (status: number, message: string, reason?: string) =>
      json ? reply.code(status).send({ error: message, ...(reason ? { reason } : {}) }) : showPasswordPage(reply, status, user, { error: message });

    const refused = refusedPost(request, json);
    if (refused) {
      audit('refused', { reason: 'csrf' });
      return refuse(403, refused);
    }
    const input = readPasswordInput(request.body);
    if (typeof input === 'string') {
      audit('refused', { reason: input });
      return refuse(400, INPUT_PROBLEMS[input], input);
    }

    // The current password is checked like a sign-in: the same throttle, counted before the check.
    const verdict = await throttle.begin(user, ip).catch((err: unknown) => {
      throw sessionStoreUnavailable(err);
    });
    if (!verdict.allowed) {
      audit('throttled', { by: verdict.by });
      reply.header('retry-after', String(verdict.retryAfterSeconds));
      return refuse(429, 'Too many failed attempts. Try again later.');
    }
    const stored = await users.find(user);
    const result = await verifyPassword(stored?.passwordHash ?? null, input.current, { allowPlaintext: config.allowPlaintextPasswords, queueKey: ip }).catch((err: unknown) => {
      if (err instanceof LimiterBusyError) return err;
      throw err;
    });
    if (result instanceof LimiterBusyError) {
      await throttle.abandoned(user, ip).catch(() => undefined);
      reply.header('retry-after', String(BUSY_RETRY_AFTER_SECONDS));
      audit('busy');
      return refuse(503, 'Too many sign-ins at once. Please try again in a few seconds.');
    }
    // One answer for every failure (wrong password, user gone or disabled): nothing to tell apart.
    if (!stored || !stored.passwordHash || stored.disabled || !result.ok) {
      audit('failure', { reason: !stored ? 'unknown_user' : stored.disabled ? 'disabled' : 'wrong_password' });
      return refuse(401, WRONG_CURRENT);
    }
    await throttle.succeeded(user, ip).catch(() => undefined);

    const newHash = await hashPassword(input.next);
    const written = await users.setPasswordHash(user, newHash);
    if (written !== 'ok') {
      audit('failure', { reason: written });
      if (written === 'no_query') request.log.error('password change needs GATEWAY_USER_PASSWORD_QUERY (GATEWAY_USER_QUERY reads a legacy table)');
      return written === 'no_query'
        ? refuse(503, 'Password changes are not available here. Ask your administrator.')
        : refuse(401, WRONG_CURRENT);
    }

    // The old password stops working over Basic too, on every replica, not when its cache time runs out.
    await forgetUserCredentials(deps.tokens, user, request.log);
    // Every other session ends (on every replica); this one goes on under a new id, bound to the new hash.
    const others = (await listSessions(user)).filter((s) => s.idHash !== session.idHash).map((s) => s.idHash);
    const ended = await sessions.endUserSessions(user, others);
    // How this session was established still holds (a second factor passed stays passed).
    const amr = session.record.amr;
    const created = await sessions.create(
      { user, email: stored.email, groups: stored.groups, ...(amr ? { amr: [...amr] } : {}) },
      { passwordHash: newHash, ...(session.record.client !== undefined ? { client: session.record.client } : {}) },
    );
    await sessions.endUserSessions(user, [session.idHash]);
    setSessionCookie(reply, config, created.cookieValue);
    audit('success', { sessionsEnded: ended });
    if (json) return reply.code(200).send({ changed: true, sessionsEnded: ended });
    return reply.code(303).header('location', `${passwordPath}?changed=1`).send();
  });

  // ---------------------------------------------------------------- sessions

  const listSessions = async (user: string) => {
    try {
      return await sessions.listByUser(user);
    } catch (err) {
      throw err instanceof GatewayError ? err : sessionStoreUnavailable(err);
    }
  };

  const sessionRows = async (current: ActiveSession) =>
    (await listSessions(current.record.user))
      .sort((a, b) => b.record.createdAt - a.record.createdAt)
      .map((stored) => ({ ...summariseSession(stored), client: stored.record.client ?? 'Unknown client', current: stored.idHash === current.idHash }));

  const showSessionsPage = async (reply: FastifyReply, status: number, session: ActiveSession, messages: { error?: string; notice?: string } = {}) => {
    const rows: SessionRow[] = (await sessionRows(session)).map((s) => ({ handle: s.id, client: s.client, created: shortTime(s.created), lastSeen: shortTime(s.lastSeen), current: s.current }));
    return page(reply, status, renderSessionsPage({ ...nav, user: session.record.user, csrfToken: csrfToken(reply), sessions: rows, ...messages }));
  };

  app.get('/account/sessions', async (request, reply) => {
    const json = jsonWanted(request);
    const session = await signedIn(request, reply, json, sessionsPath);
    if (session === null) return reply;
    if (json) return { sessions: (await sessionRows(session)).map(({ user: _user, ...row }) => row) };
    const ended = Number((request.query as Record<string, unknown>).ended);
    const notice = !Number.isInteger(ended) || ended < 0 ? undefined : ended === 0 ? 'No session was signed out: it had already ended.' : ended === 1 ? 'One session was signed out.' : `${ended} sessions were signed out.`;
    return showSessionsPage(reply, 200, session, notice ? { notice } : {});
  });

  app.post('/account/sessions', { bodyLimit: ACCOUNT_BODY_LIMIT_BYTES }, async (request, reply) => {
    const json = wantsJson(request);
    const session = await signedIn(request, reply, json, sessionsPath);
    if (session === null) return reply;
    const user = session.record.user;
    const refuse = async (status: number, message: string) => (json ? reply.code(status).send({ error: message }) : showSessionsPage(reply, status, session, { error: message }));
    const refused = refusedPost(request, json);
    if (refused) return refuse(403, refused);
    const target = (request.body as Record<string, unknown> | undefined)?.session;
    if (typeof target !== 'string' || (target !== 'others' && !/^[A-Za-z0-9_-]{12}$/.test(target))) {
      return refuse(400, 'Say which session to sign out: its id from the list, or "others".');
    }
    if (target === session.idHash.slice(0, HANDLE_LENGTH)) return refuse(400, 'That is this session: use Sign out to end it.');
    const mine = (await listSessions(user)).filter((s) => s.idHash !== session.idHash);
    const chosen = target === 'others' ? mine : mine.filter((s) => s.idHash.slice(0, HANDLE_LENGTH) === target);
    const ended = await sessions.endUserSessions(user, chosen.map((s) => s.idHash));
    request.log.info({ audit: 'revocation', user, by: 'self', sessions: ended, ip: request.ip, outcome: ended > 0 ? 'success' : 'not_found' }, 'sessions signed out by their user');
    if (json) return ended === 0 && target !== 'others' ? reply.code(404).send({ error: 'no such session' }) : reply.code(200).send({ ended });
    return reply.code(303).header('location', `${sessionsPath}?ended=${ended}`).send();
  });
}

function readPasswordInput(body: unknown): { current: string; next: string } | InputProblem {
  if (typeof body !== 'object' || body === null) return 'missing';
  const { current, new: next, confirm } = body as Record<string, unknown>;
  if (typeof current !== 'string' || typeof next !== 'string' || typeof confirm !== 'string') return 'missing';
  if (current === '' || next === '' || current.length > MAX_PASSWORD_LENGTH || next.length > MAX_PASSWORD_LENGTH) return 'missing';
  if (next !== confirm) return 'mismatch';
  return newPasswordProblem(next) ?? { current, next };
}

/** "2026-12-03 17:04 UTC": minutes are enough to tell sessions apart. */
function shortTime(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}
