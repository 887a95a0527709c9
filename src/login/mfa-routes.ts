// The second step of sign-in and enrolment (SPEC sections 3 and 9): GET/POST <prefix>/mfa and
// <prefix>/mfa/setup, as pages that work without JavaScript and as JSON.
//
// Who is asking is either a pending sign-in (the password was right; the sgw_mfa cookie, which
// opens nothing else) or a full session that was established with a password alone (step-up, or a
// user enrolling by choice under GATEWAY_MFA=optional). Either way success means a NEW session id
// whose record says how it was established (amr: pwd + otp). Wrong codes are throttled with the
// password throttle's rules, on counters of their own.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { GatewayDeps, MfaDeps } from '../context.js';
import { GatewayError, sessionStoreUnavailable, userStoreUnavailable } from '../errors.js';
import { isSameOrigin, setSessionCookie, wantsJson } from '../http.js';
import { safeRedirectTarget } from '../access/paths.js';
import type { ActiveSession } from '../session/manager.js';
import { PASSWORD_ONLY } from '../session/types.js';
import { describeClient } from '../session/client.js';
import { PENDING_COOKIE, PENDING_TTL_MS, type PendingSignIn, type SecondStep } from '../mfa/pending.js';
import { MFA_PAGE_CSP, renderAlreadyEnrolledPage, renderRecoveryCodesPage, renderSetupPage, renderVerifyPage } from '../mfa/pages.js';
import type { MfaMethod } from '../mfa/service.js';
import { CSRF_COOKIE, CSRF_TTL_SECONDS } from './csrf.js';

const MAX_CODE_LENGTH = 64;
const WRONG_CODE = 'That code did not work. Check it and try again, or wait for the next one.';
const VERIFY_TITLE = 'Two-step verification';
const SETUP_TITLE = 'Set up two-step verification';

type Subject =
  | { kind: 'pending'; id: string; pending: PendingSignIn; user: string }
  | { kind: 'session'; session: ActiveSession; user: string };

interface CodeInput {
  code: string;
  rd: string | null;
  csrf: unknown;
}

/** Where the second step lives, for the login route's answer and redirects. */
export function secondStepPath(prefix: string, step: SecondStep): string {
  return step === 'setup' ? `${prefix}/mfa/setup` : `${prefix}/mfa`;
}

/**
 * After a correct password, for a user with a factor (or who must enrol): a pending sign-in under
 * its own cookie instead of a session. Returns the path of the step to take.
 */
export async function beginSecondStep(
  deps: GatewayDeps,
  mfa: MfaDeps,
  reply: FastifyReply,
  who: { user: string; email: string | null; groups: string[] },
  step: SecondStep,
  rd: string,
): Promise<string> {
  const { config } = deps;
  const pending: PendingSignIn = { ...who, amr: [...PASSWORD_ONLY], step, rd, createdAt: Date.now() };
  const id = await mfa.pending.create(pending).catch((err: unknown) => {
    throw sessionStoreUnavailable(err);
  });
  reply.setCookie(PENDING_COOKIE, id, pendingCookieOptions(config.authPrefix, config.cookieSecure, PENDING_TTL_MS / 1_000));
  return secondStepPath(config.authPrefix, step);
}

const pendingCookieOptions = (prefix: string, secure: boolean, maxAge: number) => ({
  httpOnly: true,
  sameSite: 'lax' as const,
  secure,
  // Sent to the second-step routes only: no other route, and never the app, sees it.
  path: `${prefix}/mfa`,
  maxAge,
});

