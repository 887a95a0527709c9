// The second step of sign-in and enrolment (SPEC sections 3 and 9): GET/POST <prefix>/mfa and
// <prefix>/mfa/setup, as pages that work without JavaScript and as JSON. The pages also carry the
// passkey button, whose JSON ceremony lives in webauthn-routes.ts; who is asking, the throttle and
// the new session on success are shared with it (second-step.ts). Wrong codes are throttled with
// the password throttle's rules, on counters of their own.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { GatewayDeps, MfaDeps } from '../context.js';
import { GatewayError, sessionStoreUnavailable, userStoreUnavailable } from '../errors.js';
import { PASSWORD_ONLY } from '../session/types.js';
import { PENDING_COOKIE, PENDING_TTL_MS, type PendingSignIn, type SecondStep } from '../mfa/pending.js';
import { renderAlreadyEnrolledPage, renderRecoveryCodesPage, renderSetupPage, renderVerifyPage, type PasskeyEndpoints } from '../mfa/pages.js';
import type { FactorStatus, MfaMethod } from '../mfa/factors.js';
import { CSRF_COOKIE } from './csrf.js';
import { secondStepKit, secondStepPath, type Subject } from './second-step.js';
import { webauthnPaths, webauthnRoutes } from './webauthn-routes.js';
import { forgetUserCredentials } from '../tokens/services.js';

export { secondStepPath } from './second-step.js';

const MAX_CODE_LENGTH = 64;
const WRONG_CODE = 'That code did not work. Check it and try again, or wait for the next one.';
const VERIFY_TITLE = 'Two-step verification';
const SETUP_TITLE = 'Set up two-step verification';

interface CodeInput {
  code: string;
  rd: string | null;
  csrf: unknown;
}

/**
 * After a correct password, for a user with a factor (or who must enrol): a pending sign-in under
 * its own cookie instead of a session. Returns the path of the step to take.
 */
export async function beginSecondStep(
  deps: GatewayDeps,
  mfa: MfaDeps,
  reply: FastifyReply,
  who: { user: string; email: string | null; groups: string[]; passwordHash: string | null },
  step: SecondStep,
  rd: string,
): Promise<string> {
  const { config } = deps;
  const { passwordHash, ...identity } = who;
  const fingerprint = deps.sessions.passwordFingerprint(passwordHash);
  const pending: PendingSignIn = { ...identity, amr: [...PASSWORD_ONLY], step, rd, createdAt: Date.now(), ...(fingerprint !== undefined ? { passwordFingerprint: fingerprint } : {}) };
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
  // Sent to the second-step routes only (the passkey endpoints under them too): no other route, and never the app, sees it.
  path: `${prefix}/mfa`,
  maxAge,
});

/** The methods a user can complete the second step with, as the JSON answer lists them. */
function methodsOf(status: FactorStatus): MfaMethod[] {
  const methods: MfaMethod[] = [];
  if (status.totp === 'enrolled') methods.push('totp');
  if (status.passkeys > 0) methods.push('webauthn');
  if (status.recoveryCodesLeft > 0) methods.push('recovery');
  return methods;
}

