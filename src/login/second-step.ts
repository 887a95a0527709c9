// What the second step's routes share (mfa-routes.ts for codes, webauthn-routes.ts for passkeys):
// who is asking, the throttle, and success — one path to the new session, whatever the factor.
//
// Who is asking is either a pending sign-in (the password was right; the sgw_mfa cookie, which
// opens nothing else) or a full session (step-up, or a user enrolling by choice under
// GATEWAY_MFA=optional). Either way success means a NEW session id whose record says how it was
// established (amr: pwd + otp for a code, pwd + hwk for a passkey).
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { GatewayDeps, MfaDeps } from '../context.js';
import { GatewayError, sessionStoreUnavailable, userStoreUnavailable } from '../errors.js';
import { isSameOrigin, setSessionCookie, wantsJson } from '../http.js';
import { safeRedirectTarget } from '../access/paths.js';
import type { ActiveSession } from '../session/manager.js';
import { PASSWORD_ONLY } from '../session/types.js';
import { describeClient } from '../session/client.js';
import { PENDING_COOKIE, type PendingSignIn, type SecondStep } from '../mfa/pending.js';
import { MFA_PAGE_CSP } from '../mfa/pages.js';
import { hasFactor, type FactorStatus, type MfaMethod } from '../mfa/factors.js';
import { CSRF_COOKIE, CSRF_TTL_SECONDS } from './csrf.js';

export type Subject =
  | { kind: 'pending'; id: string; pending: PendingSignIn; user: string }
  | { kind: 'session'; session: ActiveSession; user: string; cookie: string };

/** RFC 8176 names of the second factors: a code (TOTP or recovery), a key (passkey). */
export type SecondFactor = 'otp' | 'hwk';
const SECOND_FACTORS: ReadonlySet<string> = new Set<SecondFactor>(['otp', 'hwk']);

/** Where the second step lives, for the login route's answer and redirects. */
export function secondStepPath(prefix: string, step: SecondStep): string {
  return step === 'setup' ? `${prefix}/mfa/setup` : `${prefix}/mfa`;
}

export type SecondStepKit = ReturnType<typeof secondStepKit>;