export async function mfaRoutes(app: FastifyInstance, deps: GatewayDeps, mfa: MfaDeps): Promise<void> {
  const { config, sessions, csrf, metrics } = deps;
  const prefix = config.authPrefix;
  const loginPath = `${prefix}/login`;
  const verifyPath = secondStepPath(prefix, 'verify');
  const setupPath = secondStepPath(prefix, 'setup');

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

  /** The pending sign-in, else a valid session, else nobody. */
  async function subjectOf(request: FastifyRequest): Promise<Subject | null> {
    const id = request.cookies[PENDING_COOKIE];
    if (id !== undefined) {
      const pending = await mfa.pending.get(id).catch((err: unknown) => {
        throw sessionStoreUnavailable(err);
      });
      if (pending) return { kind: 'pending', id, pending, user: pending.user };
    }
    const validation = await sessions.validate(request.cookies[config.cookieName]);
    return validation.outcome === 'valid' ? { kind: 'session', session: validation.session, user: validation.session.record.user } : null;
  }

  const amrOf = (subject: Subject): string[] => (subject.kind === 'pending' ? subject.pending.amr : [...(subject.session.record.amr ?? PASSWORD_ONLY)]);
  const returnTo = (subject: Subject, given: unknown): string => (subject.kind === 'pending' ? subject.pending.rd : safeRedirectTarget(given));

  const nobody = (request: FastifyRequest, reply: FastifyReply) => {
    if (!prefersJson(request) && request.method === 'GET') {
      const query = request.query as Record<string, unknown>;
      return reply.redirect(`${loginPath}?rd=${encodeURIComponent(safeRedirectTarget(query.rd))}`, 302);
    }
    return reply.code(401).send({ error: 'sign in first', login: loginPath });
  };

  /**
   * A form or JSON POST: same origin, a code, and (forms) the CSRF token. Refusals are thrown, so
   * the gateway's error handler answers a browser with a page and anything else with JSON.
   */
  function readPost(request: FastifyRequest, json: boolean): CodeInput {
    if (!isSameOrigin(request, config)) throw new GatewayError('GW_ERR_CROSS_ORIGIN', 403, 'Cross-origin requests are refused.');
    const body = (typeof request.body === 'object' && request.body !== null ? request.body : {}) as Record<string, unknown>;
    const code = typeof body.code === 'string' ? body.code.trim() : '';
    if (code === '' || code.length > MAX_CODE_LENGTH) throw new GatewayError('GW_ERR_CODE_REQUIRED', 400, 'A code is required.');
    if (!json && !csrf.verify(request.cookies[CSRF_COOKIE], body.csrf)) throw new GatewayError('GW_ERR_FORM_EXPIRED', 403, 'The form expired. Please go back, reload the page and try again.');
    return { code, rd: typeof body.rd === 'string' ? body.rd : null, csrf: body.csrf };
  }

  /** The throttle, as for passwords: false once answered with 429 (or 503 when Redis is down). */
  async function admit(request: FastifyRequest, reply: FastifyReply, subject: Subject, method: MfaMethod, json: boolean, retry: (error: string) => unknown): Promise<boolean> {
    const verdict = await mfa.throttle.begin(subject.user, request.ip).catch((err: unknown) => {
      metrics.mfaVerifications.inc({ method, outcome: 'error' });
      throw sessionStoreUnavailable(err);
    });
    if (verdict.allowed) return true;
    metrics.mfaVerifications.inc({ method, outcome: 'throttled' });
    request.log.warn({ audit: 'mfa', user: subject.user, ip: request.ip, outcome: 'throttled', by: verdict.by }, 'second step throttled');
    reply.header('retry-after', String(verdict.retryAfterSeconds));
    const message = 'Too many wrong codes. Try again later.';
    if (json) reply.code(429).send({ error: message });
    else await retry(message);
    return false;
  }

  /** Success: the pending sign-in (or the password-only session) becomes a new, full session. */
  async function complete(request: FastifyRequest, reply: FastifyReply, subject: Subject, method: MfaMethod | 'enrolment') {
    if (subject.kind === 'pending') {
      // Single use: of two requests racing with valid codes, one signs in.
      if (!(await mfa.pending.take(subject.id).catch(() => false))) return null;
      reply.clearCookie(PENDING_COOKIE, { path: `${prefix}/mfa` });
    } else {
      await sessions.destroy(request.cookies[config.cookieName]).catch(() => undefined);
    }
    const record = subject.kind === 'pending' ? subject.pending : subject.session.record;
    const amr = [...new Set([...amrOf(subject), 'otp'])];
    const created = await sessions.create({ user: record.user, email: record.email, groups: record.groups, amr }, { client: describeClient(request.headers['user-agent']) });
    // GATEWAY_MAX_SESSIONS_PER_USER, as after a password sign-in.
    const capped = await sessions.endSessionsBeyondCap(record.user).catch(() => 0);
    if (capped > 0) request.log.info({ audit: 'revocation', user: record.user, sessions: capped, by: 'login', reason: 'session_cap', ip: request.ip, outcome: 'success' }, 'oldest sessions ended: session cap');
    setSessionCookie(reply, config, created.cookieValue);
    reply.clearCookie(CSRF_COOKIE, { path: prefix });
    request.log.info({ audit: 'mfa', user: record.user, ip: request.ip, outcome: 'success', method, step: subject.kind === 'pending' ? 'sign_in' : 'step_up' }, 'second step succeeded');
    return { user: record.user, email: record.email, groups: record.groups, amr, expiresAt: new Date(created.record.expiresAt).toISOString() };
  }

  // ----- the second step -----------------------------------------------------------------------

  const showVerify = (reply: FastifyReply, status: number, rd: string, error?: string) =>
    page(reply, status, renderVerifyPage({ title: VERIFY_TITLE, action: verifyPath, csrfToken: freshCsrf(reply), rd, cancelPath: loginPath, ...(error ? { error } : {}) }));

  app.get('/mfa', async (request, reply) => {
    const json = prefersJson(request);
    const subject = await subjectOf(request);
    if (!subject) return nobody(request, reply);
    const rd = returnTo(subject, (request.query as Record<string, unknown>).rd);
    const step = subject.kind === 'pending' ? subject.pending.step : await nextStepFor(subject.user);
    if (step === 'setup' || (subject.kind === 'session' && step === null)) {
      // Nothing to verify with yet: enrol first (a session under `optional` may; `required` must).
      if (json) return reply.code(409).send({ error: 'no second factor yet', next: setupPath });
      return reply.redirect(`${setupPath}?rd=${encodeURIComponent(rd)}`, 303);
    }
    if (subject.kind === 'session' && amrOf(subject).includes('otp')) {
      if (json) return reply.send({ user: subject.user, amr: amrOf(subject) });
      return reply.redirect(rd, 303);
    }
    if (json) return reply.send({ user: subject.user, methods: ['totp', 'recovery'] });
    return showVerify(reply, 200, rd);
  });

  app.post('/mfa', async (request, reply) => {
    const json = prefersJson(request);
    const input = readPost(request, json);
    const subject = await subjectOf(request);
    if (!subject) return nobody(request, reply);
    const rd = returnTo(subject, input.rd);
    if (subject.kind === 'pending' && subject.pending.step === 'setup') {
      if (json) return reply.code(409).send({ error: 'set up a second factor first', next: setupPath });
      return reply.redirect(setupPath, 303);
    }
    const guess: MfaMethod = /^\d[\d\s]*$/.test(input.code) ? 'totp' : 'recovery';
    if (!(await admit(request, reply, subject, guess, json, (error) => showVerify(reply, 429, rd, error)))) return reply;
    const result = await mfa.service.verify(subject.user, input.code).catch((err: unknown) => {
      metrics.mfaVerifications.inc({ method: guess, outcome: 'error' });
      throw userStoreUnavailable(err);
    });
    if (!result.ok) {
      if (result.reason === 'undecryptable') {
        metrics.mfaVerifications.inc({ method: result.method, outcome: 'error' });
        request.log.error({ user: subject.user }, 'the TOTP secret of this user opens with none of GATEWAY_MFA_ENCRYPTION_KEY: its key was removed (put it back as a later key), or the row was copied from another user');
        await mfa.throttle.abandoned(subject.user, request.ip).catch(() => undefined);
        return reply.code(503).send({ error: 'Two-step verification is unavailable; try again shortly.' });
      }
      metrics.mfaVerifications.inc({ method: result.method, outcome: result.reason === 'replayed' ? 'replayed' : 'failure' });
      request.log.warn({ audit: 'mfa', user: subject.user, ip: request.ip, outcome: 'failure', method: result.method, reason: result.reason }, 'second step failed');
      if (json) return reply.code(401).send({ error: WRONG_CODE });
      return showVerify(reply, 401, rd, WRONG_CODE);
    }
    await mfa.throttle.succeeded(subject.user, request.ip).catch(() => undefined);
    const signedIn = await complete(request, reply, subject, result.method);
    if (!signedIn) return json ? reply.code(401).send({ error: 'This sign-in has already been completed or has expired.' }) : reply.redirect(`${loginPath}?rd=${encodeURIComponent(rd)}`, 303);
    metrics.mfaVerifications.inc({ method: result.method, outcome: 'success' });
    if (json) return reply.send(signedIn);
    return reply.redirect(rd, 303);
  });

  // ----- enrolment -------------------------------------------------------------------------------

  const issuer = (request: FastifyRequest) => config.publicUrl?.hostname ?? request.hostname;

  async function showSetup(request: FastifyRequest, reply: FastifyReply, subject: Subject, status: number, rd: string, error?: string) {
    const enrolment = await mfa.service.enrolment(subject.user, issuer(request)).catch((err: unknown) => {
      throw userStoreUnavailable(err);
    });
    if (enrolment.enrolled) return page(reply, 409, renderAlreadyEnrolledPage({ next: rd }));
    return page(
      reply,
      status,
      renderSetupPage({ title: SETUP_TITLE, action: setupPath, csrfToken: freshCsrf(reply), rd, user: subject.user, otpauth: enrolment.otpauth, key: enrolment.key, ...(error ? { error } : {}) }),
    );
  }

  app.get('/mfa/setup', async (request, reply) => {
    const json = prefersJson(request);
    const subject = await subjectOf(request);
    if (!subject) return nobody(request, reply);
    const rd = returnTo(subject, (request.query as Record<string, unknown>).rd);
    if (subject.kind === 'pending' && subject.pending.step === 'verify') {
      if (json) return reply.code(409).send({ error: 'a second factor is set up already', next: verifyPath });
      return reply.redirect(verifyPath, 303);
    }
    if (!json) return showSetup(request, reply, subject, 200, rd);
    const enrolment = await mfa.service.enrolment(subject.user, issuer(request)).catch((err: unknown) => {
      throw userStoreUnavailable(err);
    });
    if (enrolment.enrolled) return reply.code(409).send({ error: 'a second factor is set up already' });
    return reply.send({ otpauth: enrolment.otpauth, key: enrolment.key });
  });

  app.post('/mfa/setup', async (request, reply) => {
    const json = prefersJson(request);
    const input = readPost(request, json);
    const subject = await subjectOf(request);
    if (!subject) return nobody(request, reply);
    const rd = returnTo(subject, input.rd);
    if (subject.kind === 'pending' && subject.pending.step === 'verify') {
      if (json) return reply.code(409).send({ error: 'a second factor is set up already', next: verifyPath });
      return reply.redirect(verifyPath, 303);
    }
    if (!(await admit(request, reply, subject, 'totp', json, (error) => showSetup(request, reply, subject, 429, rd, error)))) return reply;
    const result = await mfa.service.confirm(subject.user, input.code).catch((err: unknown) => {
      metrics.mfaVerifications.inc({ method: 'totp', outcome: 'error' });
      throw userStoreUnavailable(err);
    });
    if (!result.ok) {
      if (result.reason === 'wrong') {
        metrics.mfaVerifications.inc({ method: 'totp', outcome: 'failure' });
        request.log.warn({ audit: 'mfa_enrolment', user: subject.user, ip: request.ip, outcome: 'failure' }, 'enrolment code wrong');
        if (json) return reply.code(401).send({ error: WRONG_CODE });
        return showSetup(request, reply, subject, 401, rd, WRONG_CODE);
      }
      await mfa.throttle.abandoned(subject.user, request.ip).catch(() => undefined);
      if (result.reason === 'undecryptable') {
        metrics.mfaVerifications.inc({ method: 'totp', outcome: 'error' });
        request.log.error({ user: subject.user }, 'the pending TOTP secret of this user opens with none of GATEWAY_MFA_ENCRYPTION_KEY');
        return reply.code(503).send({ error: 'Two-step verification is unavailable; try again shortly.' });
      }
      if (json) return reply.code(409).send({ error: 'a second factor is set up already' });
      return page(reply, 409, renderAlreadyEnrolledPage({ next: rd }));
    }
    await mfa.throttle.succeeded(subject.user, request.ip).catch(() => undefined);
    request.log.info({ audit: 'mfa_enrolment', user: subject.user, ip: request.ip, outcome: 'success', method: 'totp' }, 'second factor enrolled');
    const signedIn = await complete(request, reply, subject, 'enrolment');
    metrics.mfaVerifications.inc({ method: 'totp', outcome: 'success' });
    // Enrolled either way; a pending sign-in that raced another tab signs in again with a code.
    if (json) return reply.send({ recoveryCodes: result.recoveryCodes, ...(signedIn ?? {}) });
    return page(reply, 200, renderRecoveryCodesPage({ codes: result.recoveryCodes, next: signedIn ? rd : `${loginPath}?rd=${encodeURIComponent(rd)}` }));
  });

  async function nextStepFor(user: string): Promise<SecondStep | null> {
    return mfa.service.nextStep(user).catch((err: unknown) => {
      throw userStoreUnavailable(err);
    });
  }
}