export async function mfaRoutes(app: FastifyInstance, deps: GatewayDeps, mfa: MfaDeps): Promise<void> {
  const { config, csrf, metrics } = deps;
  const kit = secondStepKit(deps, mfa);
  const { prefix, loginPath, prefersJson, freshCsrf, page, subjectOf, amrOf, returnTo, nobody, admit, complete } = kit;
  const verifyPath = secondStepPath(prefix, 'verify');
  const setupPath = secondStepPath(prefix, 'setup');
  const passkeyPaths = webauthnPaths(prefix);
  const registerEndpoints: PasskeyEndpoints = { options: passkeyPaths.registerOptions, verify: passkeyPaths.register };
  const assertEndpoints: PasskeyEndpoints = { options: passkeyPaths.options, verify: passkeyPaths.assert };

  /**
   * A form or JSON POST: same origin, a code, and (forms) the CSRF token. Refusals are thrown, so
   * the gateway's error handler answers a browser with a page and anything else with JSON.
   */
  function readPost(request: FastifyRequest, json: boolean): CodeInput {
    kit.sameOriginOnly(request);
    const body = (typeof request.body === 'object' && request.body !== null ? request.body : {}) as Record<string, unknown>;
    const code = typeof body.code === 'string' ? body.code.trim() : '';
    if (code === '' || code.length > MAX_CODE_LENGTH) throw new GatewayError('GW_ERR_CODE_REQUIRED', 400, 'A code is required.');
    if (!json && !csrf.verify(request.cookies[CSRF_COOKIE], body.csrf)) throw new GatewayError('GW_ERR_FORM_EXPIRED', 403, 'The form expired. Please go back, reload the page and try again.');
    return { code, rd: typeof body.rd === 'string' ? body.rd : null, csrf: body.csrf };
  }

  // ----- the second step -----------------------------------------------------------------------

  /** The step's page: the passkey button for a user with a passkey, the code form for TOTP or recovery codes. */
  async function showVerify(reply: FastifyReply, subject: Subject, status: number, rd: string, error?: string) {
    const factors = await kit.factors(subject.user);
    const code = factors.totp === 'enrolled' ? 'totp' : factors.recoveryCodesLeft > 0 || factors.passkeys === 0 ? 'recovery' : null;
    const passkey = factors.passkeys > 0 ? assertEndpoints : null;
    return page(reply, status, renderVerifyPage({ title: VERIFY_TITLE, action: verifyPath, csrfToken: freshCsrf(reply), rd, cancelPath: loginPath, code, passkey, ...(error ? { error } : {}) }));
  }

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
    if (subject.kind === 'session' && kit.proven(subject)) {
      if (json) return reply.send({ user: subject.user, amr: amrOf(subject) });
      return reply.redirect(rd, 303);
    }
    if (json) return reply.send({ user: subject.user, methods: methodsOf(await kit.factors(subject.user)) });
    return showVerify(reply, subject, 200, rd);
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
    if (!(await admit(request, reply, subject, guess, json, (error) => showVerify(reply, subject, 429, rd, error)))) return reply;
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
      return showVerify(reply, subject, 401, rd, WRONG_CODE);
    }
    await mfa.throttle.succeeded(subject.user, request.ip).catch(() => undefined);
    const signedIn = await complete(request, reply, subject, result.method, 'otp');
    if (!signedIn) return json ? reply.code(401).send({ error: 'This sign-in has already been completed or has expired.' }) : reply.redirect(`${loginPath}?rd=${encodeURIComponent(rd)}`, 303);
    metrics.mfaVerifications.inc({ method: result.method, outcome: 'success' });
    if (json) return reply.send(signedIn);
    return reply.redirect(rd, 303);
  });

  // ----- enrolment -------------------------------------------------------------------------------

  const issuer = (request: FastifyRequest) => config.publicUrl?.hostname ?? request.hostname;

  const enrolmentFor = (request: FastifyRequest, user: string) =>
    mfa.service.enrolment(user, issuer(request)).catch((err: unknown) => {
      throw userStoreUnavailable(err);
    });

  /** Enrolment: the authenticator app (unless the user has TOTP already) and the passkey button. */
  async function showSetup(request: FastifyRequest, reply: FastifyReply, subject: Subject, status: number, rd: string, error?: string) {
    const factors = await kit.factors(subject.user);
    if (!kit.mayEnrol(subject, factors)) return page(reply, 409, renderAlreadyEnrolledPage({ next: rd }));
    const enrolment = factors.totp === 'enrolled' ? null : await enrolmentFor(request, subject.user);
    const totp = enrolment && !enrolment.enrolled ? { otpauth: enrolment.otpauth, key: enrolment.key } : null;
    return page(
      reply,
      status,
      renderSetupPage({ title: SETUP_TITLE, action: setupPath, csrfToken: freshCsrf(reply), rd, user: subject.user, totp, passkey: registerEndpoints, ...(error ? { error } : {}) }),
    );
  }

  /** A user with a passkey adds TOTP only from a session that passed a factor (kit.mayEnrol). */
  const mayEnrolTotp = async (subject: Subject) => kit.mayEnrol(subject, await kit.factors(subject.user));

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
    if (!(await mayEnrolTotp(subject))) return reply.code(409).send({ error: 'a second factor is set up already' });
    const enrolment = await enrolmentFor(request, subject.user);
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
    if (!(await mayEnrolTotp(subject))) {
      if (json) return reply.code(409).send({ error: 'a second factor is set up already' });
      return page(reply, 409, renderAlreadyEnrolledPage({ next: rd }));
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
    // From now on the password alone opens nothing: a Basic credential cached before is forgotten.
    await forgetUserCredentials(deps.tokens, subject.user, request.log);
    const signedIn = await complete(request, reply, subject, 'enrolment', 'otp');
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

  await webauthnRoutes(app, deps, mfa, kit);
}