export function secondStepKit(deps: GatewayDeps, mfa: MfaDeps) {
  const { config, sessions, csrf, metrics } = deps;
  const prefix = config.authPrefix;
  const loginPath = `${prefix}/login`;

  const prefersJson = (request: FastifyRequest) => {
    if (wantsJson(request)) return true;
    const accept = request.headers.accept ?? '';
    return accept.includes('application/json') && !accept.includes('text/html');
  };

  const freshCsrf = (reply: FastifyReply) => {
    const tokens = csrf.issue();
    reply.setCookie(CSRF_COOKIE, tokens.cookie, { httpOnly: true, sameSite: 'strict', secure: config.cookieSecure, path: prefix, maxAge: CSRF_TTL_SECONDS });
    return tokens.token;
  };

  const page = (reply: FastifyReply, status: number, html: string) =>
    reply.code(status).header('content-security-policy', MFA_PAGE_CSP).type('text/html; charset=utf-8').send(html);

  /**
   * Whether the user a pending sign-in is for may still sign in: not removed or disabled since the
   * password step, and with the same password (`users passwd` and a password change end sessions;
   * they must end a sign-in half done too, before a factor is checked or enrolled).
   */
  async function stillHolds(pending: PendingSignIn): Promise<boolean> {
    const found = await deps.users.find(pending.user).catch((err: unknown) => {
      throw userStoreUnavailable(err);
    });
    if (found === null || found.disabled) return false;
    return pending.passwordFingerprint === undefined || sessions.samePassword(found.passwordHash, pending.passwordFingerprint);
  }

  /** The pending sign-in, else a valid session, else nobody. */
  async function subjectOf(request: FastifyRequest): Promise<Subject | null> {
    const id = request.cookies[PENDING_COOKIE];
    if (id !== undefined) {
      const pending = await mfa.pending.get(id).catch((err: unknown) => {
        throw sessionStoreUnavailable(err);
      });
      if (pending && (await stillHolds(pending))) return { kind: 'pending', id, pending, user: pending.user };
      if (pending) {
        await mfa.pending.take(id).catch(() => false);
        request.log.warn({ audit: 'mfa', user: pending.user, ip: request.ip, outcome: 'refused', reason: 'user_changed' }, 'pending sign-in ended: the user was disabled, removed or given a new password');
        return null;
      }
    }
    const cookie = request.cookies[config.cookieName];
    const validation = await sessions.validate(cookie);
    return validation.outcome === 'valid' && cookie !== undefined ? { kind: 'session', session: validation.session, user: validation.session.record.user, cookie } : null;
  }

  const amrOf = (subject: Subject): string[] => (subject.kind === 'pending' ? subject.pending.amr : [...(subject.session.record.amr ?? PASSWORD_ONLY)]);
  const returnTo = (subject: Subject, given: unknown): string => (subject.kind === 'pending' ? subject.pending.rd : safeRedirectTarget(given));
  /** A session that has passed a second factor already. */
  const proven = (subject: Subject): boolean => amrOf(subject).some((method) => SECOND_FACTORS.has(method));
  /** The secret the subject holds (its cookie): what its WebAuthn challenges are kept under. */
  const holderOf = (subject: Subject): string => (subject.kind === 'pending' ? `p:${subject.id}` : `s:${subject.cookie}`);

  const nobody = (request: FastifyRequest, reply: FastifyReply) => {
    if (!prefersJson(request) && request.method === 'GET') {
      const query = request.query as Record<string, unknown>;
      return reply.redirect(`${loginPath}?rd=${encodeURIComponent(safeRedirectTarget(query.rd))}`, 302);
    }
    return reply.code(401).send({ error: 'sign in first', login: loginPath });
  };

  const sameOriginOnly = (request: FastifyRequest) => {
    if (!isSameOrigin(request, config)) throw new GatewayError('GW_ERR_CROSS_ORIGIN', 403, 'Cross-origin requests are refused.');
  };

  async function factors(user: string): Promise<FactorStatus> {
    return mfa.service.status(user).catch((err: unknown) => {
      throw userStoreUnavailable(err);
    });
  }

  /**
   * Whether the subject may add a factor: a user without one may (the first enrolment, as after
   * the password); a user with one only from a session that passed it (else the password alone
   * would be enough to add a second factor of one's own choosing).
   */
  const mayEnrol = (subject: Subject, status: FactorStatus): boolean => !hasFactor(status) || (subject.kind === 'session' && proven(subject));

  /** The throttle, as for passwords: false once answered with 429 (or 503 when Redis is down). */
  async function admit(request: FastifyRequest, reply: FastifyReply, subject: Subject, method: MfaMethod, json: boolean, retry: (error: string) => unknown): Promise<boolean> {
    const verdict = await mfa.throttle.begin(subject.user, request.ip).catch((err: unknown) => {
      metrics.mfaVerifications.inc({ method, outcome: 'error' });
      throw sessionStoreUnavailable(err);
    });
    if (verdict.allowed) return true;
    metrics.mfaVerifications.inc({ method, outcome: 'throttled' });
    request.log.warn({ audit: 'mfa', user: subject.user, ip: request.ip, outcome: 'throttled', by: verdict.by, method }, 'second step throttled');
    reply.header('retry-after', String(verdict.retryAfterSeconds));
    const message = method === 'webauthn' ? 'Too many failed attempts. Try again later.' : 'Too many wrong codes. Try again later.';
    if (json) reply.code(429).send({ error: message });
    else await retry(message);
    return false;
  }

  /** Success: the pending sign-in (or the session) becomes a new, full session carrying `factor`. */
  async function complete(request: FastifyRequest, reply: FastifyReply, subject: Subject, method: MfaMethod | 'enrolment' | 'passkey_enrolment', factor: SecondFactor) {
    if (subject.kind === 'pending') {
      // Single use: of two requests racing with valid codes, one signs in.
      if (!(await mfa.pending.take(subject.id).catch(() => false))) return null;
      reply.clearCookie(PENDING_COOKIE, { path: `${prefix}/mfa` });
    } else {
      await sessions.destroy(subject.cookie).catch(() => undefined);
    }
    const record = subject.kind === 'pending' ? subject.pending : subject.session.record;
    const amr = [...new Set([...amrOf(subject), factor])];
    // The password's fingerprint goes on with the session: a later change of it still ends this one.
    const fingerprint = subject.kind === 'pending' ? subject.pending.passwordFingerprint : subject.session.record.passwordFingerprint;
    const created = await sessions.create(
      { user: record.user, email: record.email, groups: record.groups, amr },
      { client: describeClient(request.headers['user-agent']), ...(fingerprint !== undefined ? { passwordFingerprint: fingerprint } : {}) },
    );
    // GATEWAY_MAX_SESSIONS_PER_USER, as after a password sign-in.
    const capped = await sessions.endSessionsBeyondCap(record.user).catch(() => 0);
    if (capped > 0) request.log.info({ audit: 'revocation', user: record.user, sessions: capped, by: 'login', reason: 'session_cap', ip: request.ip, outcome: 'success' }, 'oldest sessions ended: session cap');
    setSessionCookie(reply, config, created.cookieValue);
    reply.clearCookie(CSRF_COOKIE, { path: prefix });
    request.log.info({ audit: 'mfa', user: record.user, ip: request.ip, outcome: 'success', method, step: subject.kind === 'pending' ? 'sign_in' : 'step_up' }, 'second step succeeded');
    return { user: record.user, email: record.email, groups: record.groups, amr, expiresAt: new Date(created.record.expiresAt).toISOString() };
  }

  return { prefix, loginPath, prefersJson, freshCsrf, page, subjectOf, amrOf, returnTo, proven, holderOf, nobody, sameOriginOnly, factors, mayEnrol, admit, complete };
}
